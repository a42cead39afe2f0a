"""gRPC handlers for the TensorFlow-Serving API (PredictionService, ModelService).

Predict runs natively when the route table has its route (api/grpc/frontend.py); the calls the
native front-end forwards (no model_spec, an unknown model, a version still loading, shape
"auto", a request it could not parse) come here as PredictRequest bytes, go to the native parser
and come back as natively encoded PredictResponse bytes. Metadata/status RPCs are cold and use
the generated classes.
"""
from __future__ import annotations

from ovfast.api.access import AccessConfig
from ovfast.api.dataplane import DataPlane
from ovfast.api.grpc.server import Handler, typed
from ovfast.api.tfs import INVALID_SIGNATURE_DEF, MODEL_SPEC_MISSING, TfsApi
from ovfast.errors import InvalidArgumentError
from ovfast.observability.metrics import GRPC, TFS

from ovfast._gen.tensorflow_serving.apis import get_model_metadata_pb2 as md_pb
from ovfast._gen.tensorflow_serving.apis import get_model_status_pb2 as st_pb
from ovfast._gen.tensorflow_serving.apis import model_management_pb2 as mm_pb

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


class TfsService:
    def __init__(self, dataplane: DataPlane, access: AccessConfig | None = None) -> None:
        self.api = TfsApi(dataplane)
        self.access = access or AccessConfig()

    def handlers(self) -> dict[str, Handler]:
        api = self.api

        async def get_model_metadata(req: md_pb.GetModelMetadataRequest) -> md_pb.GetModelMetadataResponse:
            if not req.HasField("model_spec"):
                raise InvalidArgumentError(MODEL_SPEC_MISSING)
            if list(req.metadata_field) != ["signature_def"]:
                raise InvalidArgumentError(INVALID_SIGNATURE_DEF)
            spec = req.model_spec
            version = spec.version.value if spec.HasField("version") else None
            resp = api.metadata(spec.name, version)
            api.dp.metrics.count(api.resolve(spec.name, version), TFS, GRPC, "GetModelMetadata", True)
            return resp

        async def get_model_status(req: st_pb.GetModelStatusRequest) -> st_pb.GetModelStatusResponse:
            if not req.HasField("model_spec"):
                raise InvalidArgumentError(MODEL_SPEC_MISSING)
            spec = req.model_spec
            resp = api.status_proto(spec.name, spec.version.value if spec.HasField("version") else None)
            api.dp.metrics.count(spec.name, TFS, GRPC, "GetModelStatus", True)
            return resp

        async def reload_config(req: mm_pb.ReloadConfigRequest) -> mm_pb.ReloadConfigResponse:
            self.access.refuse_model_control()
            await api.reload_config()
            resp = mm_pb.ReloadConfigResponse()
            resp.status.error_code = 0
            return resp

        return {
            f"/{PREDICTION_SERVICE}/Predict": api.predict_bytes,
            f"/{PREDICTION_SERVICE}/GetModelMetadata": typed(get_model_metadata, md_pb.GetModelMetadataRequest),
            f"/{MODEL_SERVICE}/GetModelStatus": typed(get_model_status, st_pb.GetModelStatusRequest),
            f"/{MODEL_SERVICE}/HandleReloadConfigRequest": typed(reload_config, mm_pb.ReloadConfigRequest),
        }
