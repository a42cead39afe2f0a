"""Issue 14, points 2 and 3 on the native gRPC path: decoding is bounded, and rejected big requests
give their memory back.

Requests are sent as raw bytes over a plain grpc channel (built by hand where no client would build
them); memory is the server's own VmRSS / VmHWM from /proc, with generous bounds. The bounds sit far
below what the unbounded decoder took (3.2 GB for 20 MB of empty ``inputs`` entries) and what eight
rejected 200 MB requests used to leave resident (~2 GB)."""
from __future__ import annotations

import json
import subprocess
import sys

import grpc
import numpy as np
import pytest

import models as M
from kserve_util import assert_grpc_serving, rest
from memory_util import add_model_server, field, reset_peak, settled_rss_mb, status_mb, varint

MB = 1 << 20
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def raw_call(srv, method: str):
    ch = grpc.insecure_channel(srv.grpc_url, options=[("grpc.max_send_message_length", -1)])
    return ch, ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def call_error(call, payload: bytes) -> tuple[grpc.StatusCode, str]:
    try:
        call(payload, timeout=120)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    raise AssertionError("the request was accepted")


@pytest.fixture(scope="module")
def server(ovfast_server_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    M.build_string(root / "string")
    return add_model_server(ovfast_server_session, root, extra={"string": root / "string"})


@pytest.fixture(scope="module")
def stub(server):
    from tritonclient.grpc import service_pb2_grpc

    with grpc.insecure_channel(server.grpc_url) as ch:
        yield service_pb2_grpc.GRPCInferenceServiceStub(ch)


# 20 MB of two-byte entries: ten million empty `inputs` (field 5), `outputs` (6), parameters (4),
# or TFS `inputs` map entries (2).
EMPTY_ENTRIES = [
    (MODEL_INFER, field(1, b"add") + b"\x2a\x00" * (10 * MB), "more than 4096 inputs"),
    (MODEL_INFER, field(1, b"add") + b"\x32\x00" * (10 * MB), "more than 4096 outputs"),
    (MODEL_INFER, field(1, b"add") + b"\x22\x00" * (10 * MB), "more than 1024 parameters"),
    (PREDICT, field(1, field(1, b"add")) + b"\x12\x00" * (10 * MB), "more than 4096 inputs"),
]


@pytest.mark.parametrize(("method", "payload", "message"), EMPTY_ENTRIES,
                         ids=["kserve-inputs", "kserve-outputs", "kserve-parameters", "tfs-inputs"])
def test_many_empty_entries_cost_memory_in_proportion(server, stub, method, payload, message):
    ch, call = raw_call(server, method)
    with ch:
        call_error(call, payload)  # the first big message sizes gRPC's buffers
        reset_peak(server.proc.pid)
        base = status_mb(server.proc.pid, "VmRSS")
        code, details = call_error(call, payload)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert message in details and "the server's limit" in details, details
    peak = status_mb(server.proc.pid, "VmHWM") - base
    assert peak < 400, f"a {len(payload) / MB:.0f} MB request raised the peak RSS by {peak:.0f} MB"
    assert_grpc_serving(stub)


N_EMPTY = 1_000_000  # empty BYTES elements: 2 bytes each as bytes_contents, 3 in JSON, 4 as raw contents


def _bytes_request(model: str, name: str, n: int, form: str, datatype: str = "BYTES") -> bytes:
    """A ModelInferRequest of ``n`` empty BYTES elements for input ``name``, built by hand."""
    shape = bytes([3 << 3 | 2]) + varint(len(varint(n))) + varint(n)
    tensor = field(1, name.encode()) + field(2, datatype.encode()) + shape
    if form == "bytes_contents":  # n empty bytes_contents (field 8) entries
        return field(1, model.encode()) + field(5, tensor + field(5, b"\x42\x00" * n))
    return field(1, model.encode()) + field(5, tensor) + field(7, b"\x00" * 4 * n)  # n zero length prefixes


def _tfs_string_request(model: str, name: str, n: int, datatype: str = "BYTES") -> bytes:
    """A PredictRequest of ``n`` empty string_val (field 8) entries for input ``name``, built by hand."""
    dtype = {"BYTES": 7, "FP32": 1}[datatype]  # DT_STRING, DT_FLOAT
    shape = field(2, field(2, bytes([1 << 3]) + varint(n)))  # TensorShapeProto { dim { size: n } }
    tensor = bytes([1 << 3]) + varint(dtype) + shape + b"\x42\x00" * n
    return field(1, field(1, model.encode())) + field(2, field(1, name.encode()) + field(2, tensor))


def _rest_bytes_body(name: str, n: int, datatype: str = "BYTES") -> bytes:
    head = b'{"inputs":[{"name":"%s","shape":[%d],"datatype":"%s","data":[' % (name.encode(), n, datatype.encode())
    return head + b",".join([b'""'] * n) + b"]}]}"


def _send_bytes(srv, model: str, name: str, form: str, datatype: str = "BYTES") -> tuple[str, str, int]:
    """(outcome, message, wire bytes) of one request of N_EMPTY empty elements: outcome "OK", a gRPC
    code name, or an HTTP status."""
    if form == "rest":
        body = _rest_bytes_body(name, N_EMPTY, datatype)
        r = rest(srv.http_url, "POST", f"/v2/models/{model}/infer", body, timeout=120)
        return ("OK" if r.status == 200 else str(r.status)), r.body[:300].decode(errors="replace"), len(body)
    if form == "tfs_string_val":
        payload = _tfs_string_request(model, name, N_EMPTY, datatype)
    else:
        payload = _bytes_request(model, name, N_EMPTY, form, datatype)
    ch, call = raw_call(srv, PREDICT if form == "tfs_string_val" else MODEL_INFER)
    with ch:
        try:
            call(payload, timeout=120)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or "", len(payload)
    return "OK", "", len(payload)


def _peak_per_element(srv, model: str, name: str, form: str) -> tuple[str, str, float, float]:
    """Sends the request and measures it: (outcome, message, peak RSS rise in bytes per element, wire
    bytes per element). First the same bytes as FP32 (refused, nothing made of the elements) size the
    transport's buffers: the measured request cannot reuse memory a BYTES request left behind."""
    _send_bytes(srv, model, name, form, "FP32")
    reset_peak(srv.proc.pid)
    base = status_mb(srv.proc.pid, "VmRSS")
    outcome, message, wire = _send_bytes(srv, model, name, form)
    peak = (status_mb(srv.proc.pid, "VmHWM") - base) * MB / N_EMPTY
    print(f"{model} {form}: {outcome}, peak RSS +{peak:.1f} bytes an element, {wire / N_EMPTY:.0f} on the wire")
    return outcome, message, peak, wire / N_EMPTY


FORMS = ["bytes_contents", "raw_input_contents", "tfs_string_val", "rest"]
# What parsing the JSON itself takes (orjson's document, then its list of strings), per wire byte:
# measured 8.5 (25.5 bytes an element of 3); the rest of the REST path adds 4 bytes an element.
JSON_PARSE = 11


@pytest.mark.parametrize("form", FORMS)
def test_empty_bytes_elements_cost_a_bounded_multiple_of_their_size(server, stub, form):
    """A million empty BYTES elements for an FP32 input are refused by validation before anything is
    allocated per element: the elements are located in the request, not copied. Measured before that
    (peak RSS rise an element): 34 bytes over bytes_contents (17x the wire), 36 over raw contents (9x),
    34 over TFS string_val (17x), 72 over REST JSON (24x): each element a 32-byte std::string (and a
    list entry over REST). Now the
    request's own bytes (twice: gRPC's buffer and its joined copy) are what remain, and over REST what
    parsing its JSON takes."""
    outcome, message, peak, wire = _peak_per_element(server, "add", "b", form)
    assert outcome in ("INVALID_ARGUMENT", "400") and "Expected: FP32; Actual: BYTES" in message, (outcome, message)
    bound = JSON_PARSE * wire if form == "rest" else 2 * wire + 1
    assert peak < bound, f"{wire:.0f} wire bytes an element raised the peak RSS by {peak:.1f} bytes an element"
    assert_grpc_serving(stub)


@pytest.mark.parametrize("form", FORMS)
def test_accepted_string_elements_cost_their_strings_and_no_more(server, stub, form):
    """The same million elements for a string model are served: each then costs what OpenVINO's string
    tensors hold (one 32-byte std::string for the input, one for the output), the request and the
    response, and nothing per element besides. Measured: 68 bytes an element over bytes_contents and TFS
    string_val (98-100 before), 86 over REST (99 before)."""
    outcome, message, peak, wire = _peak_per_element(server, "string", "s", form)
    assert outcome == "OK", (outcome, message)
    bound = 2 * 32 + (JSON_PARSE + 3 if form == "rest" else 3) * wire + 16
    assert peak < bound, f"{wire:.0f} wire bytes an element raised the peak RSS by {peak:.1f}"
    assert_grpc_serving(stub)


def test_rank_beyond_the_limit_is_refused_before_allocating(server, stub):
    dims = b"\x01" * (20 * MB)  # twenty million packed dims of 1
    header = bytes([3 << 3 | 2]) + varint(len(dims))
    tensor = field(1, b"b") + field(2, b"FP32") + header + dims
    payload = field(1, b"add") + bytes([5 << 3 | 2]) + varint(len(tensor)) + tensor
    ch, call = raw_call(server, MODEL_INFER)
    with ch:
        call_error(call, payload)
        reset_peak(server.proc.pid)
        base = status_mb(server.proc.pid, "VmRSS")
        code, details = call_error(call, payload)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert "more than 64 dimensions in the shape of input b" in details, details
    assert status_mb(server.proc.pid, "VmHWM") - base < 400
    assert_grpc_serving(stub)


def _big_request(model: str, size: int) -> bytes:
    from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb

    req = pb.ModelInferRequest(model_name=model)
    req.inputs.add(name="b", datatype="FP32", shape=[1, 10])
    req.raw_input_contents.append(bytes(size))
    return req.SerializeToString()


@pytest.mark.parametrize(("model", "code"), [("add", grpc.StatusCode.INVALID_ARGUMENT),
                                             ("no_such_model", grpc.StatusCode.NOT_FOUND)],
                         ids=["refused-natively", "refused-by-the-control-plane"])
def test_rejected_big_requests_give_their_memory_back(server, stub, model, code):
    payload = _big_request(model, 200 * MB)
    ch, call = raw_call(server, MODEL_INFER)
    with ch:
        base = status_mb(server.proc.pid, "VmRSS")
        for _ in range(8):
            got, details = call_error(call, payload)
            assert got == code, (got, details)
    after = settled_rss_mb(server.proc.pid, base + 150)
    # each request held 200-400 MB while it was decoded; none of that may stay
    assert after - base < 150, f"RSS went from {base:.0f} MB to {after:.0f} MB after eight rejected 200 MB requests"
    assert_grpc_serving(stub)


def test_limits_are_server_flags_and_apply_to_every_api(ovfast_server, tmp_path):
    M.build_add(tmp_path / "flat", shape=(10,))
    cfg = {"model_config_list": [{"config": {"name": "flat", "base_path": str(tmp_path / "flat")}}]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"), "--max_request_inputs", "1",
                        "--max_request_outputs", "1", "--max_tensor_dims", "1", "--max_request_parameters", "1")
    import tritonclient.grpc as grpcclient
    from ovmsclient import make_grpc_client

    x = np.arange(10, dtype=np.float32)
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    inp = grpcclient.InferInput("b", [10], "FP32")
    inp.set_data_from_numpy(x)
    np.testing.assert_array_equal(client.infer("flat", [inp]).as_numpy("a"), x + 1)
    wide = grpcclient.InferInput("b", [1, 10], "FP32")
    wide.set_data_from_numpy(x.reshape(1, 10))
    with pytest.raises(grpcclient.InferenceServerException) as exc:
        client.infer("flat", [wide])
    assert exc.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "more than 1 dimensions in the shape of input b (the server's limit, --max_tensor_dims)" in str(exc.value)
    with pytest.raises(grpcclient.InferenceServerException) as exc:
        client.infer("flat", [inp, inp])
    assert "more than 1 inputs (the server's limit, --max_request_inputs)" in str(exc.value)
    tfs = make_grpc_client(srv.grpc_url)
    with pytest.raises(Exception, match="more than 1 dimensions"):
        tfs.predict({"b": x.reshape(1, 10)}, "flat")

    url = "/v2/models/flat/infer"
    good = {"name": "b", "shape": [10], "datatype": "FP32", "data": x.tolist()}
    assert rest(srv.http_url, "POST", url, {"inputs": [good]}).status == 200
    cases = [
        ({"inputs": [{**good, "shape": [1, 10]}]}, "more than 1 dimensions in the shape of input b"),
        ({"inputs": [good, good]}, "more than 1 inputs"),
        ({"inputs": [good], "outputs": [{"name": "a"}, {"name": "a"}]}, "more than 1 outputs"),
        ({"inputs": [{**good, "parameters": {"x": 1}}], "parameters": {"y": 2}}, "more than 1 parameters"),
    ]
    for body, message in cases:
        r = rest(srv.http_url, "POST", url, body)
        assert r.status == 400, (body, r.status, r.body)
        assert message in r.error() and "the server's limit" in r.error(), r.body


def test_help_documents_the_limit_flags():
    out = subprocess.run([sys.executable, "-m", "ovfast", "--help"], capture_output=True, text=True, timeout=60).stdout
    for flag in ("--max_request_inputs", "--max_request_outputs", "--max_tensor_dims", "--max_request_parameters"):
        assert flag in out, out


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_limit_below_one_is_a_usage_error(value):
    r = subprocess.run([sys.executable, "-m", "ovfast", "--max_request_inputs", value, "--port", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "max_request_inputs must be from 1" in r.stdout + r.stderr
