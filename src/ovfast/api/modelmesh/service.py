"""mmesh.ModelRuntime's gRPC handlers: request bytes in, response bytes out (api/grpc/server.typed), over
:class:`~ovfast.api.modelmesh.runtime.ModelMeshRuntime`. The native server of the management endpoint
forwards these five methods here and answers every other one UNIMPLEMENTED."""
from __future__ import annotations

import ovfast
from ovfast.api.grpc.server import Handler, typed
from ovfast.api.modelmesh.runtime import ModelMeshRuntime
from ovfast._gen.mmesh import model_runtime_pb2 as pb

SERVICE = "mmesh.ModelRuntime"

# The inference methods ModelMesh may forward to the data endpoint, with the field path of the model name it
# rewrites to the concrete modelId (idInjectionPath); the same paths as native/src/transport/model_id.cpp.
METHOD_INFOS: dict[str, tuple[int, ...]] = {
    "inference.GRPCInferenceService/ModelInfer": (1,),
    "inference.GRPCInferenceService/ModelMetadata": (1,),
    "inference.GRPCInferenceService/ModelReady": (1,),
    "tensorflow.serving.PredictionService/Predict": (1, 1),
    "tensorflow.serving.PredictionService/GetModelMetadata": (1, 1),
}


def status_response(runtime: ModelMeshRuntime) -> pb.RuntimeStatusResponse:
    if not runtime.ready():
        return pb.RuntimeStatusResponse(status=pb.RuntimeStatusResponse.STARTING)
    c = runtime.config
    out = pb.RuntimeStatusResponse(
        status=pb.RuntimeStatusResponse.READY, capacityInBytes=c.capacity_bytes,
        maxLoadingConcurrency=c.loading_concurrency, modelLoadingTimeoutMs=c.load_timeout_ms,
        defaultModelSizeInBytes=c.default_model_size, runtimeVersion=f"ovfast-{ovfast.__version__}",
        limitModelConcurrency=c.model_concurrency > 0, allowAnyMethod=False)
    for method, path in METHOD_INFOS.items():
        out.methodInfos[method].idInjectionPath.extend(path)
    return out


def handlers(runtime: ModelMeshRuntime) -> dict[str, Handler]:
    async def load_model(req: pb.LoadModelRequest) -> pb.LoadModelResponse:
        size = await runtime.load(req.modelId, req.modelPath, req.modelKey)
        return pb.LoadModelResponse(sizeInBytes=size, maxConcurrency=runtime.config.model_concurrency)

    async def unload_model(req: pb.UnloadModelRequest) -> pb.UnloadModelResponse:
        await runtime.unload(req.modelId)
        return pb.UnloadModelResponse()

    async def predict_model_size(req: pb.PredictModelSizeRequest) -> pb.PredictModelSizeResponse:
        return pb.PredictModelSizeResponse(sizeInBytes=runtime.predict_size(req.modelId, req.modelPath,
                                                                            req.modelKey))

    async def model_size(req: pb.ModelSizeRequest) -> pb.ModelSizeResponse:
        return pb.ModelSizeResponse(sizeInBytes=await runtime.size(req.modelId))

    async def runtime_status(req: pb.RuntimeStatusRequest) -> pb.RuntimeStatusResponse:
        return status_response(runtime)

    methods = {
        "loadModel": (load_model, pb.LoadModelRequest),
        "unloadModel": (unload_model, pb.UnloadModelRequest),
        "predictModelSize": (predict_model_size, pb.PredictModelSizeRequest),
        "modelSize": (model_size, pb.ModelSizeRequest),
        "runtimeStatus": (runtime_status, pb.RuntimeStatusRequest),
    }
    return {f"/{SERVICE}/{name}": typed(fn, cls) for name, (fn, cls) in methods.items()}
