"""Issue 14, point 4 on gRPC: compressed requests are inflated with the message limit applied while
inflating. A gzip "bomb" (about a megabyte on the wire, past the 1 GiB message limit once inflated)
is refused with RESOURCE_EXHAUSTED without the server ever holding its inflated size (grpc core 1.51
inflated it whole, 1.3 GB, before comparing); well-formed gzip and deflate requests are served."""
from __future__ import annotations

import grpc
import numpy as np
import pytest

from kserve_util import assert_grpc_serving, grpc_input, make_infer_request, output_array
from memory_util import add_model_server, reset_peak, settled_rss_mb, status_mb, varint

MB = 1 << 20
LIMIT = 1 << 30  # the gRPC message limit (OVMS's 1 GiB)


@pytest.fixture(scope="module")
def server(ovfast_server_session, tmp_path_factory):
    return add_model_server(ovfast_server_session, tmp_path_factory.mktemp("compression"))


@pytest.fixture(scope="module")
def stub(server):
    from tritonclient.grpc import service_pb2_grpc

    with grpc.insecure_channel(server.grpc_url) as ch:
        yield service_pb2_grpc.GRPCInferenceServiceStub(ch)


def _infer(server, compression):
    ch = grpc.insecure_channel(server.grpc_url, options=[("grpc.max_send_message_length", -1)],
                               compression=compression)
    return ch, ch.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate], ids=["gzip", "deflate"])
def test_compressed_requests_are_served(server, compression):
    from tritonclient.grpc import service_pb2

    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    t, raw = grpc_input("b", "FP32", [1, 10], x)
    req = make_infer_request("add", [(t, raw)], id="gz")
    ch, call = _infer(server, compression)
    with ch:
        resp = service_pb2.ModelInferResponse.FromString(call(req.SerializeToString(), timeout=60))
    assert resp.id == "gz"
    np.testing.assert_array_equal(output_array(resp, "a"), x + 1)


def test_a_compression_bomb_is_refused_while_inflating(server, stub):
    # a ModelInferRequest whose raw contents alone exceed the limit: zeros, so gzip makes ~1 MB of it
    size = LIMIT + 8 * MB
    head = b"\x0a\x03add" + b"\x3a" + varint(size)
    payload = head + bytes(size)
    ch, call = _infer(server, grpc.Compression.Gzip)
    reset_peak(server.proc.pid)
    base = status_mb(server.proc.pid, "VmRSS")
    with ch:
        with pytest.raises(grpc.RpcError) as exc:
            call(payload, timeout=300)
    del payload
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.value
    assert "Received message larger than max" in exc.value.details(), exc.value.details()
    peak = status_mb(server.proc.pid, "VmHWM") - base
    assert peak < 256, f"the bomb raised the server's peak RSS by {peak:.0f} MB"
    assert_grpc_serving(stub)


def test_rejected_compressed_requests_give_their_memory_back(server, stub):
    from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb

    req = pb.ModelInferRequest(model_name="add")
    req.inputs.add(name="b", datatype="FP32", shape=[1, 10])
    req.raw_input_contents.append(bytes(200 * MB))  # inflates to 200 MB: within the limit, wrong size
    payload = req.SerializeToString()
    ch, call = _infer(server, grpc.Compression.Gzip)
    base = status_mb(server.proc.pid, "VmRSS")
    with ch:
        for _ in range(4):
            with pytest.raises(grpc.RpcError) as exc:
                call(payload, timeout=120)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value
    after = settled_rss_mb(server.proc.pid, base + 150)
    assert after - base < 150, f"RSS went from {base:.0f} MB to {after:.0f} MB"
    assert_grpc_serving(stub)


def test_compressed_calls_to_the_control_plane_are_served(server):
    # ModelMetadata is forwarded to the Python handlers: it is inflated on the way like ModelInfer
    from tritonclient.grpc import service_pb2

    ch = grpc.insecure_channel(server.grpc_url, compression=grpc.Compression.Gzip)
    with ch:
        call = ch.unary_unary("/inference.GRPCInferenceService/ModelMetadata",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
        resp = service_pb2.ModelMetadataResponse.FromString(
            call(service_pb2.ModelMetadataRequest(name="add").SerializeToString(), timeout=60))
    assert resp.name == "add" and [t.name for t in resp.inputs] == ["b"]
