"""Overload is bounded and answered: a model's `max_queue_size` refuses requests beyond that many
waiting, and `--max_request_memory` refuses a request when those in flight already hold that many
bytes — at once, RESOURCE_EXHAUSTED over gRPC and 503 over REST, with a message, counted in
`ovfast_requests_rejected` — while the requests already accepted are served."""
from __future__ import annotations

import json
import socket
import time

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2_grpc

import models as M
from kserve_util import grpc_input, make_infer_request, output_array, rest

BIG = 262_144  # FP32 elements: 1 MiB per request


def metric(http_url: str, prefix: str) -> float:
    text = rest(http_url, "GET", "/metrics").body.decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def wait_for(cond, what: str) -> None:
    for _ in range(1200):
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_max_queue_size_refuses_the_excess_and_serves_the_rest(ovfast_server, tmp_path):
    # a run lasts >= 1 s, measured on this machine (not assumed): the queue stays full while the extras arrive
    M.build_slow_lasting(tmp_path / "slow", 1.0)
    cfg = {"model_config_list": [{"config": {"name": "slow", "base_path": str(tmp_path / "slow"), "nireq": 1,
                                             "max_queue_size": 2}}]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"), "--metrics_enable")
    x = np.zeros((1, M.SLOW_WIDTH), np.float32)
    req = make_infer_request("slow", [grpc_input("x", "FP32", [1, M.SLOW_WIDTH], x)])
    with grpc.insecure_channel(srv.grpc_url) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        accepted = [stub.ModelInfer.future(req, timeout=300) for _ in range(3)]  # one runs, two wait
        wait_for(lambda: metric(srv.http_url, "ovms_current_requests{") == 3, "3 requests in progress")
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req, timeout=300)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "Model queue is full: 2 requests are waiting (max_queue_size 2)" in e.value.details()
        body = {"inputs": [{"name": "x", "shape": [1, M.SLOW_WIDTH], "datatype": "FP32", "data": x.ravel().tolist()}]}
        r = rest(srv.http_url, "POST", "/v2/models/slow/infer", body)
        assert r.status == 503 and "Model queue is full" in r.error(), (r.status, r.body[:200])
        for f in accepted:
            np.testing.assert_allclose(output_array(f.result(), "y"), x + 1, rtol=1e-5)
        np.testing.assert_allclose(output_array(stub.ModelInfer(req, timeout=300), "y"), x + 1, rtol=1e-5)
    assert metric(srv.http_url, 'ovfast_requests_rejected{name="slow",version="1",reason="queue_full"}') == 2
    assert metric(srv.http_url, 'ovms_requests_fail{api="KServe",interface="gRPC",method="ModelInfer"') == 1


def test_max_request_memory_refuses_a_request_that_would_pass_it_and_frees_it(ovfast_server, tmp_path):
    M.build_rows(tmp_path / "rows", width=BIG)
    cfg = {"model_config_list": [{"config": {
        "name": "rows", "base_path": str(tmp_path / "rows"),
        "dynamic_batching": {"max_batch_size": 64, "max_queue_delay_us": 6_000_000}}}]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"), "--metrics_enable",
                        "--max_request_memory", "3.5MiB")
    reqs = [make_infer_request("rows", [grpc_input("x", "FP32", [1, BIG], np.full((1, BIG), i, np.float32))])
            for i in range(4)]
    with grpc.insecure_channel(srv.grpc_url, options=[("grpc.max_send_message_length", -1),
                                                      ("grpc.max_receive_message_length", -1)]) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        waiting = [stub.ModelInfer.future(r, timeout=300) for r in reqs[:3]]  # 3 MiB wait for their batch
        wait_for(lambda: metric(srv.http_url, "ovfast_request_memory_bytes") >= 3 * 4 * BIG, "3 MiB held")
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(reqs[3], timeout=300)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "Server is overloaded" in e.value.details() and "max_request_memory 3670016" in e.value.details()
        for i, f in enumerate(waiting):
            np.testing.assert_array_equal(output_array(f.result(), "y"), np.full((1, BIG), 2 * i + 1, np.float32))
        # answered: their memory is back, so the same request is served now
        wait_for(lambda: metric(srv.http_url, "ovfast_request_memory_bytes") == 0, "memory given back")
        np.testing.assert_array_equal(output_array(stub.ModelInfer(reqs[3], timeout=300), "y"),
                                      np.full((1, BIG), 7, np.float32))
    assert metric(srv.http_url, 'ovfast_requests_rejected{reason="request_memory"}') == 1


def test_max_request_memory_counts_what_string_elements_will_hold(ovfast_server, tmp_path):
    """A string tensor holds a 32-byte std::string per element, far more than empty elements take on the
    wire (4 bytes as raw contents): that cost is reserved with the request, before anything is allocated
    for it, so a request whose strings would pass the bound is refused — and one whose elements a model
    would refuse anyway (an FP32 input) costs only its wire size."""
    import tritonclient.grpc as grpcclient

    from memory_util import reset_peak, status_mb

    M.build_string(tmp_path / "string")
    M.build_add(tmp_path / "add", shape=(-1,))
    cfg = {"model_config_list": [{"config": {"name": n, "base_path": str(tmp_path / n)}} for n in ("string", "add")]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"), "--metrics_enable",
                        "--max_request_memory", "8MiB")
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    n = 500_000  # 2 MB on the wire, 16 MB as strings

    def infer(model: str, name: str, count: int):
        inp = grpcclient.InferInput(name, [count], "BYTES")
        inp.set_data_from_numpy(np.array([b""] * count, dtype=np.object_))
        return client.infer(model, [inp])

    reset_peak(srv.proc.pid)
    base = status_mb(srv.proc.pid, "VmRSS")
    with pytest.raises(grpcclient.InferenceServerException) as e:
        infer("string", "s", n)
    assert e.value.status() == "StatusCode.RESOURCE_EXHAUSTED", str(e.value)
    assert "to hold its BYTES elements as strings (16000000 bytes)" in str(e.value), str(e.value)
    assert "max_request_memory 8388608" in str(e.value)
    assert status_mb(srv.proc.pid, "VmHWM") - base < 12, "the strings were allocated before the refusal"
    with pytest.raises(grpcclient.InferenceServerException) as e:
        infer("add", "b", n)
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT" and "Expected: FP32; Actual: BYTES" in str(e.value)
    small = grpcclient.InferInput("s", [3], "BYTES")
    small.set_data_from_numpy(np.array([b"a", b"", b"c" * 40], dtype=np.object_))
    assert client.infer("string", [small]).as_numpy("out").tolist() == [b"a", b"", b"c" * 40]

    # REST holds its body and its strings from the same bound: KServe JSON, TFS JSON (1.5 MB bodies)
    strings = {"inputs": [{"name": "s", "shape": [n], "datatype": "BYTES", "data": [""] * n}]}
    r = rest(srv.http_url, "POST", "/v2/models/string/infer", strings)
    assert r.status == 503 and "to hold its BYTES elements as strings (16000000 bytes)" in r.error(), r.body[:300]
    r = rest(srv.http_url, "POST", "/v1/models/string:predict", {"inputs": {"s": [""] * n}})
    assert r.status == 503 and "to hold its BYTES elements as strings (16000000 bytes)" in r.error(), r.body[:300]
    to_add = {"inputs": [{**strings["inputs"][0], "name": "b"}]}  # not a string input: nothing held for strings
    r = rest(srv.http_url, "POST", "/v2/models/add/infer", to_add)
    assert r.status == 400 and "Expected: FP32; Actual: BYTES" in r.error(), r.body[:300]
    small_json = {"inputs": [{"name": "s", "shape": [3], "datatype": "BYTES", "data": ["a", "", "c" * 40]}]}
    r = rest(srv.http_url, "POST", "/v2/models/string/infer", small_json)
    assert r.status == 200 and r.json()["outputs"][0]["data"] == ["a", "", "c" * 40], r.body[:300]
    # a body over the bound is refused from its Content-Length: the client sends one byte of it
    host, port = srv.http_url.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n{" % (9 << 20))
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 503 ") and b"max_request_memory 8388608" in answer, answer[:300]
    assert metric(srv.http_url, 'ovfast_requests_rejected{reason="request_memory"}') == 4
    wait_for(lambda: metric(srv.http_url, "ovfast_request_memory_bytes") == 0, "memory given back")
