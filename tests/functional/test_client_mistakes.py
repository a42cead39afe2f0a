"""Client mistakes in shapes and versions are INVALID_ARGUMENT / 400, never a 500 or a wrong model (issue 14).

A request whose shape claims more elements than any tensor can hold is refused at validation with
INVALID_ARGUMENT / 400 on both KServe transports (issue 14, point 1): with no data at all, ``[0, 2^62]``
used to pass validation (zero elements) and then break the completion path for others."""
from __future__ import annotations

import urllib.parse

import grpc
import numpy as np
import pytest

from kserve_util import (
    assert_grpc_serving, assert_rest_serving, grpc_error, grpc_input, make_infer_request, output_array, rest,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT

SHAPES = [[0, 2**62], [2**62, 0], [2**40, 2**40], [1, 2**62], [0, 2**63 - 1]]


@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
def test_shape_too_big_to_hold_is_invalid_on_grpc(grpc_stub, shape):
    t, _ = grpc_input("x", "FP32", shape)
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request("dynamic", [(t, b"")]))
    assert code == INVALID, (code, msg)
    assert "Invalid input shape" in msg and "input name: x" in msg, msg
    assert_grpc_serving(grpc_stub, 1.0)


@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
def test_shape_too_big_to_hold_is_invalid_on_rest(main_server, shape):
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": []}]}
    r = rest(main_server.http_url, "POST", "/v2/models/dynamic/infer", body)
    assert r.status == 400, (r.status, r.body)
    assert "Invalid input shape" in r.error(), r.body
    assert_rest_serving(main_server.http_url, 1.0)


def test_an_empty_tensor_of_a_real_size_still_runs(grpc_stub):
    # zero rows of a sane width is a valid (empty) request, and answers an empty output
    t, raw = grpc_input("x", "FP32", [0, 4], np.zeros((0, 4), np.float32))
    resp = grpc_stub.ModelInfer(make_infer_request("dynamic", [(t, raw)]))
    assert output_array(resp, "y").shape == (0, 4)


def test_a_dimension_beyond_int64_is_invalid_on_rest(main_server):
    body = {"inputs": [{"name": "x", "shape": [1, 2**63], "datatype": "FP32", "data": []}]}
    r = rest(main_server.http_url, "POST", "/v2/models/dynamic/infer", body)
    assert r.status == 400, (r.status, r.body)  # was 500 "Unable to cast Python instance"
    assert "int64" in r.error()


@pytest.mark.parametrize("version", ["+1", " 1", "\u0661", "1.0"])
def test_a_version_is_ascii_digits_only(main_server, grpc_stub, version):
    quoted = urllib.parse.quote(version)
    r = rest(main_server.http_url, "GET", f"/v2/models/dynamic/versions/{quoted}/ready")
    assert r.status == 400, (version, r.status, r.body)
    t, raw = grpc_input("x", "FP32", [1, 4], np.zeros((1, 4), np.float32))
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request("dynamic", [(t, raw)], version=version))
    assert code == INVALID, (version, code, msg)
    # decimal digits, leading zeros included, still name the version
    assert rest(main_server.http_url, "GET", "/v2/models/dynamic/versions/01/ready").status == 200


def _nested(leaf: str, depth: int) -> str:
    """JSON text of ``leaf`` inside ``depth`` lists (built as text: the json module itself recurses)."""
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize("depth", [1000, 70])
def test_data_nested_deeper_than_any_rank_is_invalid(main_server, depth):
    # KServe REST BYTES (was 500 "maximum recursion depth exceeded")
    body = '{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ' + _nested('"a"', depth) + "}]}"
    r = rest(main_server.http_url, "POST", "/v2/models/dynamic/infer", body, {"Content-Type": "application/json"})
    assert r.status == 400, (r.status, r.body[:200])
    # TFS REST b64
    body = '{"instances": ' + _nested('{"b64": "YQ=="}', depth) + "}"
    r = rest(main_server.http_url, "POST", "/v1/models/dynamic:predict", body, {"Content-Type": "application/json"})
    assert r.status == 400, (r.status, r.body[:200])
    assert_rest_serving(main_server.http_url, 1.0)


def test_a_huge_client_string_is_quoted_only_in_part(main_server, grpc_stub):
    # a 1 MB output name used to come back as RESOURCE_EXHAUSTED "metadata size exceeds hard limit"
    name = "o" * (1 << 20)
    t, raw = grpc_input("x", "FP32", [1, 4], np.zeros((1, 4), np.float32))
    code, msg = grpc_error(grpc_stub.ModelInfer, make_infer_request("dynamic", [(t, raw)], outputs=[name]))
    assert code == INVALID, (code, msg[:200])
    assert "Invalid output name" in msg and len(msg) < 2048
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}],
            "outputs": [{"name": name}]}
    r = rest(main_server.http_url, "POST", "/v2/models/dynamic/infer", body)
    assert r.status == 400, (r.status, r.body[:200])
    assert "Invalid output name" in r.error() and len(r.error()) < 2048
    assert_grpc_serving(grpc_stub, 1.0)
