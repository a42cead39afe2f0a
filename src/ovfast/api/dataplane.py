"""Transport-independent operations: health, metadata, inference, repository.

REST and gRPC handlers only parse and serialize; everything else is here. Every inference, on
every API, goes through :meth:`DataPlane.infer`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ovfast import __version__, _native
from ovfast.api.held_memory import HeldMemory, hold_strings
from ovfast.errors import CancelledError, NotFoundError, OvfastError, UnavailableError
from ovfast.observability.metrics import ROUTES, ServingMetrics
from ovfast.repository.registry import ModelRegistry
from ovfast.runtime.model import ModelHandle, VersionState

SERVER_NAME = "ovfast"
log = logging.getLogger("ovfast.dataplane")
# Triton extensions served
EXTENSIONS = ("binary_tensor_data", "statistics", "model_configuration", "model_repository")
PLATFORM = "OpenVINO"
CLIENT_GONE = "Cancelled: the client disconnected before the request was served"


class InferRequest:
    """A request as a transport parsed it, as :meth:`DataPlane.infer` needs it (one subclass per
    request form)."""

    def prepare(self, handle: ModelHandle) -> None:
        """Decoding that needs the resolved model (e.g. JSON values typed by its inputs). Its errors
        are failures of the request."""

    def input_shapes(self) -> dict[str, list[int]]:
        """Input name -> shape. Asked for (after prepare) only when the model has shape/batch "auto"."""
        raise NotImplementedError

    def submit(self, handle: ModelHandle, fut: asyncio.Future, route: int) -> None:
        """Starts inference on ``handle`` (one of its ``submit_*``); the result arrives on ``fut``."""
        raise NotImplementedError

    def cancel(self) -> None:
        """After :meth:`submit`, the client went away: the native scheduler drops the job if it has not
        started (answering it CANCELLED and counting it as failed); one that runs is counted as usual."""
        raise NotImplementedError


class NativeParsedRequest(InferRequest):
    """A request the native codec parsed (``parsed``: KServeRequest / TfsPredictRequest)."""

    parsed: Any

    def input_shapes(self) -> dict[str, list[int]]:
        return self.parsed.input_shapes  # from the native parse: no second protobuf parse

    def cancel(self) -> None:
        self.parsed.cancel()


class KServeBytesRequest(NativeParsedRequest):
    """KServe gRPC ModelInfer: the native parse of the request bytes (tensors stay in the bytes)."""

    def __init__(self, data: bytes) -> None:
        self.parsed = _native.parse_kserve_request(data)

    def submit(self, handle: ModelHandle, fut: asyncio.Future, route: int) -> None:
        handle.submit_kserve(self.parsed, fut, route)


class TensorsRequest(InferRequest):
    """REST: inputs already decoded to [(name, datatype, shape, buffer)] (BYTES: length-prefixed elements)."""

    def __init__(self, inputs: list, outputs: list | None = None, received_ns: int = 0,
                 sequence: tuple | None = None, held: HeldMemory | None = None) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.received_ns = received_ns
        self.sequence = sequence  # KServe sequence parameters: (id, start, end)
        self.held = held  # what the REST request holds against --max_request_memory (None: not bounded)
        self._job: Any = None  # the submitted job's keepalive (its cancel() drops the job)

    def prepare(self, handle: ModelHandle) -> None:
        # string inputs cost a std::string per element once bound: held before any is made
        hold_strings(self.held, self.inputs, {s.name for s in handle.inputs if s.datatype == "BYTES"})

    def input_shapes(self) -> dict[str, list[int]]:
        return {i[0]: list(i[2]) for i in self.inputs}

    def submit(self, handle: ModelHandle, fut: asyncio.Future, route: int) -> None:
        self._job = handle.submit_tensors(self.inputs, self.outputs, fut, route, self.received_ns, self.sequence)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()


class DataPlane:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.metrics = ServingMetrics(registry)
        self.ready = False
        self.live = True
        # set by the server: applies config changes now (TFS HandleReloadConfigRequest); None = nothing to reload
        self.reload_config = None
        # set by the server: builds the Residency that a first explicit load/unload turns on when no
        # residency option did (repository/residency.py)
        self.make_residency = None
        # set by the server: raises PermissionDeniedError under --disable_model_control (api/access.py)
        self.refuse_model_control: Callable[[], None] = lambda: None

    # -- health / metadata -----------------------------------------------------------------
    def server_metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    # -- lookups (no waiting: metadata and status answer with the state as it is) -----------------
    def resolve(self, name: str, version: str | int | None) -> ModelHandle:
        """The handle describing (name, version) for metadata: the AVAILABLE one (''/0/None = default), or
        one parked by residency, answered without loading it. NotFound / Unavailable otherwise."""
        return self.registry.describe(name, version)

    def has_model(self, name: str) -> bool:
        return name in self.registry.models

    def model_versions(self, name: str) -> dict[int, ModelHandle]:
        """Every version known for ``name`` (retired ones included); NotFound for an unknown name."""
        return self.registry.get_model(name).versions

    def model_ready(self, name: str, version: str | None) -> bool:
        """AVAILABLE, or parked to load on its next request (a request is all it takes)."""
        _, h = self.registry.lookup_version(name, version)
        return h is not None and h.reported_state == VersionState.AVAILABLE

    async def model_metadata(self, name: str, version: str | None) -> dict:
        """KServe model metadata. A version parked under a remote base path is downloaded (not loaded)
        first when its signature is not known yet."""
        await self.registry.fetch_signature(name, version)
        h = self.registry.describe(name, version)
        served = self.registry.models[name]
        return {
            "name": name,
            "versions": [str(v) for v, x in sorted(served.versions.items())
                         if x.reported_state == VersionState.AVAILABLE],
            "platform": PLATFORM,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in h.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in h.outputs],
            # an extra field REST clients read (ModelMetadataResponse has no parameters on gRPC: its
            # ModelConfig does); what this version holds now, 0 when it is not loaded
            "parameters": {"size_bytes": h.held_bytes},
        }

    def model_names(self) -> list[str]:
        return sorted(self.registry.models)

    def repository_index(self, ready_only: bool = False, sizes: bool = False) -> list[dict]:
        """Triton's repository index: every catalog version with its state and why. A version parked by
        residency is UNAVAILABLE with the reason (e.g. "unloaded", or that it loads on its first
        request). ``sizes``: each entry also carries ``size_bytes``, the measured memory cost of a
        loaded version (0 = not loaded)."""
        out = []
        for name in sorted(self.registry.models):
            served = self.registry.models[name]
            for v, h in sorted(served.versions.items()):
                state = "READY" if h.state == VersionState.AVAILABLE else (
                    "LOADING" if h.state < VersionState.AVAILABLE else "UNAVAILABLE")
                if ready_only and state != "READY":
                    continue
                reason = h.parked or ("" if h.error_code == "OK" else h.error_message)
                entry: dict[str, str | int] = {"name": name, "version": str(v), "state": state, "reason": reason}
                if sizes:
                    entry["size_bytes"] = h.held_bytes
                out.append(entry)
        return out

    async def load_model(self, name: str, parameters: dict | None = None) -> None:
        """RepositoryModelLoad (every API): see Residency.load_model. Refused under --disable_model_control."""
        self.refuse_model_control()
        await self._residency().load_model(name, parameters)

    async def unload_model(self, name: str, parameters: dict | None = None) -> None:
        """RepositoryModelUnload (every API): see Residency.unload_model. Refused under --disable_model_control."""
        self.refuse_model_control()
        await self._residency().unload_model(name, parameters)

    def _residency(self):
        if self.registry.residency is None:
            self.registry.residency = self.make_residency()
        return self.registry.residency

    def model_statistics(self, name: str, version: str | None) -> list[dict]:
        """Triton's ModelStatistics (JSON field names) for every AVAILABLE version asked for; counted natively."""
        out = []
        for h in self.handles_for_stats(name, version):
            s = h.statistics()
            ok = s["success_count"]
            out.append({
                "name": h.name, "version": h.version_str, "last_inference": s["last_inference_ms"],
                "inference_count": s["inference_count"], "execution_count": s["execution_count"],
                "inference_stats": {
                    "success": {"count": ok, "ns": s["success_ns"]},
                    "fail": {"count": s["fail_count"], "ns": s["fail_ns"]},
                    "queue": {"count": ok, "ns": s["queue_ns"]},
                    "compute_input": {"count": ok, "ns": 0},
                    "compute_infer": {"count": ok, "ns": s["compute_ns"]},
                    "compute_output": {"count": ok, "ns": 0}},
                "batch_stats": []})
        return out

    def handles_for_stats(self, name: str, version: str | None) -> list[ModelHandle]:
        if not name:
            return [h for m in self.registry.models.values() for h in m.versions.values()
                    if h.state == VersionState.AVAILABLE]
        if version:
            return [self.registry.resolve(name, version)]
        m = self.registry.get_model(name)
        return [h for h in m.versions.values() if h.state == VersionState.AVAILABLE]

    # -- inference -------------------------------------------------------------------------
    async def infer(self, name: str, version: str | int | None, route: int,
                    request: InferRequest) -> tuple[ModelHandle, Any]:
        """The one inference entry of every API. Returns (the handle that ran it, payload).

        Resolves ``version`` as the API gave it (''/0/None = default), waiting up to 10 s (OVMS) for
        a version that is still loading; lets the request decode what needs the model; for a model
        with shape/batch "auto", reloads the version for the request's input shapes; submits;
        accounts the finished request. ``route``
        (observability.metrics ROUTE_*, -1 = not counted) is the metrics route. The payload is what
        the handle's ``submit_*`` produces (response bytes, or output tensors).
        """
        t0 = time.monotonic_ns()
        pinned = None
        try:
            handle = self.registry.resolve(name, version)  # the common case, without a coroutine
        except (UnavailableError, NotFoundError):
            # loading, parked by residency, or unknown (resolve_wait raises the same error again)
            handle = pinned = await self.registry.resolve_wait(name, version)
        submitted = False
        try:
            try:
                request.prepare(handle)
                if handle.auto_reshape:
                    # shielded: a reload for the new shape completes (and is kept) even if the client leaves
                    handle = await asyncio.shield(self.registry.fit_shapes(handle, request.input_shapes()))
                fut = asyncio.get_running_loop().create_future()
                submitted = True
                request.submit(handle, fut, route)
            finally:
                if pinned is not None:  # submitted (or failed): residency may unload it again
                    pinned.pins -= 1
            payload, _infer_us, _wait_us = await fut
        except OvfastError as exc:
            self._account(handle, route, t0, exc, counted_natively=submitted)
            raise
        except asyncio.CancelledError:
            # The client went away (a REST handler is cancelled when its connection closes): stop
            # waiting, and drop the job if it has not started. Once submitted, the native side counts
            # it, dropped (failed) or run.
            if submitted:
                request.cancel()
            else:
                self._account(handle, route, t0, CancelledError(CLIENT_GONE), counted_natively=False)
            raise
        self._account(handle, route, t0, None)
        return handle, payload

    def reject(self, name: str, version: str | int | None, route: int, exc: BaseException) -> None:
        """A request that failed before :meth:`infer` (its body could not be parsed): counted as a
        failure of the model it names if that resolves (OVMS); not counted otherwise."""
        try:
            handle = self.registry.resolve(name, version)
        except OvfastError:
            return
        self._account(handle, route, time.monotonic_ns(), exc, counted_natively=False)

    def _account(self, h: ModelHandle, route: int, t0: int, exc: BaseException | None,
                 counted_natively: bool = True) -> None:
        """The one place a finished inference request is accounted. The native core counts every request
        that reached its submit (Triton statistics and Prometheus); a failure before that is counted here,
        into the same native counters. ``t0``: time.monotonic_ns() at receipt."""
        if exc is None or counted_natively:
            if exc is not None:
                self.log_failure(h.name, h.version, exc)
            return
        h.record_failure(t0)
        if route >= 0:
            self.metrics.count(h, *ROUTES[route], ok=False)
        self.log_failure(h.name, h.version, exc)

    @staticmethod
    def log_failure(name: str, version: int, error: object) -> None:
        """The log line of a failed inference request, on every path (the native gRPC front-end
        reports the requests it failed here too)."""
        log.debug("Inference failed for model %s version %d: %s", name, version, error)

    @staticmethod
    def logs_failures() -> bool:
        """Whether :meth:`log_failure` writes anything (the native front-end reports failures only then)."""
        return log.isEnabledFor(logging.DEBUG)
