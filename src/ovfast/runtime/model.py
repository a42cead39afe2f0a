"""Served models: a ModelHandle per (model, version) owning a native Servable.

This module is the only one that touches ``_native.Servable``: it turns a model's typed
settings into the servable (:func:`_native_options`) and submits requests to it.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

from ovfast import _native
from ovfast.config.schema import Dim, ModelConfig, ShapeSpec
from ovfast.errors import (MODEL_VERSION_NOT_LOADED_ANYMORE, MODEL_VERSION_NOT_LOADED_YET, UnavailableError, hide_paths,
                           one_line)
from ovfast.runtime.completions import CompletionDispatcher

log = logging.getLogger("ovfast.model")


class VersionState(enum.IntEnum):
    """TFS ModelVersionStatus.State values (OVMS semantics)."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


# Why a version is parked: in the catalog but not loaded (ModelHandle.parked; repository/residency.py).
# All but PARK_EXPLICIT load again on the version's next request.
PARK_LAZY = "not loaded yet: loads on its first request"
PARK_BUDGET = "unloaded to make room under the memory budget: loads on its next request"
PARK_IDLE = "unloaded after being idle: loads on its next request"
PARK_EXPLICIT = "unloaded"  # Triton's word: only a load through the repository API brings it back


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # KServe name, e.g. "FP32"
    shape: tuple[int, ...]  # -1 for dynamic dims
    dynamic_rank: bool = False
    bounds: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class LoadOptions:
    """What one version is compiled with: a model's typed settings, "auto" already resolved
    (``shapes`` holds fixed settings only; the registry fills in a request's shape for "auto")."""

    device: str = "CPU"
    plugin_config: tuple[tuple[str, Any], ...] = ()
    nireq: int = 0
    shapes: tuple[tuple[str, ShapeSpec], ...] = ()  # input name ("" = the only input) -> shape
    batch_size: Dim | None = None
    echo: bool = False
    layouts: tuple[tuple[str, str], ...] = ()  # name ("" = the only input) -> "NHWC:NCHW"
    color_format: str = ""  # decoded JPEG/PNG channel order; "" = BGR
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    # dynamic batching (config.schema.BatchingConfig); max_batch_size 0 = off
    max_batch_size: int = 0
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 0  # requests waiting beyond this are refused; 0 = no bound
    # mapping_config.json of the version folder: (model tensor name, public name) pairs
    mapping_inputs: tuple[tuple[str, str], ...] = ()
    mapping_outputs: tuple[tuple[str, str], ...] = ()
    # stateful models (config.schema.ModelConfig); idle_sequence_cleanup is the cleaner's, not native
    stateful: bool = False
    max_sequence_number: int = 500
    idle_sequence_cleanup: bool = True
    low_latency_transformation: bool = False

    def describe_batching(self) -> str:
        """'' when batching is off, else the settings for the load log line."""
        if not self.max_batch_size:
            return ""
        text = f"dynamic batching: max_batch_size {self.max_batch_size}, max_queue_delay_us {self.max_queue_delay_us}"
        if self.preferred_batch_sizes:
            text += ", preferred_batch_sizes " + ",".join(str(n) for n in self.preferred_batch_sizes)
        return text


DEFAULT_PERFORMANCE_HINT = "LATENCY"


def load_options(cfg: ModelConfig) -> LoadOptions:
    """A model's settings as compile options (OVMS defaults applied; "auto" entries left out)."""
    plugin = cfg.plugin_config_dict
    if (cfg.auto_batch or cfg.auto_shape_inputs) and not cfg.allow_cache:
        # OVMS: "auto" models bypass the --cache_dir model cache unless allow_cache is set
        # (every request shape would leave a blob behind).
        plugin.setdefault("CACHE_DIR", "")
    if "PERFORMANCE_HINT" not in plugin and "NUM_STREAMS" not in plugin:
        # Default (as OVMS): the LATENCY hint. Measured with bench/ (ResNet-50, 2 cores): one client
        # p50 54.7 ms vs 95.5 ms with THROUGHPUT; at 8 clients 18.8 vs 20.3 infer/s.
        plugin["PERFORMANCE_HINT"] = DEFAULT_PERFORMANCE_HINT
    b = cfg.dynamic_batching
    batching = {} if b is None else {"max_batch_size": b.max_batch_size, "max_queue_delay_us": b.max_queue_delay_us,
                                     "preferred_batch_sizes": b.preferred_batch_sizes}
    return LoadOptions(
        device=cfg.target_device, plugin_config=tuple(sorted(plugin.items())), nireq=cfg.nireq,
        shapes=tuple((k, v) for k, v in cfg.shape if isinstance(v, ShapeSpec)),
        batch_size=cfg.batch_size if isinstance(cfg.batch_size, Dim) else None, echo=cfg.echo,
        layouts=cfg.layout, color_format=cfg.color_format or "", mean=cfg.mean, scale=cfg.scale,
        max_queue_size=cfg.max_queue_size,
        stateful=cfg.stateful, max_sequence_number=cfg.max_sequence_number,
        idle_sequence_cleanup=cfg.idle_sequence_cleanup, low_latency_transformation=cfg.low_latency_transformation,
        **batching)


def _plugin_value(v: object) -> str:
    if isinstance(v, bool):
        return "YES" if v else "NO"
    return str(v)


def _native_options(path: str, o: LoadOptions) -> _native.ModelOptions:
    """LoadOptions -> the one struct every knob crosses to native with (the one place that knows it)."""
    n = _native.ModelOptions()
    n.model_path = path
    n.device = o.device
    n.plugin_config = {str(k): _plugin_value(v) for k, v in o.plugin_config}
    n.nireq = int(o.nireq)
    n.shapes = {name: [(d.min, d.max) for d in spec.dims] for name, spec in o.shapes}
    n.batch_size = None if o.batch_size is None else (o.batch_size.min, o.batch_size.max)
    n.layouts = dict(o.layouts)
    n.color_format = o.color_format
    n.mean = list(o.mean)
    n.scale = list(o.scale)
    n.max_batch_size = int(o.max_batch_size)
    n.max_queue_delay_us = int(o.max_queue_delay_us)
    n.preferred_batch_sizes = list(o.preferred_batch_sizes)
    n.max_queue_size = int(o.max_queue_size)
    n.input_names = dict(o.mapping_inputs)
    n.output_names = dict(o.mapping_outputs)
    n.echo = bool(o.echo)
    n.stateful = bool(o.stateful)
    n.max_sequence_number = int(o.max_sequence_number)
    n.low_latency_transformation = bool(o.low_latency_transformation)
    return n


_STAT_KEYS = ("success_count", "success_ns", "fail_count", "fail_ns", "queue_ns", "compute_ns", "inference_count",
              "execution_count", "last_inference_ms")


class ModelHandle:
    """One served version. ``infer_*`` are coroutines; the native work runs with the GIL released."""

    def __init__(self, name: str, version: int, path: str, options: LoadOptions,
                 completions: CompletionDispatcher, core: _native.Core) -> None:
        self.name = name
        self.version = version
        self.version_str = str(version)
        self.path = path
        self.options = options
        self.state = VersionState.START
        self.error_code = "OK"
        self.error_message = "OK"
        self._completions = completions
        self._core = core
        self.servable: _native.Servable | None = None
        self.inputs: tuple[TensorSpec, ...] = ()
        self.outputs: tuple[TensorSpec, ...] = ()
        self.load_seconds = 0.0
        # The model's config generation this handle was built for (registry.ServedModel.generation):
        # a reload plan that changes the model's settings moves the generation on, and the registry
        # reloads every version built for an older one. An "auto" reshape keeps the generation.
        self.generation = 0
        self.auto_reshape = False
        # Residency (repository/residency.py): why this version is in the catalog but not loaded
        # ("" = it is not parked); its measured memory cost (bytes, 0 = not measured); and how many
        # requests that waited for its load have not reached submit yet (it is not unloaded meanwhile).
        self.parked = ""
        self.size_bytes = 0
        self.pins = 0

    def set_state(self, state: VersionState, error_code: str = "OK", message: str | None = None) -> None:
        self.state = state
        self.error_code = error_code
        # what clients are told (TFS status, repository index): no absolute paths; the log keeps them
        self.error_message = hide_paths(message) if message is not None else error_code
        log.info('STATUS CHANGE: Version %d of model %s status change. New status: ( "state": "%s", "error_code": "%s" )',
                 self.version, self.name, state.name, error_code)

    def load(self) -> None:
        """Blocking: read + compile (the native part releases the GIL). Run in an executor."""
        self.set_state(VersionState.LOADING)
        t0 = time.perf_counter()
        try:
            self.servable = _native.Servable(self._core, _native_options(self.path, self.options),
                                             self._completions.queue)
        except Exception as exc:
            message = one_line(str(exc))  # OpenVINO's errors span lines; the log and status get one
            self.set_state(VersionState.LOADING, "UNKNOWN", message)
            log.error("Error loading model %s version %d from %s: %s", self.name, self.version, self.path, message)
            raise
        self.load_seconds = time.perf_counter() - t0
        self.size_bytes = self.servable.memory_bytes
        self.inputs = tuple(_spec(t) for t in self.servable.inputs)
        self.outputs = tuple(_spec(t) for t in self.servable.outputs)
        batching = self.options.describe_batching()
        log.info("Loaded model %s; version: %d; No of InferRequests: %d; streams: %d; load time: %.3f s%s",
                 self.name, self.version, self.servable.nireq, self.servable.streams, self.load_seconds,
                 f"; {batching}" if batching else "")
        self.set_state(VersionState.AVAILABLE)

    def read_signature(self) -> None:
        """Blocking: reads the model (renamed, reshaped, with its pre-processing) without compiling it,
        for the metadata of a version that is not loaded. The native part releases the GIL."""
        from dataclasses import replace
        probe = _native.Servable(self._core, _native_options(self.path, replace(self.options, echo=True)),
                                 self._completions.queue)
        self.inputs = tuple(_spec(t) for t in probe.inputs)
        self.outputs = tuple(_spec(t) for t in probe.outputs)

    def busy(self) -> bool:
        """Requests in flight or queued on this version (native counters; no Python per request)."""
        s = self.servable
        return self.pins > 0 or (s is not None and s.in_flight > 0)

    def unload(self) -> None:
        """Blocking: waits for in-flight jobs, then frees the compiled model."""
        if self.state != VersionState.UNLOADING:
            self.set_state(VersionState.UNLOADING)
        if self.servable is not None:
            self.servable.drain()
            self.servable = None
        self.set_state(VersionState.END)

    @property
    def available(self) -> bool:
        return self.state == VersionState.AVAILABLE

    @property
    def loadable(self) -> bool:
        """Parked, and loaded again by its next request (not unloaded explicitly)."""
        return bool(self.parked) and self.parked != PARK_EXPLICIT

    @property
    def held_bytes(self) -> int:
        """The measured memory this version holds now (read + compile + infer requests); 0 when it is not loaded."""
        return self.size_bytes if self.servable is not None else 0

    @property
    def reported_state(self) -> VersionState:
        """The state status APIs report: a version that loads on demand is AVAILABLE to clients (as
        OVMS reports its idle-unloaded servables), since a request is all it takes to serve it."""
        return VersionState.AVAILABLE if self.loadable else self.state

    def statistics(self) -> dict:
        """Triton statistics of this version, counted natively on every path (zeros before it loads)."""
        s = self.servable
        if s is None:
            return dict.fromkeys(_STAT_KEYS, 0)
        return s.statistics()

    def record_failure(self, received_ns: int) -> None:
        """Counts a request for this version that failed before reaching the native submit."""
        s = self.servable
        if s is not None:
            s.record_failure(received_ns)

    def _live_servable(self) -> _native.Servable:
        s = self.servable
        if s is None or self.state != VersionState.AVAILABLE:
            raise UnavailableError(MODEL_VERSION_NOT_LOADED_ANYMORE if self.state > VersionState.AVAILABLE
                                   else MODEL_VERSION_NOT_LOADED_YET)
        return s

    # -- submitting: the result arrives on ``fut`` as (payload, infer_us, wait_us) ---------------
    # ``route`` (observability.metrics ROUTE_*, -1 = not counted) makes the native side count the
    # request. Each raises UnavailableError when this version is not AVAILABLE (any more), and the
    # native validation errors as they are.

    def submit_kserve(self, request: _native.KServeRequest, fut: asyncio.Future, route: int = -1) -> None:
        """A parsed KServe request; payload: the serialized ModelInferResponse."""
        self._live_servable().submit_kserve(request, self.version_str, fut, route)

    def submit_tfs(self, request: _native.TfsPredictRequest, fut: asyncio.Future, route: int = -1) -> None:
        """A parsed TFS PredictRequest; payload: the serialized PredictResponse."""
        _native.submit_tfs(self._live_servable(), request, self.version_str, fut, route)

    def submit_tensors(self, inputs: list, outputs: list | None, fut: asyncio.Future, route: int = -1,
                       received_ns: int = 0, sequence: tuple | None = None) -> _native._BufferSet:
        """inputs: [(name, datatype, shape, buffer|list[bytes])] (BYTES buffers: 4-byte length, bytes, ...); payload: [(name, datatype, shape, array)].
        ``received_ns`` (time.monotonic_ns() at receipt) starts the request-time clock. ``sequence``: KServe's
        (sequence_id, sequence_start, sequence_end) request parameters, or None. Returns the job's
        keepalive: its ``cancel()`` drops the job if it has not started (the client went away)."""
        return self._live_servable().submit_tensors(inputs, outputs, fut, route, received_ns, sequence)

    @property
    def stateful(self) -> bool:
        return self.options.stateful

    def sweep_idle_sequences(self) -> int:
        """One pass of the idle-sequence cleaner (blocking briefly; releases the GIL). Returns how many
        sequences were removed."""
        s = self.servable
        if s is None or not self.options.stateful or not self.options.idle_sequence_cleanup:
            return 0
        return s.sweep_idle_sequences()

    def sequence_stats(self) -> tuple[int, int]:
        """(live sequences, bytes of their saved state)."""
        s = self.servable
        return (0, 0) if s is None else tuple(s.sequence_stats())

    def flush(self) -> None:
        """Shutdown: a dynamic batcher starts what it holds without waiting out its queue delay."""
        if self.servable is not None:
            self.servable.flush()


def _spec(t: tuple) -> TensorSpec:
    name, datatype, shape, dynamic_rank, bounds = t
    return TensorSpec(name, datatype, tuple(shape), dynamic_rank, tuple(tuple(b) for b in bounds))
