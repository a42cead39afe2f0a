"""Frozen configuration models. Built only by config/load.py; nothing mutates them.

Every knob is held as the typed value it means (dimensions as integers and ranges, mean/scale
as floats); the text forms of config.json and the flags are parsed once, in config/load.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, Union

from ovfast.config.budget import ResidencyConfig
from ovfast.config.modelmesh import ModelMeshConfig
from ovfast.repository.version_policy import Latest, VersionPolicy
from ovfast.security import TlsFiles

AUTO: Final = "auto"  # shape / batch_size "auto": the model is reloaded for each new request shape


@dataclass(frozen=True)
class Dim:
    """One dimension: ``min == max`` is fixed, ``max == -1`` is unbounded (``Dim(0, -1)`` = any size)."""

    min: int
    max: int

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def __str__(self) -> str:
        """The config text: ``N``, ``-1`` or ``min:max``."""
        if self.fixed:
            return str(self.min)
        if self.min == 0 and self.max == -1:
            return "-1"
        return f"{self.min}:{self.max}"


ANY_DIM: Final = Dim(0, -1)


@dataclass(frozen=True)
class ShapeSpec:
    """A shape setting: one :class:`Dim` per dimension."""

    dims: tuple[Dim, ...]

    def __str__(self) -> str:
        return "(" + ",".join(str(d) for d in self.dims) + ")"


ShapeSetting = Union[ShapeSpec, Literal["auto"]]
BatchSetting = Union[Dim, Literal["auto"], None]  # None: the model's own batch dimension


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

    ``shape`` and ``layout`` are ((input name, value), ...) with "" naming the only input
    (the anonymous form ``"shape": "(1,3,224,224)"``); a shape is a :class:`ShapeSpec` or
    ``AUTO``. ``layout`` texts are validated (``"NHWC:NCHW"``, ``"N..."``).
    """

    name: str
    base_path: str
    target_device: str = "CPU"
    plugin_config: tuple[tuple[str, Any], ...] = ()
    nireq: int = 0
    batch_size: BatchSetting = None
    shape: tuple[tuple[str, ShapeSetting], ...] = ()
    layout: tuple[tuple[str, str], ...] = ()
    model_version_policy: VersionPolicy = Latest(1)
    allow_cache: bool = False
    # ovfast extensions (docs/config.md)
    color_format: str | None = None  # channel order of decoded JPEG/PNG inputs: "BGR" (default) or "RGB"
    echo: bool = False  # transport-floor mode (no inference); CLI --echo only
    mean: tuple[float, ...] = ()  # CLI --mean, e.g. "[123.7,116.3,103.5]"; () = none
    scale: tuple[float, ...] = ()  # CLI --scale; every value non-zero
    dynamic_batching: BatchingConfig | None = None  # None: every request runs on its own
    max_queue_size: int = 0  # requests waiting beyond this are refused RESOURCE_EXHAUSTED / 503; 0 = no bound
    # OVMS idle-servable groups: versions of one group load and unload together; "permanent" ones
    # are loaded at start and never unloaded. None: the model is a group of its own.
    group_name: str | None = None
    # stateful models (spec/ovms.md §5): requests come in sequences whose state the server keeps
    stateful: bool = False
    max_sequence_number: int = 500
    idle_sequence_cleanup: bool = True
    low_latency_transformation: bool = False

    @property
    def plugin_config_dict(self) -> dict[str, Any]:
        return dict(self.plugin_config)

    @property
    def auto_batch(self) -> bool:
        return self.batch_size == AUTO and not self.shape

    @property
    def auto_shape_inputs(self) -> tuple[str, ...]:
        """Inputs whose shape follows the request ("" = the only input)."""
        return tuple(k for k, v in self.shape if v == AUTO)


@dataclass(frozen=True)
class MetricsConfig:
    enable: bool = False
    metrics_list: tuple[str, ...] = ()


@dataclass(frozen=True)
class MonitoringConfig:
    metrics: MetricsConfig | None = None


@dataclass(frozen=True)
class RepositoryConfig:
    """A parsed config.json: the valid models, pipelines and custom node libraries (config/dag.py), and why
    the other entries were skipped."""

    models: tuple[ModelConfig, ...] = ()
    errors: tuple[str, ...] = ()
    invalid_names: tuple[str, ...] = ()  # names of the skipped entries, where they had one
    monitoring: MonitoringConfig | None = None
    digest: str = ""  # MD5 of the file content (change detection, as OVMS)
    memory_budget: int | None = None  # top-level "memory_budget", bytes (None = not in the file)
    idle_unload_seconds: float | None = None  # top-level "idle_unload_seconds"
    request_limits: tuple[tuple[str, int], ...] | None = None  # top-level "request_limits" (config/request_limits.py)
    pipelines: tuple[Any, ...] = ()  # config.dag.PipelineConfig
    libraries: tuple[Any, ...] = ()  # config.dag.LibraryConfig


@dataclass(frozen=True)
class ServerConfig:
    port: int = 0
    rest_port: int = 0
    grpc_bind_address: str = "0.0.0.0"
    rest_bind_address: str = "0.0.0.0"
    models: tuple[ModelConfig, ...] = ()
    config_path: str | None = None
    file_system_poll_wait_seconds: int = 1
    sequence_cleaner_poll_wait_minutes: float = 5  # 0: no idle-sequence cleaner
    log_level: str = "INFO"
    log_path: str | None = None
    cache_dir: str | None = None
    grpc_workers: int = 1
    grpc_memory_quota: int | None = None  # gRPC resource quota: bytes (None = unlimited)
    grpc_max_threads: int = 0  # gRPC resource quota: threads (0 = gRPC's default)
    max_request_memory: int = 0  # bytes requests in flight may hold, all ports; 0 = no bound
    grpc_tls: TlsFiles | None = None  # --grpc_certificate_path & co.: TLS (mutual with a CA) on the gRPC port
    rest_workers: int | None = None
    metrics_enable: bool = False
    metrics_list: tuple[str, ...] = ()
    demo: bool = False
    echo: bool = False
    repository: RepositoryConfig | None = None
    residency: ResidencyConfig = ResidencyConfig()
    modelmesh: ModelMeshConfig | None = None  # --modelmesh: the SPI's settings (config/modelmesh.py)
    extra: dict = field(default_factory=dict)
