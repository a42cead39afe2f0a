"""gRPC: the KServe v2 + Triton extension handlers the control plane serves.

The gRPC port itself is native (api/grpc/frontend.py). It runs ModelInfer whenever the route
table has a route for the request; every other call — and ModelInfer when the version is still
loading, the model has shape "auto", the model is unknown or the request could not be parsed —
reaches a handler here as the request's bytes, and the handler returns the response's bytes or
raises. The error table (ovfast.errors) turns what it raises into the gRPC status.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from ovfast.api.dataplane import DataPlane, KServeBytesRequest
from ovfast.api.triton_config import model_config as triton_model_config
from ovfast.errors import InvalidArgumentError
from ovfast.observability.metrics import GRPC, KSERVE
from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb
from ovfast._gen.kserve import model_config_pb2 as mc

SERVICE = "inference.GRPCInferenceService"
GRPC_MAX_MESSAGE = 1 << 30  # 1 GiB, as OVMS


def not_parsable(req_cls: Any) -> InvalidArgumentError:
    """A request that is not a valid ``req_cls`` message: the client's mistake (INVALID_ARGUMENT)."""
    return InvalidArgumentError(f"Invalid request: not a valid {req_cls.DESCRIPTOR.full_name} message")

# A method's handler: serialized request in, serialized response out (or an exception).
Handler = Callable[[bytes], Awaitable[bytes]]


def typed(fn: Callable[[Any], Awaitable[Any]], req_cls: Any) -> Handler:
    """A handler over generated protobuf classes: parses the request, serializes the response."""

    async def handler(data: bytes) -> bytes:
        try:
            request = req_cls.FromString(data)
        except (DecodeError, ValueError, RecursionError):
            raise not_parsable(req_cls) from None
        return (await fn(request)).SerializeToString()

    return handler


class KServeService:
    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane

    def handlers(self) -> dict[str, Handler]:
        dp = self.dp

        async def model_infer(data: bytes) -> bytes:
            """Serialized request in, serialized response out; tensors never become Python objects."""
            req = KServeBytesRequest(data)
            _, payload = await dp.infer(req.parsed.model_name, req.parsed.model_version,
                                        dp.metrics.route_kserve_grpc_infer, req)
            return payload

        async def server_live(req):
            return pb.ServerLiveResponse(live=dp.live)

        async def server_ready(req):
            return pb.ServerReadyResponse(ready=dp.ready)

        async def server_metadata(req):
            md = dp.server_metadata()
            return pb.ServerMetadataResponse(name=md["name"], version=md["version"], extensions=md["extensions"])

        async def model_ready(req):
            ready = dp.model_ready(req.name, req.version)
            dp.metrics.count(req.name, KSERVE, GRPC, "ModelReady", True)
            return pb.ModelReadyResponse(ready=ready)

        async def model_metadata(req):
            md = await dp.model_metadata(req.name, req.version)
            dp.metrics.count(dp.resolve(req.name, req.version), KSERVE, GRPC, "ModelMetadata", True)
            return pb.ModelMetadataResponse(
                name=md["name"], versions=md["versions"], platform=md["platform"],
                inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in md["inputs"]],
                outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in md["outputs"]])

        async def model_config(req):
            h = dp.resolve(req.name, req.version)
            return pb.ModelConfigResponse(config=json_format.ParseDict(triton_model_config(h), mc.ModelConfig()))

        async def model_statistics(req):
            out = [json_format.ParseDict(st, pb.ModelStatistics())
                   for st in dp.model_statistics(req.name, req.version)]
            return pb.ModelStatisticsResponse(model_stats=out)

        async def repository_index(req):
            return pb.RepositoryIndexResponse(models=[
                pb.RepositoryIndexResponse.ModelIndex(**m) for m in dp.repository_index(req.ready)])

        def parameters(req) -> dict:
            return {k: getattr(p, p.WhichOneof("parameter_choice") or "bool_param") for k, p in req.parameters.items()}

        async def repository_model_load(req):
            await dp.load_model(req.model_name, parameters(req))
            return pb.RepositoryModelLoadResponse()

        async def repository_model_unload(req):
            await dp.unload_model(req.model_name, parameters(req))
            return pb.RepositoryModelUnloadResponse()

        methods = {
            "ServerLive": (server_live, pb.ServerLiveRequest),
            "ServerReady": (server_ready, pb.ServerReadyRequest),
            "ServerMetadata": (server_metadata, pb.ServerMetadataRequest),
            "ModelReady": (model_ready, pb.ModelReadyRequest),
            "ModelMetadata": (model_metadata, pb.ModelMetadataRequest),
            "ModelConfig": (model_config, pb.ModelConfigRequest),
            "ModelStatistics": (model_statistics, pb.ModelStatisticsRequest),
            "RepositoryIndex": (repository_index, pb.RepositoryIndexRequest),
            "RepositoryModelLoad": (repository_model_load, pb.RepositoryModelLoadRequest),
            "RepositoryModelUnload": (repository_model_unload, pb.RepositoryModelUnloadRequest),
        }
        out = {f"/{SERVICE}/{name}": typed(fn, cls) for name, (fn, cls) in methods.items()}
        out[f"/{SERVICE}/ModelInfer"] = model_infer
        return out
