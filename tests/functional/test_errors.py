"""Error handling on both transports: status codes, OVMS-style messages, and that the server
keeps serving after every error (each error is followed by a good request)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np
import pytest
from kserve_util import (
    assert_grpc_serving,
    assert_rest_serving,
    binary_body,
    grpc_error,
    grpc_input,
    json_input,
    make_infer_request,
    require_model,
    rest,
    serialize_bytes,
)
from tritonclient.grpc import service_pb2

pytestmark = pytest.mark.timeout(120)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND

F10 = np.arange(10, dtype=np.float32).reshape(1, 10)


def assert_phrases(msg: str, phrases) -> None:
    for p in phrases:
        assert p in msg, f"{p!r} not in error message {msg!r}"


# -- validation errors, same case on gRPC and REST --------------------------------------------


@dataclass
class Case:
    id: str
    model: str
    grpc_inputs: object  # callable -> list of (tensor, raw)
    rest_body: object  # callable -> dict (JSON) or (bytes, headers)
    phrases: tuple


def _g(*specs, typed=False):
    return lambda: [grpc_input(n, dt, shape, arr, typed=typed) for n, dt, shape, arr in specs]


CASES = [
    Case(
        "wrong_shape",
        "add",
        _g(("b", "FP32", [1, 11], np.zeros((1, 11), np.float32))),
        lambda: {"inputs": [json_input("b", [1, 11], "FP32", [0.0] * 11)]},
        ("Invalid input shape", "Expected: (1,10)", "Actual: (1,11)", "input name: b"),
    ),
    Case(
        "wrong_batch",
        "add",
        _g(("b", "FP32", [2, 10], np.zeros((2, 10), np.float32))),
        lambda: {"inputs": [json_input("b", [2, 10], "FP32", [0.0] * 20)]},
        ("Invalid input batch size", "Expected: 1", "Actual: 2", "input name: b"),
    ),
    Case(
        "wrong_rank",
        "add",
        _g(("b", "FP32", [10], np.zeros(10, np.float32))),
        lambda: {"inputs": [json_input("b", [10], "FP32", [0.0] * 10)]},
        ("Invalid number of shape dimensions", "input name: b"),
    ),
    Case(
        "wrong_precision",
        "add",
        _g(("b", "INT32", [1, 10], np.zeros((1, 10), np.int32))),
        lambda: {"inputs": [json_input("b", [1, 10], "INT32", [0] * 10)]},
        ("Invalid input precision", "Expected: FP32", "Actual: INT32", "input name: b"),
    ),
    Case(
        "content_size",
        "add",
        lambda: [(grpc_input("b", "FP32", [1, 10])[0], np.zeros(9, np.float32).tobytes())],
        lambda: binary_body(
            {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": 36}}]},
            [np.zeros(9, np.float32).tobytes()],
        ),
        ("Invalid content size of tensor proto", "Expected: 40 bytes", "Actual: 36 bytes", "input name: b"),
    ),
    Case(
        "value_count",
        "add",
        _g(("b", "FP32", [1, 10], np.zeros(9, np.float32)), typed=True),
        lambda: {"inputs": [json_input("b", [1, 10], "FP32", [0.0] * 9)]},
        (
            "Invalid number of values in tensor proto container",
            "Expected: 10 values",
            "Actual: 9 values",
            "input name: b",
        ),
    ),
    Case(
        "extra_input",
        "add",
        _g(("b", "FP32", [1, 10], F10), ("c", "FP32", [1, 10], F10)),
        lambda: {
            "inputs": [json_input("b", [1, 10], "FP32", [0.0] * 10), json_input("c", [1, 10], "FP32", [0.0] * 10)]
        },
        ("Invalid number of inputs", "Expected: 1", "Actual: 2"),
    ),
    Case(
        "too_few_inputs",
        "two_io",
        _g(("x", "FP32", [1, 4], np.zeros((1, 4), np.float32))),
        lambda: {"inputs": [json_input("x", [1, 4], "FP32", [0.0] * 4)]},
        ("Invalid number of inputs", "Expected: 2", "Actual: 1"),
    ),
    Case(
        "missing_named_input",
        "add",
        _g(("c", "FP32", [1, 10], F10)),
        lambda: {"inputs": [json_input("c", [1, 10], "FP32", [0.0] * 10)]},
        ("Missing input with specific name", "Required input: b"),
    ),
    Case(
        "no_inputs",
        "add",
        lambda: [],
        lambda: {"inputs": []},
        ("Invalid number of inputs", "Expected: 1", "Actual: 0"),
    ),
    Case(
        "duplicate_input",
        "two_io",
        _g(("x", "FP32", [1, 4], np.zeros((1, 4), np.float32)), ("x", "FP32", [1, 4], np.zeros((1, 4), np.float32))),
        lambda: {"inputs": [json_input("x", [1, 4], "FP32", [0.0] * 4), json_input("x", [1, 4], "FP32", [0.0] * 4)]},
        ("Missing input with specific name", "Required input: y"),
    ),
    Case(
        "negative_dim",
        "add",
        lambda: [(grpc_input("b", "FP32", [-1, 10])[0], F10.tobytes())],
        lambda: {"inputs": [json_input("b", [-1, 10], "FP32", [0.0] * 10)]},
        (),
    ),
    Case(
        "missing_named_input_two_io",
        "two_io",
        _g(("x", "FP32", [1, 4], np.zeros((1, 4), np.float32)), ("z", "FP32", [1, 4], np.zeros((1, 4), np.float32))),
        lambda: {"inputs": [json_input("x", [1, 4], "FP32", [0.0] * 4), json_input("z", [1, 4], "FP32", [0.0] * 4)]},
        ("Missing input with specific name", "Required input: y"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validation_error_grpc(grpc_stub, case):
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request(case.model, case.grpc_inputs()))
    assert code == INVALID, (code, msg)
    assert_phrases(msg, case.phrases)
    assert_grpc_serving(grpc_stub, 1.0)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validation_error_rest(main_server, case):
    body = case.rest_body()
    headers = None
    if isinstance(body, tuple):
        body, headers = body
    r = rest(main_server.http_url, "POST", f"/v2/models/{case.model}/infer", body, headers)
    assert r.status == 400, (r.status, r.body)
    assert_phrases(r.error(), case.phrases)
    assert_rest_serving(main_server.http_url, 1.0)


def test_validation_error_tritonclient(grpc_client, http_client):
    """The typed client errors carry the same status and message."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    gi = grpcclient.InferInput("b", [1, 11], "FP32")
    gi.set_data_from_numpy(np.zeros((1, 11), np.float32))
    with pytest.raises(InferenceServerException) as ei:
        grpc_client.infer("add", [gi])
    assert ei.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "Invalid input shape" in ei.value.message()
    hi = httpclient.InferInput("b", [1, 11], "FP32")
    hi.set_data_from_numpy(np.zeros((1, 11), np.float32))
    with pytest.raises(InferenceServerException) as ei:
        http_client.infer("add", [hi])
    assert ei.value.status() == "400"
    assert "Invalid input shape" in ei.value.message()


@pytest.mark.parametrize("datatype", ["FP33", "", "float32"])
def test_unknown_datatype(grpc_stub, main_server, datatype):
    t, _ = grpc_input("b", "FP32", [1, 10])
    t.datatype = datatype
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request("add", [(t, F10.tobytes())]))
    assert code == INVALID, (code, msg)
    assert_grpc_serving(grpc_stub)
    body = {"inputs": [json_input("b", [1, 10], datatype, [0.0] * 10)]}
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


# -- gRPC-only message-structure errors -------------------------------------------------------


def test_mixing_raw_and_typed_contents(grpc_stub):
    t, _ = grpc_input("b", "FP32", [1, 10], F10, typed=True)
    req = make_infer_request("add", [(t, None)], raw=[F10.tobytes()])
    code, msg = grpc_error(grpc_stub.ModelInfer, req)
    assert code == INVALID, (code, msg)
    assert_phrases(
        msg,
        (
            "Passing buffers both in ModelInferRequest::InferInputTensor::contents and in "
            "ModelInferRequest::raw_input_contents is not allowed",
        ),
    )
    assert_grpc_serving(grpc_stub)


def test_mixing_raw_and_typed_two_inputs(grpc_stub):
    x, _ = grpc_input("x", "FP32", [1, 4], np.ones((1, 4)), typed=True)
    y, yraw = grpc_input("y", "FP32", [1, 4], np.ones((1, 4)))
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request("two_io", [(x, None), (y, yraw)]))
    assert code == INVALID, (code, msg)
    assert "Passing buffers both in" in msg
    assert_grpc_serving(grpc_stub)


@pytest.mark.parametrize("n_raw", [0, 2])
def test_raw_contents_count_mismatch(grpc_stub, n_raw):
    t, _ = grpc_input("b", "FP32", [1, 10])
    req = make_infer_request("add", [(t, None)], raw=[F10.tobytes()] * n_raw)
    code, msg = grpc_error(grpc_stub.ModelInfer, req)
    assert code == INVALID, (code, msg)
    assert_grpc_serving(grpc_stub)


def test_typed_contents_in_wrong_field(grpc_stub):
    t, _ = grpc_input("b", "FP32", [1, 10])
    t.contents.int_contents.extend(range(10))
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request("add", [(t, None)]))
    assert code == INVALID, (code, msg)
    assert_grpc_serving(grpc_stub)


@pytest.mark.parametrize("key,datatype", [("f16", "FP16"), ("bf16", "BF16")])
def test_typed_contents_for_raw_only_types(grpc_stub, model_repo, key, datatype):
    require_model(model_repo, f"identity_{key}")
    t, _ = grpc_input("x", datatype, [1, 6])
    t.contents.fp32_contents.extend([1.0] * 6)
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request(f"identity_{key}", [(t, None)]))
    assert code == INVALID, (code, msg)
    assert_grpc_serving(grpc_stub)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x64\x00\x00\x00abc", id="length_prefix_past_end"),
        pytest.param(b"\x03\x00", id="truncated_prefix"),
        pytest.param(serialize_bytes([b"a", b"b"]), id="too_few_elements"),
        pytest.param(serialize_bytes([b"a", b"b", b"c", b"d"]), id="too_many_elements"),
    ],
)
def test_bytes_raw_malformed(grpc_stub, model_repo, raw):
    require_model(model_repo, "string")
    t, _ = grpc_input("s", "BYTES", [3])
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request("string", [(t, raw)]))
    assert code == INVALID, (code, msg)
    assert_grpc_serving(grpc_stub)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xff\xff\xff\xff\xff", id="garbage"),
        pytest.param(b"\x0a\x64add", id="truncated_length"),
        pytest.param(b"\x2a\x05\x0a\x01", id="truncated_nested"),
        pytest.param(bytes(range(256)) * 4, id="noise"),
    ],
)
def test_malformed_protobuf(grpc_channel, grpc_stub, payload):
    call = grpc_channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    code, msg = grpc_error(call, payload)
    assert code == INVALID, (code, msg)
    assert_grpc_serving(grpc_stub)


# -- NOT_FOUND / 404 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model,version",
    [("no_such_model", ""), ("no_such_model", "1"), ("add", "7"), ("versioned", "1"), ("versioned", "2")],
)
def test_not_found_grpc(grpc_stub, model, version):
    req = make_infer_request(model, [grpc_input("b", "FP32", [1, 10], F10)], version=version)
    code, msg = grpc_error(grpc_stub.ModelInfer, req)
    assert code == NOT_FOUND, (code, msg)
    code, msg = grpc_error(grpc_stub.ModelMetadata, service_pb2.ModelMetadataRequest(name=model, version=version))
    assert code == NOT_FOUND, (code, msg)
    code, msg = grpc_error(grpc_stub.ModelReady, service_pb2.ModelReadyRequest(name=model, version=version))
    assert code == NOT_FOUND, (code, msg)
    assert_grpc_serving(grpc_stub)


def test_not_found_messages_grpc(grpc_stub):
    _, msg = grpc_error(grpc_stub.ModelMetadata, service_pb2.ModelMetadataRequest(name="no_such_model"))
    assert "Model with requested name is not found" in msg
    _, msg = grpc_error(grpc_stub.ModelMetadata, service_pb2.ModelMetadataRequest(name="add", version="7"))
    assert "Model with requested version is not found" in msg


@pytest.mark.parametrize(
    "model,version",
    [("no_such_model", ""), ("no_such_model", "1"), ("add", "7"), ("versioned", "1"), ("versioned", "2")],
)
def test_not_found_rest(main_server, model, version):
    base = f"/v2/models/{model}" + (f"/versions/{version}" if version else "")
    body = {"inputs": [json_input("b", [1, 10], "FP32", [0.0] * 10)]}
    for method, path, b in (("POST", base + "/infer", body), ("GET", base, None), ("GET", base + "/ready", None)):
        r = rest(main_server.http_url, method, path, b)
        assert r.status == 404, (method, path, r.status, r.body)
        r.error()
    assert_rest_serving(main_server.http_url)


def test_non_numeric_version_grpc(grpc_stub):
    req = make_infer_request("add", [grpc_input("b", "FP32", [1, 10], F10)], version="abc")
    code, msg = grpc_error(grpc_stub.ModelInfer, req)
    assert code == INVALID, (code, msg)
    code, msg = grpc_error(grpc_stub.ModelReady, service_pb2.ModelReadyRequest(name="add", version="abc"))
    assert code == INVALID, (code, msg)
    assert_grpc_serving(grpc_stub)


def test_input_errors_are_never_not_found(grpc_stub):
    # under ModelMesh NOT_FOUND makes the sidecar drop the model: an unknown *input* is INVALID_ARGUMENT
    req = make_infer_request("add", [grpc_input("no_such_input", "FP32", [1, 10], F10)])
    code, _ = grpc_error(grpc_stub.ModelInfer, req)
    assert code == INVALID
