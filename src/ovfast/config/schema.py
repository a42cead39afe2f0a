"""Frozen configuration models."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    target_device: str = "CPU"
    plugin_config: tuple[tuple[str, Any], ...] = ()
    nireq: int = 0
    batch_size: str = ""
    shape: tuple[tuple[str, str], ...] = ()  # ("" = anonymous) -> "(1,3,-1,-1)" / "auto"
    layout: Any = None
    model_version_policy: Any = None  # raw JSON object, parsed by version_policy
    allow_cache: bool = False
    echo: bool = False  # ovfast extension: transport-floor mode (no inference)
    color_format: str | None = None  # channel order of decoded JPEG/PNG inputs: "BGR" (default) or "RGB"
    mean: str | None = None  # CLI --mean, e.g. "[123.7,116.3,103.5]" (needs a layout)
    scale: str | None = None  # CLI --scale

    @property
    def plugin_config_dict(self) -> dict[str, Any]:
        return dict(self.plugin_config)


@dataclass(frozen=True)
class ServerConfig:
    port: int = 0
    rest_port: int = 0
    grpc_bind_address: str = "0.0.0.0"
    rest_bind_address: str = "0.0.0.0"
    models: tuple[ModelConfig, ...] = ()
    config_path: str | None = None
    file_system_poll_wait_seconds: int = 1
    log_level: str = "INFO"
    log_path: str | None = None
    cache_dir: str | None = None
    grpc_workers: int = 1
    rest_workers: int | None = None
    metrics_enable: bool = False
    metrics_list: tuple[str, ...] = ()
    demo: bool = False
    extra: dict = field(default_factory=dict)
