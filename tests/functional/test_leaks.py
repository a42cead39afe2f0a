"""Bad input never leaks: thousands of rejected requests carrying large payloads leave the server's
resident memory where it was (a leak of the payloads would add hundreds of MB)."""
from __future__ import annotations

import http.client

import grpc
import numpy as np

from kserve_util import assert_grpc_serving, assert_rest_serving, binary_body

PAYLOAD = 256 * 1024  # bytes per rejected request
ROUNDS = 400  # x 4 kinds of bad request -> ~400 MB if payloads leaked


def _bad_requests(main_server, channel, rounds: int) -> None:
    from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb

    infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
    big = np.zeros(PAYLOAD // 4, np.float32).tobytes()
    wrong_size = pb.ModelInferRequest(model_name="add")
    wrong_size.inputs.add(name="b", datatype="FP32", shape=[1, 10])
    wrong_size.raw_input_contents.append(big)
    wrong_size = wrong_size.SerializeToString()
    garbage = b"\x0a\xff\xff\xff\x0f" + big  # length prefix beyond the buffer
    host, port = main_server.http_url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    header = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": 40}}]}
    rest_body, rest_headers = binary_body(header, [big])  # binary part longer than declared
    try:
        for _ in range(rounds):
            for payload in (wrong_size, garbage):
                try:
                    infer(payload, timeout=30)
                    raise AssertionError("bad request accepted")
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
            conn.request("POST", "/v2/models/add/infer", rest_body, rest_headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 400
            conn.request("POST", "/v2/models/add/infer", b'{"inputs": [' + b"1," * (PAYLOAD // 2),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 400
    finally:
        conn.close()


def test_rejected_requests_do_not_leak(main_server, grpc_stub):
    with grpc.insecure_channel(main_server.grpc_url) as channel:
        _bad_requests(main_server, channel, 50)  # warm up allocator pools and caches
        before = main_server.rss_mb()
        _bad_requests(main_server, channel, ROUNDS)
        after = main_server.rss_mb()
    assert after - before < 64, f"RSS grew from {before:.0f} MB to {after:.0f} MB"
    assert_grpc_serving(grpc_stub)
    assert_rest_serving(main_server.http_url)
