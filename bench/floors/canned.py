"""The canned answers the do-nothing floors replay: the serialized responses of the real ovfast server.

A floor answers every call with the bytes ovfast itself answered for that method path, so the load
generator decodes the same messages from a floor as from ovfast, and the floor parses nothing. The
answers are taken at bench time from the ovfast server under test (same model, same request shape as
perf_analyzer's ``--input-data random``: ``raw_input_contents``), one file per method path in a
directory; a file's name is its path percent-encoded (``%2Finference.GRPCInferenceService%2FModelInfer``).
"""
from __future__ import annotations

import urllib.parse
from pathlib import Path

SERVICE = "/inference.GRPCInferenceService/"


def file_name(method: str) -> str:
    return urllib.parse.quote(method, safe="")


def load(directory: Path) -> dict[str, bytes]:
    """{method path: response bytes} from a directory written by ``capture``."""
    return {urllib.parse.unquote(p.name): p.read_bytes() for p in Path(directory).iterdir() if p.is_file()}


def _requests(model) -> dict[str, object]:
    """The request perf_analyzer (and the KServe clients) send for each RPC a run makes."""
    from tritonclient.grpc import service_pb2 as pb

    data = model.sample()
    infer = pb.ModelInferRequest(model_name=model.name)
    infer.inputs.add(name=model.input_name, datatype=model.datatype, shape=list(data.shape))
    infer.raw_input_contents.append(data.tobytes())
    return {
        "ServerLive": pb.ServerLiveRequest(),
        "ServerReady": pb.ServerReadyRequest(),
        "ServerMetadata": pb.ServerMetadataRequest(),
        "ModelReady": pb.ModelReadyRequest(name=model.name),
        "ModelMetadata": pb.ModelMetadataRequest(name=model.name),
        "ModelConfig": pb.ModelConfigRequest(name=model.name),
        "ModelStatistics": pb.ModelStatisticsRequest(name=model.name),
        "ModelInfer": infer,
    }


def model_version(directory: Path) -> str:
    """The newest version of the model in the canned ModelMetadata answer."""
    from tritonclient.grpc import service_pb2 as pb

    meta = pb.ModelMetadataResponse.FromString((Path(directory) / file_name(SERVICE + "ModelMetadata")).read_bytes())
    return max(meta.versions, key=int)


def capture(grpc_url: str, model, directory: Path, timeout: float = 30.0) -> dict[str, int]:
    """Call each RPC once on the ovfast server at ``grpc_url`` and write the response bytes it sent,
    unparsed, to ``directory``. Returns {method path: response size}. An RPC ovfast refuses raises."""
    import grpc

    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    sizes = {}
    with grpc.insecure_channel(grpc_url, options=[("grpc.max_receive_message_length", -1),
                                                  ("grpc.max_send_message_length", -1)]) as channel:
        for name, request in _requests(model).items():
            method = SERVICE + name
            # no deserializer: the bytes exactly as the server sent them
            call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString())
            body = call(request, timeout=timeout)
            (directory / file_name(method)).write_bytes(body)
            sizes[method] = len(body)
    return sizes
