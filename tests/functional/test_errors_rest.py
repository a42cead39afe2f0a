"""KServe REST-only errors: malformed JSON, data of the wrong kind, the binary extension's header and
sizes; each followed by a good request (the server keeps serving). Shared cases: test_errors.py."""

from __future__ import annotations

import json

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
)

import models as M

pytestmark = pytest.mark.timeout(120)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
F10 = np.arange(10, dtype=np.float32).reshape(1, 10)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"inputs": [', id="truncated"),
        pytest.param(b"not json at all", id="text"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1, 2, 3]", id="array"),
        pytest.param(b'{"inputs": {"name": "b"}}', id="inputs_not_list"),
        pytest.param(b"{}", id="no_inputs"),
        pytest.param(b'{"inputs": [{"name": "b", "datatype": "FP32", "data": [1]}]}', id="no_shape"),
        pytest.param(b'{"inputs": [{"name": "b", "shape": [1, 10], "data": [1]}]}', id="no_datatype"),
        pytest.param(b'{"inputs": [{"name": "b", "shape": [1, "x"], "datatype": "FP32", "data": [1]}]}', id="bad_dim"),
        pytest.param(b'{"inputs": [{"shape": [1, 10], "datatype": "FP32", "data": [1]}]}', id="no_name"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary_garbage"),
    ],
)
def test_malformed_json(main_server, body):
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, {"Content-Type": "application/json"})
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(["a"] * 10, id="strings_for_fp32"),
        pytest.param([True] * 10, id="bools_for_fp32"),
        pytest.param([None] * 10, id="nulls"),
        pytest.param([{"a": 1}] * 10, id="objects"),
    ],
)
def test_json_data_wrong_kind(main_server, data):
    body = {"inputs": [json_input("b", [1, 10], "FP32", data)]}
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


@pytest.mark.parametrize(
    "key,data",
    [
        pytest.param("i32", [1.5] * 6, id="floats_for_int32"),
        pytest.param("u8", [-1] * 6, id="negative_for_uint8"),
        pytest.param("boolean", [1, 0, 1, 0, 1, 0], id="numbers_for_bool"),
        pytest.param("i64", ["1"] * 6, id="strings_for_int64"),
    ],
)
def test_json_data_wrong_kind_for_dtype(main_server, model_repo, key, data):
    require_model(model_repo, f"identity_{key}")
    body = {"inputs": [json_input("x", [1, 6], M.DTYPES[key].kserve, data)]}
    r = rest(main_server.http_url, "POST", f"/v2/models/identity_{key}/infer", body)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


def test_json_bytes_data_not_strings(main_server, model_repo):
    require_model(model_repo, "string")
    body = {"inputs": [json_input("s", [2], "BYTES", [1, 2])]}
    r = rest(main_server.http_url, "POST", "/v2/models/string/infer", body)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


def test_unknown_requested_output(grpc_stub, main_server):
    # the outputs filter is honoured, so an unknown output name is a bad request (never NOT_FOUND)
    req = make_infer_request("add", [grpc_input("b", "FP32", [1, 10], F10)], outputs=["no_such_output"])
    code, msg = grpc_error(grpc_stub.ModelInfer, req)
    assert code == INVALID, (code, msg)
    assert "no_such_output" in msg
    assert_grpc_serving(grpc_stub)
    body = {"inputs": [json_input("b", [1, 10], "FP32", [0.0] * 10)], "outputs": [{"name": "no_such_output"}]}
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body)
    assert r.status == 400, (r.status, r.body)
    assert "no_such_output" in r.error()
    assert_rest_serving(main_server.http_url)


def test_json_bf16_data_rejected(main_server, model_repo):
    # BF16 has no JSON form: binary extension only
    require_model(model_repo, "identity_bf16")
    body = {"inputs": [json_input("x", [1, 6], "BF16", [1.0] * 6)]}
    r = rest(main_server.http_url, "POST", "/v2/models/identity_bf16/infer", body)
    assert r.status == 400, (r.status, r.body)
    assert "BF16" in r.error() and "x" in r.error()
    assert_rest_serving(main_server.http_url)


def test_json_fp16_data_accepted(main_server, model_repo):
    # ovfast extension (OVMS answers 400): JSON numbers are converted to FP16, and FP16 outputs come back as numbers
    require_model(model_repo, "identity_f16")
    values = [1.5, -2.25, 0.0, 65504.0, -0.5, 7.0]
    body = {"inputs": [json_input("x", [1, 6], "FP16", values)]}
    r = rest(main_server.http_url, "POST", "/v2/models/identity_f16/infer", body)
    assert r.status == 200, (r.status, r.body)
    (out,) = r.json()["outputs"]
    assert out["datatype"] == "FP16" and out["shape"] == [1, 6]
    assert out["data"] == values


def _bin_header(size=40):
    return {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": size}}]}


def test_binary_header_length_larger_than_body(main_server):
    body, headers = binary_body(_bin_header(), [F10.tobytes()])
    headers["Inference-Header-Content-Length"] = str(len(body) + 10)
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, headers)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


@pytest.mark.parametrize("value", ["abc", "-5", "", "1.5"])
def test_binary_header_length_invalid(main_server, value):
    body, headers = binary_body(_bin_header(), [F10.tobytes()])
    headers["Inference-Header-Content-Length"] = value
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, headers)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


def test_binary_header_length_cuts_json(main_server):
    body, headers = binary_body(_bin_header(), [F10.tobytes()])
    headers["Inference-Header-Content-Length"] = str(int(headers["Inference-Header-Content-Length"]) - 5)
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, headers)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


@pytest.mark.parametrize(
    "declared,sent",
    [
        pytest.param(40, 44, id="body_longer_than_sizes"),
        pytest.param(40, 36, id="body_shorter_than_sizes"),
        pytest.param(44, 40, id="size_larger_than_tensor"),
    ],
)
def test_binary_sizes_do_not_match_body(main_server, declared, sent):
    body, headers = binary_body(_bin_header(declared), [np.zeros(sent // 4, np.float32).tobytes()])
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, headers)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


def test_binary_two_inputs_sizes_do_not_add_up(main_server):
    header = {
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
            {"name": "y", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
        ]
    }
    body, headers = binary_body(header, [np.zeros(4, np.float32).tobytes(), np.zeros(3, np.float32).tobytes()])
    r = rest(main_server.http_url, "POST", "/v2/models/two_io/infer", body, headers)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


@pytest.mark.parametrize("size", ["forty", -40, 40.5, None, True])
def test_binary_data_size_invalid(main_server, size):
    body, headers = binary_body(_bin_header(size), [F10.tobytes()])
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", body, headers)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


def test_binary_body_without_header(main_server):
    # JSON followed by binary bytes but no Inference-Header-Content-Length: not valid JSON
    hjson = json.dumps(_bin_header()).encode()
    headers = {"Content-Type": "application/octet-stream"}
    r = rest(main_server.http_url, "POST", "/v2/models/add/infer", hjson + F10.tobytes(), headers)
    assert r.status == 400, (r.status, r.body)
    r.error()
    assert_rest_serving(main_server.http_url)


def test_grpc_still_serves_after_rest_errors(main_server, grpc_stub):
    for _ in range(3):
        r = rest(main_server.http_url, "POST", "/v2/models/add/infer", b"{")
        assert r.status == 400
    assert_grpc_serving(grpc_stub, 5.0)
