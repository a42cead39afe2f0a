"""The native gRPC front-end in this process, with real gRPC clients: ModelInfer served natively
(nothing reaches the forward queue), routes that send calls to Python and back, a request that
arrives in several slices joined once, unknown methods, and grpcio + protobuf living beside it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

import models as M
from kserve_util import grpc_input, make_infer_request, output_array
from native_servable import servable as make_servable
from ovfast import _native
from ovfast.observability.metrics import ROUTE_KSERVE_GRPC_INFER

BIG = (1, 200_000)  # 800 kB of FP32: more than one slice on the wire


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpcfe")
    queue = _native.CompletionQueue()
    add = make_servable(str(M.build_add(root / "add") / "1" / "model.xml"), queue, device="CPU", nireq=2)
    big = make_servable(str(M.build_add(root / "big", shape=BIG) / "1" / "model.xml"), queue, device="CPU", nireq=1)
    return add, big


@pytest.fixture()
def frontend(models):
    """A started native server routing add (versions 1 and 3, default 3) and big; nothing drains its forward queue."""
    add, big = models
    routes = _native.RouteTable()
    routes.publish("add", False, 3, [(1, add), (3, add)])
    routes.publish("big", False, 1, [(1, big)])
    queue = _native.ForwardQueue()
    server = _native.GrpcServer(["127.0.0.1:0"], routes, queue, ["/inference.GRPCInferenceService/ServerLive"],
                                kserve_route=ROUTE_KSERVE_GRPC_INFER, report_failures=True)
    (port,) = server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 1 << 30),
                                                                 ("grpc.max_receive_message_length", 1 << 30)])
    try:
        yield server, routes, queue, service_pb2_grpc.GRPCInferenceServiceStub(channel)
    finally:
        channel.close()
        server.shutdown(5)


def infer(stub, model="add", version="", x=None):
    x = np.arange(10, dtype=np.float32).reshape(1, 10) if x is None else x
    return stub.ModelInfer(make_infer_request(model, [grpc_input("b", "FP32", list(x.shape), x)], version=version,
                                              id="req-7"), timeout=30)


def test_model_infer_is_served_natively(frontend, models):
    server, _, queue, stub = frontend
    before = models[0].statistics()["success_count"]
    for k in range(5):
        x = np.full((1, 10), k, np.float32)
        resp = infer(stub, x=x)
        np.testing.assert_array_equal(output_array(resp, "a"), x + 1)
        assert (resp.model_name, resp.model_version, resp.id) == ("add", "3", "req-7")
    assert infer(stub, version="1").model_version == "1"
    st = server.stats()
    assert st["native_calls"] == 6
    assert st["forwarded_calls"] == 0 and queue.forwarded == 0, "no Python ran for these calls"
    assert models[0].statistics()["success_count"] - before == 6, "counted natively, as on every path"


def test_a_request_in_several_slices_is_joined_once(frontend):
    server, _, _, stub = frontend
    x = np.random.default_rng(0).random(BIG, dtype=np.float32)
    np.testing.assert_array_equal(output_array(infer(stub, "big", x=x), "a"), x + 1)
    st = server.stats()
    assert st["joined_messages"] == 1
    assert st["joined_bytes"] >= x.nbytes


def test_validation_errors_are_answered_natively_and_reported(frontend):
    server, _, queue, stub = frontend
    with pytest.raises(grpc.RpcError) as info:
        infer(stub, x=np.ones((1, 3), np.float32))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shape" in info.value.details().lower()
    assert queue.forwarded == 0
    calls, failures, cancelled = queue.drain()
    assert calls == [] and cancelled == []
    assert failures == [("add", "3", info.value.details())], "reported for the control plane's log"


def answer_forwarded(queue, reply, count=1, timeout=30.0):
    """Plays the control plane: answers ``count`` forwarded calls with ``reply(method, request)``."""
    seen = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        calls, _, _ = queue.drain()
        for call_id, method, data in calls:
            seen.append((method, data))
            assert queue.respond(call_id, *reply(method, data))
        time.sleep(0.005)
    return seen


@pytest.mark.parametrize("model,version", [("missing", ""), ("add", "2"), ("add", "01"), ("add", "x")])
def test_unrouted_model_infer_goes_to_python_and_back(frontend, model, version):
    server, _, queue, stub = frontend
    result = {}
    t = threading.Thread(target=lambda: result.update(err=_call_error(lambda: infer(stub, model, version))))
    t.start()
    seen = answer_forwarded(queue, lambda m, d: (5, f"not here: {model}", b""))
    t.join(30)
    assert [m for m, _ in seen] == ["/inference.GRPCInferenceService/ModelInfer"]
    req = service_pb2.ModelInferRequest.FromString(seen[0][1])
    assert (req.model_name, req.model_version) == (model, version), "forwarded as received"
    assert result["err"] == (grpc.StatusCode.NOT_FOUND, f"not here: {model}")
    assert server.stats()["native_calls"] == 0


def test_a_model_that_needs_the_control_plane_is_forwarded(frontend, models):
    server, routes, queue, stub = frontend
    routes.publish("add", True, 3, [(3, models[0])])
    reply = service_pb2.ModelInferResponse(model_name="add", model_version="3").SerializeToString()
    result = {}
    t = threading.Thread(target=lambda: result.update(resp=infer(stub)))
    t.start()
    answer_forwarded(queue, lambda m, d: (0, "", reply))
    t.join(30)
    assert result["resp"].model_version == "3"
    assert server.stats()["forwarded_calls"] == 1


@pytest.mark.parametrize("how", ["deadline", "cancel"])
def test_a_forwarded_call_whose_client_went_away_is_reported_cancelled(frontend, how):
    """The client's deadline passes, or it cancels, while the control plane holds its call: the call's
    id comes with a later drain (the control plane stops working on it), and the call is still answered
    once, by respond()."""
    _, _, queue, stub = frontend
    if how == "deadline":
        fut = stub.ModelInfer.future(make_infer_request("missing", []), timeout=0.2)
    else:
        fut = stub.ModelInfer.future(make_infer_request("missing", []))
    call_id, cancelled = None, []
    for _ in range(2000):  # ordering only: until the call is held, then until its cancellation arrives
        calls, _, ids = queue.drain()
        call_id = calls[0][0] if calls else call_id
        cancelled += ids
        if call_id is not None and how == "cancel" and not fut.done():
            fut.cancel()
        if cancelled:
            break
        time.sleep(0.01)
    assert cancelled == [call_id]
    if how == "deadline":
        assert _call_error(fut.result)[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    else:
        assert fut.cancelled()
    assert queue.respond(call_id, 1, "Cancelled", b""), "still pending until answered"
    assert queue.pending == 0


def test_other_methods_are_forwarded_or_unimplemented(frontend):
    _, _, queue, stub = frontend
    result = {}
    t = threading.Thread(target=lambda: result.update(live=stub.ServerLive(service_pb2.ServerLiveRequest(),
                                                                            timeout=30)))
    t.start()
    answer_forwarded(queue, lambda m, d: (0, "", service_pb2.ServerLiveResponse(live=True).SerializeToString()))
    t.join(30)
    assert result["live"].live is True
    code, details = _call_error(lambda: stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=30))
    assert (code, details) == (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


def test_shutdown_answers_calls_still_waiting_for_python(models):
    routes, queue = _native.RouteTable(), _native.ForwardQueue()
    server = _native.GrpcServer(["127.0.0.1:0"], routes, queue, ["/inference.GRPCInferenceService/ServerLive"])
    (port,) = server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        fut = stub.ServerLive.future(service_pb2.ServerLiveRequest(), timeout=30)
        deadline = time.monotonic() + 10
        while queue.pending == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        server.shutdown(0.2)  # nobody answers: past the grace period the server does
        assert time.monotonic() - t0 < 10
        with pytest.raises(grpc.RpcError) as info:
            fut.result()
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert queue.pending == 0


def test_an_address_in_use_is_an_error():
    routes, queue = _native.RouteTable(), _native.ForwardQueue()
    first = _native.GrpcServer(["127.0.0.1:0"], routes, queue, [])
    (port,) = first.start()
    try:
        second = _native.GrpcServer([f"127.0.0.1:{port}"], routes, _native.ForwardQueue(), [])
        with pytest.raises(_native.UnavailableError, match=f"cannot bind gRPC server to 127.0.0.1:{port}"):
            second.start()
    finally:
        first.shutdown(1)


COEXIST = """
import sys
order = sys.argv[1]
if order == "grpc-first":
    import grpc, google.protobuf.message
    from ovfast import _native
else:
    from ovfast import _native
    import grpc, google.protobuf.message
from concurrent import futures
from tritonclient.grpc import service_pb2, service_pb2_grpc

# a grpcio server and the native server in one process, each answering a grpcio client
py_server = grpc.server(futures.ThreadPoolExecutor(2))
class Live(service_pb2_grpc.GRPCInferenceServiceServicer):
    def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)
service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Live(), py_server)
py_port = py_server.add_insecure_port("127.0.0.1:0")
py_server.start()
native = _native.GrpcServer(["127.0.0.1:0"], _native.RouteTable(), _native.ForwardQueue(), [])
(native_port,) = native.start()
with grpc.insecure_channel(f"127.0.0.1:{py_port}") as ch:
    assert service_pb2_grpc.GRPCInferenceServiceStub(ch).ServerLive(service_pb2.ServerLiveRequest()).live
with grpc.insecure_channel(f"127.0.0.1:{native_port}") as ch:
    try:
        service_pb2_grpc.GRPCInferenceServiceStub(ch).ServerLive(service_pb2.ServerLiveRequest())
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
native.shutdown(1)
py_server.stop(None)
print("ok")
"""


@pytest.mark.parametrize("order", ["grpc-first", "native-first"])
def test_grpcio_and_the_native_server_share_a_process(order):
    """Debian's libgrpc (native) and grpcio's own gRPC core + protobuf's upb, imported in either order."""
    r = subprocess.run([sys.executable, "-c", COEXIST, order], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def _call_error(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise AssertionError("expected a gRPC error")
