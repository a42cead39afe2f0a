"""gRPC transport for the TensorFlow-Serving API (PredictionService, ModelService).

Predict is registered with no (de)serializers: the PredictRequest bytes go to
the native parser and the PredictResponse bytes come back from the native
encoder. Metadata/status RPCs are cold and use the generated classes.
"""
from __future__ import annotations

import grpc

from ovfast.api.dataplane import DataPlane
from ovfast.api.grpc.server import _typed, abort_with
from ovfast.api.tfs import INVALID_SIGNATURE_DEF, MODEL_SPEC_MISSING, TfsApi
from ovfast.errors import InvalidArgumentError
from ovfast.observability.metrics import GRPC, TFS

from ovfast._gen.tensorflow_serving.apis import get_model_metadata_pb2 as md_pb
from ovfast._gen.tensorflow_serving.apis import get_model_status_pb2 as st_pb
from ovfast._gen.tensorflow_serving.apis import model_management_pb2 as mm_pb

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


class TfsService:
    def __init__(self, dataplane: DataPlane) -> None:
        self.api = TfsApi(dataplane)

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        api = self.api

        async def predict(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                return await api.predict_bytes(data)
            except Exception as exc:  # noqa: BLE001 - every error becomes a status
                await abort_with(context, exc)

        async def get_model_metadata(req: md_pb.GetModelMetadataRequest, ctx) -> md_pb.GetModelMetadataResponse:
            if not req.HasField("model_spec"):
                raise InvalidArgumentError(MODEL_SPEC_MISSING)
            if list(req.metadata_field) != ["signature_def"]:
                raise InvalidArgumentError(INVALID_SIGNATURE_DEF)
            spec = req.model_spec
            version = spec.version.value if spec.HasField("version") else None
            resp = api.metadata(spec.name, version)
            api.dp.metrics.count(api.resolve(spec.name, version), TFS, GRPC, "GetModelMetadata", True)
            return resp

        async def get_model_status(req: st_pb.GetModelStatusRequest, ctx) -> st_pb.GetModelStatusResponse:
            if not req.HasField("model_spec"):
                raise InvalidArgumentError(MODEL_SPEC_MISSING)
            spec = req.model_spec
            resp = api.status_proto(spec.name, spec.version.value if spec.HasField("version") else None)
            api.dp.metrics.count(spec.name, TFS, GRPC, "GetModelStatus", True)
            return resp

        async def reload_config(req: mm_pb.ReloadConfigRequest, ctx) -> mm_pb.ReloadConfigResponse:
            await api.reload_config()
            resp = mm_pb.ReloadConfigResponse()
            resp.status.error_code = 0
            return resp

        out = {
            f"/{PREDICTION_SERVICE}/GetModelMetadata": _typed(get_model_metadata, md_pb.GetModelMetadataRequest),
            f"/{MODEL_SERVICE}/GetModelStatus": _typed(get_model_status, st_pb.GetModelStatusRequest),
            f"/{MODEL_SERVICE}/HandleReloadConfigRequest": _typed(reload_config, mm_pb.ReloadConfigRequest),
        }
        out[f"/{PREDICTION_SERVICE}/Predict"] = grpc.unary_unary_rpc_method_handler(predict)
        return out
