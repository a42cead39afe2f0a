"""Frozen configuration models. Built only by config/load.py; nothing mutates them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ovfast.repository.version_policy import Latest, VersionPolicy


@dataclass(frozen=True)
class BatchingConfig:
    """A model's ``dynamic_batching`` settings (docs/config.md), validated.

    ``preferred_batch_sizes`` is sorted, distinct, each in 1..max_batch_size.
    """

    max_batch_size: int
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    """One ``model_config_list`` entry, validated.

    ``shape`` and ``layout`` are ((input name, text), ...) with "" naming the only input
    (the anonymous form ``"shape": "(1,3,224,224)"``). Shape texts are "auto" or a
    tuple string such as "(1,3,-1,1:8)"; ``batch_size`` is "", "auto", "N", "-1" or "lo:hi".
    """

    name: str
    base_path: str
    target_device: str = "CPU"
    plugin_config: tuple[tuple[str, Any], ...] = ()
    nireq: int = 0
    batch_size: str = ""
    shape: tuple[tuple[str, str], ...] = ()
    layout: tuple[tuple[str, str], ...] = ()
    model_version_policy: VersionPolicy = Latest(1)
    allow_cache: bool = False
    stateful: bool = False
    idle_sequence_cleanup: bool = True
    max_sequence_number: int = 500
    low_latency_transformation: bool = False
    # ovfast extensions (docs/config.md)
    color_format: str | None = None  # channel order of decoded JPEG/PNG inputs: "BGR" (default) or "RGB"
    echo: bool = False  # transport-floor mode (no inference); CLI --echo only
    mean: str | None = None  # CLI --mean, e.g. "[123.7,116.3,103.5]" (needs a layout)
    scale: str | None = None  # CLI --scale
    dynamic_batching: BatchingConfig | None = None  # None: every request runs on its own

    @property
    def plugin_config_dict(self) -> dict[str, Any]:
        return dict(self.plugin_config)

    @property
    def auto_batch(self) -> bool:
        return self.batch_size == "auto" and not self.shape

    @property
    def auto_shape_inputs(self) -> tuple[str, ...]:
        """Inputs whose shape follows the request ("" = the only input)."""
        return tuple(k for k, v in self.shape if v == "auto")


@dataclass(frozen=True)
class MetricsConfig:
    enable: bool = False
    metrics_list: tuple[str, ...] = ()


@dataclass(frozen=True)
class MonitoringConfig:
    metrics: MetricsConfig | None = None


@dataclass(frozen=True)
class RepositoryConfig:
    """A parsed config.json: the valid models, and why the others were skipped.

    ``pipelines`` / ``custom_node_libraries`` are kept as raw JSON objects for the DAG code.
    """

    models: tuple[ModelConfig, ...] = ()
    errors: tuple[str, ...] = ()
    invalid_names: tuple[str, ...] = ()  # names of the skipped entries, where they had one
    monitoring: MonitoringConfig | None = None
    pipelines: tuple[Any, ...] = ()
    custom_node_libraries: tuple[Any, ...] = ()
    digest: str = ""  # MD5 of the file content (change detection, as OVMS)


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
    echo: bool = False
    repository: RepositoryConfig | None = None
    extra: dict = field(default_factory=dict)
