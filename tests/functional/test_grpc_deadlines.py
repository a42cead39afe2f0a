"""Deadlines and cancellation on the native gRPC path: a ModelInfer / Predict whose client deadline
passed, or that its client cancelled, while it waited in the queue is dropped — never run — answered
DEADLINE_EXCEEDED / CANCELLED, and counted as a failed request; the requests queued behind it do not
wait for it. One infer request (nireq 1) on a slow model makes the queue. The same holds for requests the
native front-end forwards to the control plane (a model with shape "auto")."""
from __future__ import annotations

import json
import time

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import predict_pb2
from tritonclient.grpc import service_pb2_grpc

import models as M
from kserve_util import grpc_input, make_infer_request, predict_request, rest

# One inference lasts RUN_S or more, measured on this machine (models.slow_depth: bf16 matmuls on a CPU
# with AMX run ~13x faster than f32 ones, so a fixed depth was 0.3 s here where 0.4 s was assumed). The two
# blockers then outlast a late request's DEADLINE_S with room to spare however fast the machine is.
RUN_S = 0.75
DEADLINE_S = 0.5
X = np.zeros((1, M.SLOW_WIDTH), np.float32)


@pytest.fixture(scope="module")
def slow_server(ovfast_server_session, tmp_path_factory):
    base = tmp_path_factory.mktemp("deadline")
    M.build_slow_lasting(base / "slow", RUN_S)
    cfg = {"model_config_list": [
        {"config": {"name": "slow", "base_path": str(base / "slow"), "nireq": 1}},
        # shape "auto": its requests go through the control plane (test_grpc_native)
        {"config": {"name": "slow_auto", "base_path": str(base / "slow"), "nireq": 1, "shape": "auto"}},
    ]}
    (base / "config.json").write_text(json.dumps(cfg))
    return ovfast_server_session("--config_path", str(base / "config.json"), "--metrics_enable")


def kserve_request(model: str = "slow"):
    return make_infer_request(model, [grpc_input("x", "FP32", [1, M.SLOW_WIDTH], X)])


def predict(ch: grpc.Channel):
    return ch.unary_unary("/tensorflow.serving.PredictionService/Predict",
                          request_serializer=lambda m: m.SerializeToString(),
                          response_deserializer=predict_pb2.PredictResponse.FromString)


def stats(url: str, model: str = "slow"):
    c = grpcclient.InferenceServerClient(url)
    try:
        s = c.get_inference_statistics(model).model_stats[0]
        return s.execution_count, s.inference_stats.success.count, s.inference_stats.fail.count
    finally:
        c.close()


def in_progress(srv, model: str = "slow") -> float:
    text = rest(srv.http_url, "GET", "/metrics").body.decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ovms_current_requests{") and f'name="{model}"' in line)


def wait_in_progress(srv, n: int, model: str = "slow") -> None:
    """Until the server holds ``n`` requests for the slow model (ordering only; nothing here is timed)."""
    for _ in range(2400):
        if in_progress(srv, model) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never held {n} requests")


def busy(srv, stub, n: int = 2, model: str = "slow") -> list:
    """``n`` requests without a deadline: the first runs, the rest queue in front of what follows."""
    calls = [stub.ModelInfer.future(kserve_request(model)) for _ in range(n)]
    wait_in_progress(srv, n, model)
    return calls


@pytest.mark.parametrize("api", ["kserve", "tfs"])
def test_queued_requests_past_their_deadline_are_dropped_and_counted_as_failed(slow_server, api):
    executed0, ok0, failed0 = stats(slow_server.grpc_url)
    with grpc.insecure_channel(slow_server.grpc_url) as ch:
        kserve = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        tfs = predict(ch)
        blockers = busy(slow_server, kserve)
        late = [(kserve.ModelInfer if api == "kserve" else tfs).future(
            kserve_request() if api == "kserve" else predict_request("slow", {"x": X}), timeout=DEADLINE_S) for _ in range(4)]
        for f in late:
            with pytest.raises(grpc.RpcError) as err:
                f.result()
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for f in blockers:
            assert f.result(timeout=300).outputs[0].name == "y"
        # The server answers again at once for a request with a deadline it can meet.
        assert kserve.ModelInfer(kserve_request(), timeout=300).outputs[0].name == "y"
    executed, ok, failed = stats(slow_server.grpc_url)
    assert executed - executed0 == 3, "only the blockers and the last request ran; the late ones were dropped"
    assert ok - ok0 == 3
    assert failed - failed0 == 4, "each dropped request counts as failed"


def test_a_cancelled_queued_request_is_dropped_and_counted_as_failed(slow_server):
    executed0, ok0, failed0 = stats(slow_server.grpc_url)
    with grpc.insecure_channel(slow_server.grpc_url) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        blockers = busy(slow_server, stub)
        gone = [stub.ModelInfer.future(kserve_request()) for _ in range(3)]
        wait_in_progress(slow_server, 5)  # they reach the server's queue
        for f in gone:
            assert f.cancel()
        for f in blockers:
            assert f.result(timeout=300).outputs[0].name == "y"
        stub.ModelInfer(kserve_request(), timeout=300)
    # NOTE: the drop is seen when the queue is next planned; the last request above came after it.
    executed, ok, failed = stats(slow_server.grpc_url)
    assert executed - executed0 == 3
    assert ok - ok0 == 3
    assert failed - failed0 == 3


@pytest.mark.parametrize("how", ["deadline", "cancel"])
def test_forwarded_requests_whose_client_went_away_are_dropped_and_counted_as_failed(slow_server, how):
    """On the control plane's path too (shape "auto"): the late or cancelled requests never run."""
    m = "slow_auto"
    executed0, ok0, failed0 = stats(slow_server.grpc_url, m)
    with grpc.insecure_channel(slow_server.grpc_url) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        blockers = busy(slow_server, stub, model=m)
        if how == "deadline":
            gone = [stub.ModelInfer.future(kserve_request(m), timeout=DEADLINE_S) for _ in range(3)]
        else:
            gone = [stub.ModelInfer.future(kserve_request(m)) for _ in range(3)]
            wait_in_progress(slow_server, 5, m)  # they reach the server's queue
            for f in gone:
                assert f.cancel()
        for f in gone:
            with pytest.raises(grpc.FutureCancelledError if how == "cancel" else grpc.RpcError) as err:
                f.result()
            if how == "deadline":
                assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for f in blockers:
            assert f.result(timeout=300).outputs[0].name == "y"
        stub.ModelInfer(kserve_request(m), timeout=300)
    executed, ok, failed = stats(slow_server.grpc_url, m)
    assert executed - executed0 == 3, "only the blockers and the last request ran"
    assert ok - ok0 == 3
    assert failed - failed0 == 3, "each dropped request counts as failed"
