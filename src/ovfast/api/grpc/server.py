"""gRPC transport: KServe v2 + Triton extension RPCs on one grpc.aio server.

ModelInfer is registered with no (de)serializers: the handler receives the
request's bytes and returns the response's bytes, both handled natively.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import grpc
from google.protobuf import json_format

from ovfast.api.dataplane import DataPlane, KServeBytesRequest
from ovfast.api.triton_config import model_config as triton_model_config
from ovfast.errors import OvfastError, client_message, mapping_for
from ovfast.observability.metrics import GRPC, KSERVE
from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb
from ovfast._gen.kserve import model_config_pb2 as mc

log = logging.getLogger("ovfast.grpc")

SERVICE = "inference.GRPCInferenceService"
GRPC_MAX_MESSAGE = 1 << 30  # 1 GiB, as OVMS


async def abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    m = mapping_for(exc)
    if not isinstance(exc, OvfastError):
        log.exception("Unexpected error in gRPC handler", exc_info=exc)
    await context.abort(m.grpc_status, client_message(exc))


def _typed(fn: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], req_cls: Any) -> grpc.RpcMethodHandler:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(request, context)
        except Exception as exc:  # noqa: BLE001 - every error becomes a status
            await abort_with(context, exc)

    return grpc.unary_unary_rpc_method_handler(
        handler, request_deserializer=req_cls.FromString, response_serializer=lambda m: m.SerializeToString())


class KServeService:
    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        dp = self.dp

        async def model_infer(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
            """Serialized request in, serialized response out; tensors never become Python objects."""
            try:
                req = KServeBytesRequest(data)
                _, payload = await dp.infer(req.parsed.model_name, req.parsed.model_version,
                                            dp.metrics.route_kserve_grpc_infer, req)
                return payload
            except Exception as exc:  # noqa: BLE001
                await abort_with(context, exc)

        async def server_live(req, ctx):
            return pb.ServerLiveResponse(live=dp.live)

        async def server_ready(req, ctx):
            return pb.ServerReadyResponse(ready=dp.ready)

        async def server_metadata(req, ctx):
            md = dp.server_metadata()
            return pb.ServerMetadataResponse(name=md["name"], version=md["version"], extensions=md["extensions"])

        async def model_ready(req, ctx):
            ready = dp.model_ready(req.name, req.version)
            dp.metrics.count(req.name, KSERVE, GRPC, "ModelReady", True)
            return pb.ModelReadyResponse(ready=ready)

        async def model_metadata(req, ctx):
            md = dp.model_metadata(req.name, req.version)
            dp.metrics.count(dp.resolve(req.name, req.version), KSERVE, GRPC, "ModelMetadata", True)
            return pb.ModelMetadataResponse(
                name=md["name"], versions=md["versions"], platform=md["platform"],
                inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in md["inputs"]],
                outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in md["outputs"]])

        async def model_config(req, ctx):
            h = dp.resolve(req.name, req.version)
            return pb.ModelConfigResponse(config=json_format.ParseDict(triton_model_config(h), mc.ModelConfig()))

        async def model_statistics(req, ctx):
            out = [json_format.ParseDict(st, pb.ModelStatistics())
                   for st in dp.model_statistics(req.name, req.version)]
            return pb.ModelStatisticsResponse(model_stats=out)

        async def repository_index(req, ctx):
            return pb.RepositoryIndexResponse(models=[
                pb.RepositoryIndexResponse.ModelIndex(**m) for m in dp.repository_index(req.ready)])

        typed = {
            "ServerLive": (server_live, pb.ServerLiveRequest),
            "ServerReady": (server_ready, pb.ServerReadyRequest),
            "ServerMetadata": (server_metadata, pb.ServerMetadataRequest),
            "ModelReady": (model_ready, pb.ModelReadyRequest),
            "ModelMetadata": (model_metadata, pb.ModelMetadataRequest),
            "ModelConfig": (model_config, pb.ModelConfigRequest),
            "ModelStatistics": (model_statistics, pb.ModelStatisticsRequest),
            "RepositoryIndex": (repository_index, pb.RepositoryIndexRequest),
        }
        out = {f"/{SERVICE}/{name}": _typed(fn, cls) for name, (fn, cls) in typed.items()}
        out[f"/{SERVICE}/ModelInfer"] = grpc.unary_unary_rpc_method_handler(model_infer)
        return out


class _Router(grpc.GenericRpcHandler):
    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._handlers = handlers

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(handler_call_details.method)


def build_grpc_server(handlers: dict[str, grpc.RpcMethodHandler], bind_addresses: str, port: int,
                      channel_arguments: str | None = None) -> tuple[grpc.aio.Server, list[str]]:
    options = [
        ("grpc.max_send_message_length", GRPC_MAX_MESSAGE),
        ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE),
        ("grpc.so_reuseport", 0),
    ]
    if channel_arguments:
        for kv in channel_arguments.split(","):
            k, _, v = kv.partition("=")
            options.append((k.strip(), int(v) if v.strip().lstrip("-").isdigit() else v.strip()))
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers([_Router(handlers)])
    bound = []
    for host in bind_addresses.split(","):
        host = host.strip()
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            ok = server.add_insecure_port(addr)
        except RuntimeError:
            ok = 0
        if ok == 0:
            raise OSError(f"cannot bind gRPC server to {addr} (address in use or not available)")
        bound.append(addr)
    return server, bound
