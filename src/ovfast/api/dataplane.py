"""Transport-independent operations: health, metadata, inference, repository.

REST and gRPC handlers only parse and serialize; everything else is here.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ovfast import __version__, _native
from ovfast.errors import OvfastError, UnavailableError
from ovfast.observability.metrics import ServingMetrics
from ovfast.repository.registry import ModelRegistry
from ovfast.runtime.model import ModelHandle, VersionState

SERVER_NAME = "ovfast"
log = logging.getLogger("ovfast.dataplane")
# Triton extensions served (the repository index is, but not load/unload, so not "model_repository")
EXTENSIONS = ("binary_tensor_data", "statistics", "model_configuration")
PLATFORM = "OpenVINO"


@dataclass
class TensorOut:
    name: str
    datatype: str
    shape: list
    data: object  # numpy array (read-only view of the native tensor) or list[bytes]


def kserve_input_shapes(data: bytes) -> dict[str, list[int]]:
    """Input shapes of a serialized ModelInferRequest (cold path: only models with shape/batch "auto")."""
    from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb

    req = pb.ModelInferRequest.FromString(data)
    return {t.name: list(t.shape) for t in req.inputs}


class DataPlane:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.metrics = ServingMetrics(registry)
        self.ready = False
        self.live = True
        # set by the server: applies config changes now (TFS HandleReloadConfigRequest); None = nothing to reload
        self.reload_config = None

    # -- health / metadata -----------------------------------------------------------------
    def server_metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def model_ready(self, name: str, version: str | None) -> bool:
        _, h = self.registry.lookup_version(name, version)
        return h is not None and h.state == VersionState.AVAILABLE

    def model_metadata(self, name: str, version: str | None) -> dict:
        h = self.registry.resolve(name, version)
        served = self.registry.models[name]
        return {
            "name": name,
            "versions": [str(v) for v in served.available_versions()],
            "platform": PLATFORM,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in h.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in h.outputs],
        }

    def model_names(self) -> list[str]:
        return sorted(self.registry.models)

    def repository_index(self, ready_only: bool = False) -> list[dict]:
        out = []
        for name in sorted(self.registry.models):
            served = self.registry.models[name]
            for v, h in sorted(served.versions.items()):
                state = "READY" if h.state == VersionState.AVAILABLE else (
                    "LOADING" if h.state < VersionState.AVAILABLE else "UNAVAILABLE")
                if ready_only and state != "READY":
                    continue
                reason = "" if h.error_code == "OK" else h.error_message
                out.append({"name": name, "version": str(v), "state": state, "reason": reason})
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
    async def infer_kserve_bytes(self, data: bytes) -> bytes:
        """gRPC ModelInfer: serialized request in, serialized response out; tensors never become Python objects."""
        t0 = time.perf_counter_ns()
        req = _native.parse_kserve_request(data)
        try:
            handle = self.registry.resolve(req.model_name, req.model_version)
        except UnavailableError:  # still loading: wait for it (bounded)
            handle = await self.registry.resolve_wait(req.model_name, req.model_version)
        if handle.auto_reshape:
            handle = await self.registry.fit_shapes(handle, kserve_input_shapes(data))
        try:
            payload, infer_us, wait_us = await handle.infer_kserve(req, self.metrics.route_kserve_grpc_infer)
        except OvfastError as exc:
            self._fail(handle, t0, exc)
            raise
        self._success(handle, t0, infer_us, wait_us)
        return payload

    async def infer_tensors(self, handle: ModelHandle, inputs: list, outputs: list | None, route: int = -1,
                            received_ns: int = 0) -> list:
        """``route``/``received_ns``: see ModelHandle.infer_tensors (metrics are counted natively)."""
        t0 = time.perf_counter_ns()
        if handle.auto_reshape:
            handle = await self.registry.fit_shapes(handle, {i[0]: list(i[2]) for i in inputs})
        try:
            outs, infer_us, wait_us = await handle.infer_tensors(inputs, outputs, route, received_ns)
        except OvfastError as exc:
            self._fail(handle, t0, exc)
            raise
        self._success(handle, t0, infer_us, wait_us)
        return outs

    @staticmethod
    def _success(h: ModelHandle, t0: int, infer_us: int, wait_us: int) -> None:
        s = h.stats
        s.success += 1
        s.inference_count += 1
        s.execution_count += 1
        s.success_ns += time.perf_counter_ns() - t0
        s.compute_ns += infer_us * 1000
        s.queue_ns += wait_us * 1000
        s.last_inference_ms = int(time.time() * 1000)

    @staticmethod
    def _fail(h: ModelHandle, t0: int, exc: BaseException | None = None) -> None:
        h.stats.fail += 1
        h.stats.fail_ns += time.perf_counter_ns() - t0
        log.debug("Inference failed for model %s version %d: %s", h.name, h.version, exc)
