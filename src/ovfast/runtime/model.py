"""Served models: a ModelHandle per (model, version) owning a native Servable."""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, field

from ovfast import _native
from ovfast.errors import MODEL_VERSION_NOT_LOADED_ANYMORE, MODEL_VERSION_NOT_LOADED_YET, UnavailableError, one_line
from ovfast.runtime.completions import CompletionDispatcher

log = logging.getLogger("ovfast.model")


class VersionState(enum.IntEnum):
    """TFS ModelVersionStatus.State values (OVMS semantics)."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # KServe name, e.g. "FP32"
    shape: tuple[int, ...]  # -1 for dynamic dims
    dynamic_rank: bool = False
    bounds: tuple[tuple[int, int], ...] = ()


@dataclass
class ModelStats:
    """Counters for Triton's ModelStatistics; updated on the event loop only."""

    success: int = 0
    fail: int = 0
    inference_count: int = 0
    execution_count: int = 0
    success_ns: int = 0
    fail_ns: int = 0
    queue_ns: int = 0
    compute_ns: int = 0
    last_inference_ms: int = 0


@dataclass(frozen=True)
class LoadOptions:
    device: str = "CPU"
    plugin_config: dict = field(default_factory=dict)
    nireq: int = 0
    shapes: dict = field(default_factory=dict)
    batch_size: str = ""
    echo: bool = False
    layouts: dict = field(default_factory=dict)  # name ("" = only input) -> "NHWC:NCHW"
    color_format: str = ""  # decoded JPEG/PNG channel order; "" = BGR
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    # dynamic batching (config.schema.BatchingConfig); max_batch_size 0 = off
    max_batch_size: int = 0
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    # mapping_config.json of the version folder: (model tensor name, public name) pairs
    mapping_inputs: tuple[tuple[str, str], ...] = ()
    mapping_outputs: tuple[tuple[str, str], ...] = ()

    def describe_batching(self) -> str:
        """'' when batching is off, else the settings for the load log line."""
        if not self.max_batch_size:
            return ""
        text = f"dynamic batching: max_batch_size {self.max_batch_size}, max_queue_delay_us {self.max_queue_delay_us}"
        if self.preferred_batch_sizes:
            text += ", preferred_batch_sizes " + ",".join(str(n) for n in self.preferred_batch_sizes)
        return text


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
        self.stats = ModelStats()
        self._completions = completions
        self._core = core
        self.servable: _native.Servable | None = None
        self.inputs: tuple[TensorSpec, ...] = ()
        self.outputs: tuple[TensorSpec, ...] = ()
        self.load_seconds = 0.0
        # What this handle was built from (path + options derived from the config): a reload
        # replaces the handle when this differs from what the current config asks for. An
        # "auto" reshape changes ``options`` but not ``source``.
        self.source: tuple = (path, options)
        self.auto_reshape = False

    def set_state(self, state: VersionState, error_code: str = "OK", message: str | None = None) -> None:
        self.state = state
        self.error_code = error_code
        self.error_message = message if message is not None else error_code
        log.info('STATUS CHANGE: Version %d of model %s status change. New status: ( "state": "%s", "error_code": "%s" )',
                 self.version, self.name, state.name, error_code)

    def load(self) -> None:
        """Blocking: read + compile (the native part releases the GIL). Run in an executor."""
        self.set_state(VersionState.LOADING)
        t0 = time.perf_counter()
        try:
            self.servable = _native.Servable(
                self._core, self.path, device=self.options.device, plugin_config=dict(self.options.plugin_config),
                nireq=int(self.options.nireq), queue=self._completions.queue, shapes=dict(self.options.shapes),
                batch_size=str(self.options.batch_size), echo=bool(self.options.echo),
                layouts=dict(self.options.layouts), color_format=self.options.color_format,
                mean=list(self.options.mean), scale=list(self.options.scale),
                max_batch_size=int(self.options.max_batch_size),
                max_queue_delay_us=int(self.options.max_queue_delay_us),
                preferred_batch_sizes=list(self.options.preferred_batch_sizes),
                input_names=dict(self.options.mapping_inputs), output_names=dict(self.options.mapping_outputs))
        except Exception as exc:
            message = one_line(str(exc))  # OpenVINO's errors span lines; the log and status get one
            self.set_state(VersionState.LOADING, "UNKNOWN", message)
            log.error("Error loading model %s version %d from %s: %s", self.name, self.version, self.path, message)
            raise
        self.load_seconds = time.perf_counter() - t0
        self.inputs = tuple(_spec(t) for t in self.servable.inputs)
        self.outputs = tuple(_spec(t) for t in self.servable.outputs)
        batching = self.options.describe_batching()
        log.info("Loaded model %s; version: %d; No of InferRequests: %d; streams: %d; load time: %.3f s%s",
                 self.name, self.version, self.servable.nireq, self.servable.streams, self.load_seconds,
                 f"; {batching}" if batching else "")
        self.set_state(VersionState.AVAILABLE)

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

    def triton_counts(self) -> tuple[int, int]:
        """(inference_count, execution_count) as Triton's statistics report them: with a dynamic
        batcher, the rows inferred and the batches run (read from the native batch-size histogram);
        without one, each request is one execution."""
        s = self.servable
        if s is not None and s.max_batch_size:
            counts, rows = s.metrics()["batch_size"]
            return int(rows), int(sum(counts))
        return self.stats.inference_count, self.stats.execution_count

    def _live_servable(self) -> _native.Servable:
        s = self.servable
        if s is None or self.state != VersionState.AVAILABLE:
            raise UnavailableError(MODEL_VERSION_NOT_LOADED_ANYMORE if self.state > VersionState.AVAILABLE
                                   else MODEL_VERSION_NOT_LOADED_YET)
        return s

    async def infer_kserve(self, request: _native.KServeRequest, route: int = -1) -> tuple[bytes, int, int]:
        """Runs a parsed KServe request; returns (serialized ModelInferResponse, infer_us, wait_us).

        ``route`` (observability.metrics ROUTE_*) makes the native side count the request."""
        fut = asyncio.get_running_loop().create_future()
        self._live_servable().submit_kserve(request, self.version_str, fut, route)
        return await fut

    async def infer_tensors(self, inputs: list, outputs: list | None, route: int = -1,
                            received_ns: int = 0) -> tuple[list, int, int]:
        """inputs: [(name, datatype, shape, buffer|list[bytes])]; returns ([(name, datatype, shape, array)], infer_us, wait_us).

        ``route`` makes the native side count the request; ``received_ns`` (time.monotonic_ns() at
        receipt) starts its request-time clock."""
        fut = asyncio.get_running_loop().create_future()
        self._live_servable().submit_tensors(inputs, outputs, fut, route, received_ns)
        return await fut


def _spec(t: tuple) -> TensorSpec:
    name, datatype, shape, dynamic_rank, bounds = t
    return TensorSpec(name, datatype, tuple(shape), dynamic_rank, tuple(tuple(b) for b in bounds))
