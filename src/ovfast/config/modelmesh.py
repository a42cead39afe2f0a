"""ModelMesh runtime settings: ``--modelmesh`` and its flags, and the environment variables a ModelMesh pod
gives its runtime, validated once into a :class:`ModelMeshConfig` (see docs/kubernetes.md, "ModelMesh").

ovfast runs as a ModelMesh runtime when ``--modelmesh`` is given, or when the environment names ModelMesh's
management endpoint (``INTERNAL_GRPC_SOCKET_PATH``, ``INTERNAL_GRPC_PORT``: ModelMesh's own names for it;
``ADAPTER_PORT``: what modelmesh-serving gives a built-in adapter). Each value, first match wins:

- management endpoint: ``--modelmesh_endpoint``; ``INTERNAL_GRPC_SOCKET_PATH`` (a Unix socket),
  ``INTERNAL_GRPC_PORT``, ``ADAPTER_PORT``; ``port:8085``;
- capacityInBytes: ``--memory_budget``; ``CONTAINER_MEM_REQ_BYTES`` minus ``MEM_BUFFER_BYTES`` (256 MiB
  unless set); the machine's (or cgroup's) memory minus that buffer;
- maxLoadingConcurrency: ``--modelmesh_loading_concurrency``; ``LOADING_CONCURRENCY``; 1;
- modelLoadingTimeoutMs: ``--modelmesh_load_timeout_ms``; ``LOADTIME_TIMEOUT``; 90000;
- defaultModelSizeInBytes: ``--modelmesh_default_model_size``; ``DEFAULT_MODELSIZE``; min(128 MiB,
  capacity / 10);
- limitModelConcurrency and each model's maxConcurrency: ``--modelmesh_model_concurrency``;
  ``LIMIT_PER_MODEL_CONCURRENCY``; 0 (off).

The data endpoint (inference) is ``--port``: ``INTERNAL_SERVING_GRPC_PORT`` when it is not given, else 8001;
with ``--modelmesh_data_endpoint unix:/path`` (or ``INTERNAL_SERVING_GRPC_SOCKET_PATH``) the same server also
listens on that Unix socket, which ModelMesh prefers for the data endpoint. Management and data endpoints
may be the same (one server then answers both).
The values are checked as ModelMesh checks them at start-up (so a bad one stops ovfast with a clear
message rather than ModelMesh's pod): loading concurrency >= 1, timeout >= 100 ms, default size >= 8 KiB and
capacity >= max(2 x default, min(512 MiB, 10 x default)).
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ovfast.config.budget import ResidencyConfig, parse_size, total_memory

DEFAULT_ENDPOINT = "port:8085"
DEFAULT_DATA_PORT = 8001
DEFAULT_MEM_BUFFER = 256 * 2**20  # as modelmesh-serving's built-in adapters
DEFAULT_TIMEOUT_MS = 90_000  # ModelMesh's built-in runtimes
DEFAULT_SIZE_CAP = 128 * 2**20
UNIT = 8 * 2**10  # ModelMesh counts memory in 8 KiB units
MAX_UINT32 = 2**32 - 1
_ENDPOINT_RE = re.compile(r"^(port:(\d{1,5})|unix:(/.+))$")


class ModelMeshConfigError(ValueError):
    """A ModelMesh setting that cannot work; the message names the flag or variable."""


@dataclass(frozen=True)
class ModelMeshConfig:
    """What ``runtimeStatus`` reports and where the SPI is served (module docstring)."""

    endpoint: str = DEFAULT_ENDPOINT  # "port:N" or "unix:/path"
    data_socket: str = ""  # "unix:/path": the data endpoint's Unix socket, besides --port ("" = none)
    capacity_bytes: int = 0
    loading_concurrency: int = 1
    load_timeout_ms: int = DEFAULT_TIMEOUT_MS
    default_model_size: int = 0
    model_concurrency: int = 0  # LoadModelResponse.maxConcurrency when > 0 (limitModelConcurrency on)

    def addresses(self, bind_addresses: str) -> list[str]:
        """The management endpoint as gRPC listening addresses: a Unix socket as it is; a port on each of
        ``--grpc_bind_address``'s hosts (ModelMesh's container reaches it over the pod's loopback)."""
        if self.endpoint.startswith("unix:"):
            return [self.endpoint]
        port = int(self.endpoint.split(":", 1)[1])
        hosts = [h.strip() for h in bind_addresses.split(",") if h.strip()]
        return [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts]


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ModelMesh runtime (docs/kubernetes.md)")
    g.add_argument("--modelmesh", action="store_true",
                   help="serve ModelMesh's model-runtime SPI (mmesh.ModelRuntime): ModelMesh loads and unloads the "
                        "models; inference on --port (default 8001), no config file")
    g.add_argument("--modelmesh_endpoint", default=None,
                   help=f"where the SPI is served: port:N or unix:/path (default {DEFAULT_ENDPOINT}, or ModelMesh's "
                        "INTERNAL_GRPC_SOCKET_PATH / INTERNAL_GRPC_PORT / ADAPTER_PORT)")
    g.add_argument("--modelmesh_data_endpoint", default=None,
                   help="unix:/path: inference on this Unix socket too, besides --port (default "
                        "INTERNAL_SERVING_GRPC_SOCKET_PATH, or none)")
    g.add_argument("--modelmesh_loading_concurrency", type=int, default=None,
                   help="maxLoadingConcurrency: loads ModelMesh sends at once (default LOADING_CONCURRENCY, or 1); "
                        "ovfast compiles and measures them one at a time")
    g.add_argument("--modelmesh_load_timeout_ms", type=int, default=None,
                   help=f"modelLoadingTimeoutMs (default LOADTIME_TIMEOUT, or {DEFAULT_TIMEOUT_MS})")
    g.add_argument("--modelmesh_default_model_size", default=None,
                   help="defaultModelSizeInBytes, e.g. 64MiB (default DEFAULT_MODELSIZE, or min(128MiB, capacity/10))")
    g.add_argument("--modelmesh_model_concurrency", type=int, default=None,
                   help="limitModelConcurrency: each model's maxConcurrency (default LIMIT_PER_MODEL_CONCURRENCY, "
                        "or 0 = off)")


_MM_FLAGS = ("modelmesh_endpoint", "modelmesh_data_endpoint", "modelmesh_loading_concurrency", "modelmesh_load_timeout_ms",
             "modelmesh_default_model_size", "modelmesh_model_concurrency")
_ENABLING_ENV = ("INTERNAL_GRPC_SOCKET_PATH", "INTERNAL_GRPC_PORT", "ADAPTER_PORT")


def enabled(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    return bool(args.modelmesh or any(environ.get(k) for k in _ENABLING_ENV))


def check_flags(args: argparse.Namespace) -> None:
    """Under ModelMesh, the flags that would give ovfast models or unloading of its own are refused."""
    for flag in ("config_path", "model_name", "model_path"):
        if getattr(args, flag) is not None:
            raise ModelMeshConfigError(f"--{flag} cannot be used under ModelMesh (--modelmesh): ModelMesh loads "
                                       f"the models through the runtime SPI")
    if args.model_control_mode != "none" or args.load_model:
        raise ModelMeshConfigError("--model_control_mode / --load_model cannot be used under ModelMesh: it decides "
                                   "which models are loaded")
    if args.idle_unload_seconds:
        raise ModelMeshConfigError("--idle_unload_seconds cannot be used under ModelMesh: it unloads models itself "
                                   "and expects every loaded model to stay until it unloads it")


def prepare_args(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """Whether ovfast runs under ModelMesh; if so, checks the flags (:func:`check_flags`) and sets the data port
    (:func:`data_port`) and no folder polling (ModelMesh's models do not change under an id)."""
    if not enabled(args, environ):
        return False
    check_flags(args)
    args.port = data_port(args.port, environ)
    args.file_system_poll_wait_seconds = 0
    return True


def residency(config: ModelMeshConfig) -> ResidencyConfig:
    """Residency under ModelMesh: the capacity as the budget, nothing loaded but what loadModel asks for, and
    nothing ever unloaded to make room (a load that does not fit is refused RESOURCE_EXHAUSTED)."""
    return ResidencyConfig(memory_budget=config.capacity_bytes, explicit=True, evict=False)


def _int(value: object, what: str, low: int, high: int = MAX_UINT32) -> int:
    try:
        v = int(str(value).strip())
    except ValueError:
        raise ModelMeshConfigError(f"{what} must be an integer, got {value!r}") from None
    if not low <= v <= high:
        raise ModelMeshConfigError(f"{what} must be from {low} to {high}, got {v}")
    return v


def _pick(flag_value: object, flag: str, environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[object, str]:
    """(value, what to call it in an error): the flag, else the first variable set, else (None, "")."""
    if flag_value is not None:
        return flag_value, f"--{flag}"
    for name in names:
        if environ.get(name, "").strip():
            return environ[name], name
    return None, ""


def endpoint_from(flag: str | None, environ: Mapping[str, str]) -> str:
    if flag is not None:
        m = _ENDPOINT_RE.match(flag.strip())
        if m is None or (m.group(2) and not 1 <= int(m.group(2)) <= 65535):
            raise ModelMeshConfigError(f"--modelmesh_endpoint must be port:N (1-65535) or unix:/absolute/path, "
                                       f"got {flag!r}")
        return flag.strip()
    if environ.get("INTERNAL_GRPC_SOCKET_PATH", "").strip():
        path = environ["INTERNAL_GRPC_SOCKET_PATH"].strip()
        if not path.startswith("/"):
            raise ModelMeshConfigError(f"INTERNAL_GRPC_SOCKET_PATH must be an absolute path, got {path!r}")
        return f"unix:{path}"
    value, what = _pick(None, "", environ, ("INTERNAL_GRPC_PORT", "ADAPTER_PORT"))
    if value is not None:
        return f"port:{_int(value, what, 1, 65535)}"
    return DEFAULT_ENDPOINT


def data_socket_from(flag: str | None, environ: Mapping[str, str]) -> str:
    if flag is not None:
        if not flag.strip().startswith("unix:/"):
            raise ModelMeshConfigError(f"--modelmesh_data_endpoint must be unix:/absolute/path (the TCP data "
                                       f"endpoint is --port), got {flag!r}")
        return flag.strip()
    path = environ.get("INTERNAL_SERVING_GRPC_SOCKET_PATH", "").strip()
    if path and not path.startswith("/"):
        raise ModelMeshConfigError(f"INTERNAL_SERVING_GRPC_SOCKET_PATH must be an absolute path, got {path!r}")
    return f"unix:{path}" if path else ""


def capacity_from(memory_budget: int | None, environ: Mapping[str, str]) -> int:
    """--memory_budget (already parsed, bytes), else the container's memory request minus the buffer."""
    if memory_budget:
        return memory_budget
    try:
        buffer = parse_size(environ.get("MEM_BUFFER_BYTES", "").strip() or DEFAULT_MEM_BUFFER, "MEM_BUFFER_BYTES")
        request = environ.get("CONTAINER_MEM_REQ_BYTES", "").strip()
        total = parse_size(request, "CONTAINER_MEM_REQ_BYTES") if request else total_memory()
    except ValueError as exc:
        raise ModelMeshConfigError(str(exc)) from None
    if total - buffer <= 0:
        raise ModelMeshConfigError(f"no memory left for models: {'CONTAINER_MEM_REQ_BYTES' if request else 'memory'}"
                                   f" {total} bytes minus MEM_BUFFER_BYTES {buffer}")
    return total - buffer


def from_args(args: argparse.Namespace, memory_budget: int | None,
              environ: Mapping[str, str]) -> ModelMeshConfig | None:
    """The ModelMesh settings, or None when ovfast does not run under ModelMesh (then no --modelmesh_* flag
    may be given). Raises ModelMeshConfigError."""
    if not enabled(args, environ):
        used = [f for f in _MM_FLAGS if getattr(args, f) is not None]
        if used:
            raise ModelMeshConfigError(f"--{used[0]} requires --modelmesh")
        return None
    endpoint = endpoint_from(args.modelmesh_endpoint, environ)
    capacity = capacity_from(memory_budget, environ)
    value, what = _pick(args.modelmesh_loading_concurrency, "modelmesh_loading_concurrency", environ,
                        ("LOADING_CONCURRENCY",))
    concurrency = 1 if value is None else _int(value, what, 1, 64)
    value, what = _pick(args.modelmesh_load_timeout_ms, "modelmesh_load_timeout_ms", environ, ("LOADTIME_TIMEOUT",))
    timeout = DEFAULT_TIMEOUT_MS if value is None else _int(value, what, 100)
    value, what = _pick(args.modelmesh_default_model_size, "modelmesh_default_model_size", environ,
                        ("DEFAULT_MODELSIZE",))
    if value is None:
        default_size = max(UNIT, min(DEFAULT_SIZE_CAP, capacity // 10))
    else:
        try:
            default_size = parse_size(str(value).strip(), what)
        except ValueError as exc:
            raise ModelMeshConfigError(str(exc)) from None
        if default_size < UNIT:
            raise ModelMeshConfigError(f"{what} must be at least {UNIT} bytes (ModelMesh's unit), got {default_size}")
    value, what = _pick(args.modelmesh_model_concurrency, "modelmesh_model_concurrency", environ,
                        ("LIMIT_PER_MODEL_CONCURRENCY",))
    model_concurrency = 0 if value is None else _int(value, what, 0)
    need = max(2 * default_size, min(512 * 2**20, 10 * default_size))
    if capacity < need:
        raise ModelMeshConfigError(
            f"ModelMesh needs a capacity of at least {need} bytes for a default model size of {default_size} "
            f"(max(2 x default, min(512 MiB, 10 x default))); the capacity is {capacity} bytes: raise "
            f"--memory_budget (or the container's memory request) or lower --modelmesh_default_model_size")
    return ModelMeshConfig(endpoint=endpoint, data_socket=data_socket_from(args.modelmesh_data_endpoint, environ),
                           capacity_bytes=capacity, loading_concurrency=concurrency,
                           load_timeout_ms=timeout, default_model_size=default_size,
                           model_concurrency=model_concurrency)


def data_port(port: int | None, environ: Mapping[str, str]) -> int:
    """The inference port under ModelMesh: --port, else INTERNAL_SERVING_GRPC_PORT, else 8001."""
    if port == 0:
        raise ModelMeshConfigError("--port 0 turns gRPC off, but ModelMesh sends inference over gRPC (--port)")
    if port is not None:
        return port
    value = environ.get("INTERNAL_SERVING_GRPC_PORT", "").strip()
    return _int(value, "INTERNAL_SERVING_GRPC_PORT", 1, 65535) if value else DEFAULT_DATA_PORT
