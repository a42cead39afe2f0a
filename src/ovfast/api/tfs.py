"""TensorFlow-Serving API semantics shared by the gRPC and REST transports.

Owns what OVMS's TFS frontend decides: model/version resolution for the TFS
RPCs, the ``serving_default`` signature (TF dtype names, dynamic dims as -1),
per-version status with TFS state/error-code values, and Predict over native
PredictRequest/PredictResponse bytes through ``DataPlane.infer``. Transports
only parse and serialize.
"""
from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass

from ovfast import _native
from ovfast.api.dataplane import DataPlane, InferRequest, NativeParsedRequest
from ovfast.api.types import TF_DT_INVALID, TF_ENUM
from ovfast.errors import MODEL_NAME_MISSING, MODEL_VERSION_MISSING, InvalidArgumentError, NotFoundError
from ovfast.runtime.model import ModelHandle, TensorSpec

from ovfast._gen.tensorflow.core.framework import tensor_shape_pb2
from ovfast._gen.tensorflow.core.protobuf import meta_graph_pb2
from ovfast._gen.tensorflow_serving.apis import get_model_metadata_pb2 as md_pb
from ovfast._gen.tensorflow_serving.apis import get_model_status_pb2 as st_pb

MODEL_SPEC_MISSING = "model_spec missing in request"
INVALID_SIGNATURE_DEF = "Invalid signature name"
# OVMS's TFS gRPC Predict falls through to the pipeline lookup for unknown names.
PIPELINE_NAME_MISSING = "Pipeline with requested name is not found"
SIGNATURE = "serving_default"
METHOD_NAME = "tensorflow/serving/predict"

# ModelHandle.error_code -> tensorflow.error.Code (OVMS uses only these three).
ERROR_CODE_VALUE = {"OK": 0, "UNKNOWN": 2, "FAILED_PRECONDITION": 9}
INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: int  # TFS ModelVersionStatus.State value
    state_name: str
    error_code: str
    error_message: str


def parse_version(version: int | str | None) -> int:
    """A TFS version (Int64Value or URL digits) -> int; 0 = default. Out of int64 / negative -> NOT_FOUND."""
    if version is None or version == "":
        return 0
    v = int(version)
    if v < 0 or v > INT64_MAX:
        raise NotFoundError(MODEL_VERSION_MISSING)
    return v


class TfsPredictBytes(NativeParsedRequest):
    """TFS gRPC Predict: the native parse of the PredictRequest bytes (tensor_content stays in the bytes)."""

    def __init__(self, data: bytes) -> None:
        self.parsed = _native.parse_tfs_predict_request(data)

    def submit(self, handle: ModelHandle, fut: asyncio.Future, route: int) -> None:
        handle.submit_tfs(self.parsed, fut, route)


class TfsApi:
    """The TFS operations over one :class:`DataPlane`."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane

    # -- Predict ---------------------------------------------------------------------------
    def _version(self, name: str, version: int | str | None, missing_name: str = MODEL_NAME_MISSING) -> int | None:
        """The version to ask the data plane for (None = default); an unknown name is reported first."""
        if not self.dp.has_model(name):
            raise NotFoundError(missing_name)
        return parse_version(version) or None

    def resolve(self, name: str, version: int | str | None) -> ModelHandle:
        """The AVAILABLE handle for a TFS (name, version) (metadata: no waiting)."""
        return self.dp.resolve(name, self._version(name, version))

    async def predict(self, name: str, version: int | str | None, route: int, request: InferRequest,
                      missing_name: str = MODEL_NAME_MISSING) -> tuple[ModelHandle, object]:
        """TFS Predict on either transport: ``DataPlane.infer`` with the TFS name and version rules."""
        return await self.dp.infer(name, self._version(name, version, missing_name), route, request)

    async def predict_bytes(self, data: bytes) -> bytes:
        """gRPC Predict: serialized PredictRequest in, serialized PredictResponse out (native both ways)."""
        req = TfsPredictBytes(data)
        if not req.parsed.has_model_spec:
            raise InvalidArgumentError(MODEL_SPEC_MISSING)
        _, payload = await self.predict(req.parsed.model_name, req.parsed.model_version,
                                        self.dp.metrics.route_tfs_grpc_predict, req, PIPELINE_NAME_MISSING)
        # A response with no outputs and no model_spec is empty: drain() hands that back as [].
        return payload if isinstance(payload, bytes) else b""

    # -- metadata --------------------------------------------------------------------------
    def metadata(self, name: str, version: int | str | None) -> md_pb.GetModelMetadataResponse:
        handle = self.resolve(name, version)
        sig = meta_graph_pb2.SignatureDef(method_name=METHOD_NAME)
        for spec in handle.inputs:
            sig.inputs[spec.name].CopyFrom(_tensor_info(spec))
        for spec in handle.outputs:
            sig.outputs[spec.name].CopyFrom(_tensor_info(spec))
        sig_map = md_pb.SignatureDefMap()
        sig_map.signature_def[SIGNATURE].CopyFrom(sig)
        resp = md_pb.GetModelMetadataResponse()
        resp.model_spec.name = name
        resp.model_spec.version.value = handle.version
        resp.metadata["signature_def"].Pack(sig_map)
        return resp

    # -- status ----------------------------------------------------------------------------
    def status(self, name: str, version: int | str | None) -> list[VersionStatus]:
        """All known versions (version 0/absent), or the one asked for (NOT_FOUND if unknown)."""
        versions = self.dp.model_versions(name)
        v = parse_version(version)
        if v:
            h = versions.get(v)
            if h is None:
                raise NotFoundError(MODEL_VERSION_MISSING)
            handles = [h]
        else:
            handles = [versions[k] for k in sorted(versions)]
        return [VersionStatus(h.version, int(h.reported_state), h.reported_state.name, h.error_code, h.error_message)
                for h in handles]

    def status_proto(self, name: str, version: int | str | None) -> st_pb.GetModelStatusResponse:
        resp = st_pb.GetModelStatusResponse()
        for s in self.status(name, version):
            mvs = resp.model_version_status.add()
            mvs.version = s.version
            mvs.state = s.state
            mvs.status.error_code = ERROR_CODE_VALUE.get(s.error_code, 2)
            mvs.status.error_message = s.error_message
        return resp

    def model_names(self) -> list[str]:
        return self.dp.model_names()

    # -- reload ----------------------------------------------------------------------------
    async def reload_config(self) -> None:
        """HandleReloadConfigRequest: delegates to ``DataPlane.reload_config`` when it exists, else no-op."""
        hook = getattr(self.dp, "reload_config", None)
        if hook is None:
            return
        result = hook()
        if inspect.isawaitable(result):
            await result


def _tensor_info(spec: TensorSpec) -> meta_graph_pb2.TensorInfo:
    info = meta_graph_pb2.TensorInfo(name=spec.name, dtype=TF_ENUM.get(spec.datatype, TF_DT_INVALID))
    if spec.dynamic_rank:
        info.tensor_shape.unknown_rank = True
    else:
        info.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in spec.shape]))
    return info
