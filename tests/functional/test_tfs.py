"""TensorFlow-Serving API (gRPC + REST) against a real server, driven by ovmsclient and raw requests.

Models come from the session ``model_repo`` (conftest): ``add`` (OVMS dummy: b[1,10] -> a=b+1),
``two_io``, ``dynamic`` ([-1,-1]), ``versioned`` (v1 b+1, v3 b+3; latest served), one
``identity_<dtype>`` per element type, and ``string`` when OpenVINO compiles it.
"""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from ovmsclient import make_grpc_client, make_http_client
from ovmsclient.tfs_compat.base.errors import InvalidInputError, ModelNotFoundError
from ovmsclient.tfs_compat.protos.tensorflow.core.framework import tensor_pb2, types_pb2
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import (
    get_model_metadata_pb2, get_model_status_pb2, model_management_pb2, predict_pb2,
)

import models as M

# TFS API dtypes OVMS supports (bf16 has no numpy/TFS client representation)
KEYS = [k for k in M.DTYPES if k != "bf16"]
TF_NAMES = {"f32": "DT_FLOAT", "f16": "DT_HALF", "f64": "DT_DOUBLE", "i8": "DT_INT8", "i16": "DT_INT16",
            "i32": "DT_INT32", "i64": "DT_INT64", "u8": "DT_UINT8", "u16": "DT_UINT16", "u32": "DT_UINT32",
            "u64": "DT_UINT64", "boolean": "DT_BOOL"}


@pytest.fixture(scope="module")
def grpc_tfs(main_server):
    return make_grpc_client(main_server.grpc_url)


@pytest.fixture(scope="module")
def http_tfs(main_server):
    return make_http_client(main_server.http_url)


@pytest.fixture(scope="module")
def channel(main_server):
    ch = grpc.insecure_channel(main_server.grpc_url)
    yield ch
    ch.close()


def _rpc(channel, method: str, req, resp_cls):
    call = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=resp_cls.FromString)
    return call(req, timeout=30)


def predict_raw(channel, req: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    return _rpc(channel, "/tensorflow.serving.PredictionService/Predict", req, predict_pb2.PredictResponse)


def http(server, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{server.http_url}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post_json(server, path: str, doc) -> tuple[int, dict]:
    status, body = http(server, "POST", path, json.dumps(doc).encode())
    return status, json.loads(body)


def _skip_unsupported(model_repo, name):
    if name not in model_repo.paths:
        pytest.skip(model_repo.unsupported.get(name, f"{name} not built"))


X = np.arange(10, dtype=np.float32).reshape(1, 10)


# -- Predict via ovmsclient ------------------------------------------------------------------

def test_grpc_predict_dummy(grpc_tfs):
    out = grpc_tfs.predict({"b": X}, "add")
    np.testing.assert_array_equal(out, X + 1)


def test_http_predict_dummy(http_tfs):
    out = http_tfs.predict({"b": X}, "add")
    np.testing.assert_array_equal(out, X + 1)


@pytest.mark.parametrize("key", KEYS)
def test_grpc_predict_every_dtype_tensor_content(grpc_tfs, model_repo, key):
    _skip_unsupported(model_repo, f"identity_{key}")
    x = M.dtype_values(key)
    out = grpc_tfs.predict({"x": x}, f"identity_{key}")
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("key", KEYS)
def test_http_predict_every_dtype(http_tfs, model_repo, key):
    _skip_unsupported(model_repo, f"identity_{key}")
    x = M.dtype_values(key, offset=1)
    out = http_tfs.predict({"x": x}, f"identity_{key}")
    np.testing.assert_array_equal(out.astype(x.dtype), x)


# Typed value fields as OVMS accepts them: half_val for FP16, int_val for (U)INT8/16, etc.
TYPED_FIELDS = {
    "f16": ("half_val", lambda x: [int(v) for v in x.view(np.uint16).ravel()]),
    "u16": ("int_val", lambda x: x.ravel().tolist()), "i8": ("int_val", lambda x: x.ravel().tolist()),
    "i16": ("int_val", lambda x: x.ravel().tolist()), "u8": ("int_val", lambda x: x.ravel().tolist()),
    "i32": ("int_val", lambda x: x.ravel().tolist()), "f32": ("float_val", lambda x: x.ravel().tolist()),
    "f64": ("double_val", lambda x: x.ravel().tolist()), "i64": ("int64_val", lambda x: x.ravel().tolist()),
    "u32": ("uint32_val", lambda x: x.ravel().tolist()), "u64": ("uint64_val", lambda x: x.ravel().tolist()),
    "boolean": ("bool_val", lambda x: x.ravel().tolist()),
}


def _tensor(dtype: int, shape, **fields) -> tensor_pb2.TensorProto:
    t = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for d in shape:
        t.tensor_shape.dim.add(size=d)
    return t


def _req(name: str, version: int | None = None, **inputs) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    if version is not None:
        req.model_spec.version.value = version
    for k, t in inputs.items():
        req.inputs[k].CopyFrom(t)
    return req


@pytest.mark.parametrize("key", sorted(TYPED_FIELDS))
def test_grpc_predict_typed_value_fields(channel, model_repo, key):
    _skip_unsupported(model_repo, f"identity_{key}")
    x = M.dtype_values(key, offset=2)
    field, conv = TYPED_FIELDS[key]
    t = _tensor(getattr(types_pb2, TF_NAMES[key]), [1, 6], **{field: conv(x)})
    resp = predict_raw(channel, _req(f"identity_{key}", x=t))
    y = resp.outputs["y"]
    assert y.dtype == getattr(types_pb2, TF_NAMES[key])
    assert [d.size for d in y.tensor_shape.dim] == [1, 6]
    np.testing.assert_array_equal(np.frombuffer(y.tensor_content, x.dtype).reshape(1, 6), x)


def test_grpc_predict_strings(grpc_tfs, channel, model_repo):
    _skip_unsupported(model_repo, "string")
    words = np.array([b"alpha", b"", b"\xff\x00bin"])
    out = grpc_tfs.predict({"s": words}, "string")
    assert list(out) == list(words)
    resp = predict_raw(channel, _req("string", s=_tensor(types_pb2.DT_STRING, [2], string_val=[b"a", b"bc"])))
    assert resp.outputs["out"].dtype == types_pb2.DT_STRING
    assert list(resp.outputs["out"].string_val) == [b"a", b"bc"]


def test_http_predict_strings_b64(http_tfs, main_server, model_repo):
    _skip_unsupported(model_repo, "string")
    out = http_tfs.predict({"s": np.array([b"hello", b"world"])}, "string")  # sent as {"b64": ...}
    assert list(out) == ["hello", "world"]
    status, doc = post_json(main_server, "/v1/models/string:predict",
                            {"inputs": {"s": ["plain", {"b64": base64.b64encode(b"\xff\xfe").decode()}]}})
    assert status == 200, doc
    assert doc == {"outputs": ["plain", {"b64": base64.b64encode(b"\xff\xfe").decode()}]}


def test_grpc_response_shape_and_model_spec(channel):
    resp = predict_raw(channel, _req("add", b=_tensor(types_pb2.DT_FLOAT, [1, 10], tensor_content=X.tobytes())))
    assert list(resp.outputs) == ["a"]
    a = resp.outputs["a"]
    assert a.dtype == types_pb2.DT_FLOAT and [d.size for d in a.tensor_shape.dim] == [1, 10]
    assert resp.model_spec.name == "add" and resp.model_spec.version.value == 1


def test_two_outputs(grpc_tfs, http_tfs):
    x, y = np.ones((1, 4), np.float32), np.full((1, 4), 3, np.float32)
    for client in (grpc_tfs, http_tfs):
        out = client.predict({"x": x, "y": y}, "two_io")
        np.testing.assert_array_equal(out["sum"], x + y)
        np.testing.assert_array_equal(out["prod"], x * y)


def test_dynamic_shape(grpc_tfs, http_tfs):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for client in (grpc_tfs, http_tfs):
        np.testing.assert_array_equal(client.predict({"x": x}, "dynamic"), x * 2)


# -- version selection ------------------------------------------------------------------------

def test_version_selection(grpc_tfs, http_tfs):
    for client in (grpc_tfs, http_tfs):
        np.testing.assert_array_equal(client.predict({"b": X}, "versioned"), X + 3)  # default = highest
        np.testing.assert_array_equal(client.predict({"b": X}, "versioned", model_version=3), X + 3)
        with pytest.raises(ModelNotFoundError, match="Model with requested version is not found"):
            client.predict({"b": X}, "versioned", model_version=1)  # not served (latest 1 policy)
        with pytest.raises(ModelNotFoundError, match="Model with requested version is not found"):
            client.predict({"b": X}, "versioned", model_version=7)


# -- errors (clear INVALID_ARGUMENT / NOT_FOUND; server keeps serving) ---------------------------

def test_unknown_model(grpc_tfs, http_tfs):
    with pytest.raises(ModelNotFoundError):
        grpc_tfs.predict({"b": X}, "nope")
    with pytest.raises(ModelNotFoundError, match="Model with requested name is not found"):
        http_tfs.predict({"b": X}, "nope")
    for client in (grpc_tfs, http_tfs):
        with pytest.raises(ModelNotFoundError, match="Model with requested name is not found"):
            client.get_model_metadata("nope")
        with pytest.raises(ModelNotFoundError, match="Model with requested name is not found"):
            client.get_model_status("nope")


@pytest.mark.parametrize("inputs, message", [
    ({"b": X.astype(np.int32)}, "Invalid input precision - Expected: FP32; Actual: INT32; input name: b"),
    ({"b": np.zeros((1, 11), np.float32)}, "Invalid input shape - Expected: (1,10); Actual: (1,11); input name: b"),
    ({"b": np.zeros((2, 10), np.float32)}, "Invalid input batch size - Expected: 1; Actual: 2; input name: b"),
    ({"b": np.zeros((10,), np.float32)}, "Invalid number of shape dimensions - Expected: (1,10); Actual: (10)"),
    ({"c": X}, "Missing input with specific name - Required input: b"),
    ({"b": X, "c": X}, "Invalid number of inputs - Expected: 1; Actual: 2"),
])
def test_grpc_validation_errors(grpc_tfs, inputs, message):
    with pytest.raises(InvalidInputError) as exc:
        grpc_tfs.predict(inputs, "add")
    assert message in str(exc.value)


def test_grpc_content_size_and_bad_bytes(channel, grpc_tfs):
    short = _req("add", b=_tensor(types_pb2.DT_FLOAT, [1, 10], tensor_content=b"\0" * 36))
    with pytest.raises(grpc.RpcError) as exc:
        predict_raw(channel, short)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Invalid content size of tensor proto - Expected: 40 bytes; Actual: 36 bytes" in exc.value.details()
    raw = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    for junk in (b"\x0a\xff", b"\x12\x05\x0a\x03ab", b"\xff" * 16):
        with pytest.raises(grpc.RpcError) as exc:
            raw(junk, timeout=30)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    no_spec = predict_pb2.PredictRequest()
    with pytest.raises(grpc.RpcError) as exc:
        predict_raw(channel, no_spec)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details() == "model_spec missing in request"
    np.testing.assert_array_equal(grpc_tfs.predict({"b": X}, "add"), X + 1)  # still serving


def test_http_validation_error(http_tfs):
    with pytest.raises(InvalidInputError, match=r"Invalid input shape - Expected: \(1,10\); Actual: \(1,11\)"):
        http_tfs.predict({"b": np.zeros((1, 11), np.float32)}, "add")


# -- metadata -----------------------------------------------------------------------------------

@pytest.mark.parametrize("client_name", ["grpc_tfs", "http_tfs"])
def test_metadata(request, client_name, model_repo):
    client = request.getfixturevalue(client_name)
    assert client.get_model_metadata("add") == {
        "model_version": 1,
        "inputs": {"b": {"shape": [1, 10], "dtype": "DT_FLOAT"}},
        "outputs": {"a": {"shape": [1, 10], "dtype": "DT_FLOAT"}}}
    md = client.get_model_metadata("dynamic")
    assert md["inputs"]["x"]["shape"] == [-1, -1]
    assert client.get_model_metadata("versioned")["model_version"] == 3
    for key in KEYS:
        if f"identity_{key}" in model_repo.paths:
            md = client.get_model_metadata(f"identity_{key}")
            assert md["inputs"]["x"]["dtype"] == TF_NAMES[key] and md["outputs"]["y"]["dtype"] == TF_NAMES[key]


def _metadata_req(name, fields=("signature_def",), spec=True):
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=list(fields))
    if spec:
        req.model_spec.name = name
    return req


def test_grpc_metadata_signature_def(channel):
    resp = _rpc(channel, "/tensorflow.serving.PredictionService/GetModelMetadata", _metadata_req("two_io"),
                get_model_metadata_pb2.GetModelMetadataResponse)
    anything = resp.metadata["signature_def"]
    assert anything.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    # ovmsclient's copy of the proto lives in package "ovmsclient.serving": parse the bytes, not Unpack()
    sdm = get_model_metadata_pb2.SignatureDefMap.FromString(anything.value)
    assert list(sdm.signature_def) == ["serving_default"]
    sig = sdm.signature_def["serving_default"]
    assert sig.method_name == "tensorflow/serving/predict"
    assert sorted(sig.inputs) == ["x", "y"] and sorted(sig.outputs) == ["prod", "sum"]
    assert sig.inputs["x"].name == "x" and sig.inputs["x"].dtype == types_pb2.DT_FLOAT


@pytest.mark.parametrize("req, message", [
    (_metadata_req("add", fields=("inputs",)), "Invalid signature name"),
    (_metadata_req("add", fields=()), "Invalid signature name"),
    (_metadata_req("add", spec=False), "model_spec missing in request"),
])
def test_grpc_metadata_errors(channel, req, message):
    with pytest.raises(grpc.RpcError) as exc:
        _rpc(channel, "/tensorflow.serving.PredictionService/GetModelMetadata", req,
             get_model_metadata_pb2.GetModelMetadataResponse)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and exc.value.details() == message


# -- status ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("client_name", ["grpc_tfs", "http_tfs"])
def test_status(request, client_name):
    client = request.getfixturevalue(client_name)
    ok = {"state": "AVAILABLE", "error_code": 0, "error_message": "OK"}
    assert client.get_model_status("add") == {1: ok}
    assert client.get_model_status("versioned") == {3: ok}
    assert client.get_model_status("versioned", model_version=3) == {3: ok}
    with pytest.raises(ModelNotFoundError, match="Model with requested version is not found"):
        client.get_model_status("versioned", model_version=1)


def test_grpc_status_raw_and_reload(channel):
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "add"
    resp = _rpc(channel, "/tensorflow.serving.ModelService/GetModelStatus", req,
                get_model_status_pb2.GetModelStatusResponse)
    (s,) = resp.model_version_status
    assert (s.version, s.state, s.status.error_code, s.status.error_message) == (1, 30, 0, "OK")
    reload = _rpc(channel, "/tensorflow.serving.ModelService/HandleReloadConfigRequest",
                  model_management_pb2.ReloadConfigRequest(), model_management_pb2.ReloadConfigResponse)
    assert reload.status.error_code == 0


# -- REST specifics -------------------------------------------------------------------------------

def test_rest_row_and_column_formats(main_server):
    row = X[0].tolist()
    assert post_json(main_server, "/v1/models/add:predict", {"instances": [row]}) == (
        200, {"predictions": [(X[0] + 1).tolist()]})
    assert post_json(main_server, "/v1/models/add:predict", {"instances": [{"b": row}]}) == (
        200, {"predictions": [(X[0] + 1).tolist()]})
    assert post_json(main_server, "/v1/models/add/versions/1:predict", {"inputs": {"b": [row]}}) == (
        200, {"outputs": [(X[0] + 1).tolist()]})
    assert post_json(main_server, "/v1/models/add:predict", {"inputs": [row], "signature_name": "x"}) == (
        200, {"outputs": [(X[0] + 1).tolist()]})
    status, doc = post_json(main_server, "/v1/models/two_io:predict",
                            {"instances": [{"x": [1, 2, 3, 4], "y": [1, 1, 1, 1]}]})
    assert status == 200 and doc == {"predictions": [{"sum": [2, 3, 4, 5], "prod": [1, 2, 3, 4]}]}
    status, doc = post_json(main_server, "/v1/models/two_io:predict",
                            {"inputs": {"x": [[1, 2, 3, 4]], "y": [[2, 2, 2, 2]]}})
    assert status == 200 and doc == {"outputs": {"sum": [[3, 4, 5, 6]], "prod": [[2, 4, 6, 8]]}}
    status, doc = post_json(main_server, "/v1/models/dynamic:predict", {"instances": [[1, 2], [3, 4], [5, 6]]})
    assert status == 200 and doc == {"predictions": [[2, 4], [6, 8], [10, 12]]}


@pytest.mark.parametrize("path, body, status, error", [
    ("/v1/models/add:predict", {"instances": [[0] * 10], "inputs": {}}, 400,
     "Invalid JSON structure. Could not detect row or column format"),
    ("/v1/models/add:predict", {"signature_name": "x"}, 400,
     "Invalid JSON structure. Could not detect row or column format"),
    ("/v1/models/add:predict", {"instances": []}, 400, None),
    ("/v1/models/add:predict", {"instances": [[1, 2], [1]]}, 400, None),
    ("/v1/models/add:predict", {"instances": [["a"] * 10]}, 400, None),
    ("/v1/models/two_io:predict", {"instances": [[1, 2, 3, 4]]}, 400, None),
    ("/v1/models/add:predict", {"inputs": {"b": [[0] * 11]}}, 400,
     "Invalid input shape - Expected: (1,10); Actual: (1,11); input name: b"),
    ("/v1/models/nope:predict", {"instances": [[1]]}, 404, "Model with requested name is not found"),
    ("/v1/models/add/versions/7:predict", {"instances": [[1]]}, 404, "Model with requested version is not found"),
    ("/v1/models/add/versions/99999999999999999999:predict", {"instances": [[1]]}, 404,
     "Model with requested version is not found"),
    ("/v1/models/add:classify", {"instances": [[1]]}, 404, "Requested REST resource not found"),
])
def test_rest_predict_errors(main_server, path, body, status, error):
    got_status, doc = post_json(main_server, path, body)
    assert got_status == status, doc
    assert list(doc) == ["error"]
    if error is not None:
        assert doc["error"] == error


def test_rest_invalid_json_and_routing(main_server):
    status, body = http(main_server, "POST", "/v1/models/add:predict", b"{")
    assert status == 412 and json.loads(body)["error"].startswith("The file is not valid json")
    assert http(main_server, "GET", "/v1/models/add:predict")[0] == 406
    assert http(main_server, "POST", "/v1/models/add/metadata")[0] == 406
    status, body = http(main_server, "GET", "/v1/models/add/foo/bar")
    assert (status, json.loads(body)) == (400, {"error": "Invalid request URL"})
    np.testing.assert_array_equal(  # still serving
        post_json(main_server, "/v1/models/add:predict", {"instances": [X[0].tolist()]})[1]["predictions"],
        X + 1)


def test_rest_status_and_config_json(main_server):
    status, body = http(main_server, "GET", "/v1/models/add")
    assert status == 200
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": "OK"}}]}
    assert json.loads(body) == expected
    assert body.startswith(b'{\n  "model_version_status"')  # 2-space pretty print
    assert json.loads(http(main_server, "GET", "/v1/models/add/versions/1")[1]) == expected
    assert http(main_server, "GET", "/v1/models/add/versions/2")[0] == 404
    status, body = http(main_server, "GET", "/v1/config")
    cfg = json.loads(body)
    assert status == 200 and cfg["add"] == expected and "versioned" in cfg


def test_rest_metadata_json(main_server):
    status, body = http(main_server, "GET", "/v1/models/add/versions/1/metadata")
    assert status == 200
    doc = json.loads(body)
    assert doc["modelSpec"] == {"name": "add", "version": "1"}
    sd = doc["metadata"]["signature_def"]
    assert sd["@type"] == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    sig = sd["signatureDef"]["serving_default"]
    assert sig["methodName"] == "tensorflow/serving/predict"
    assert sig["inputs"]["b"] == {"name": "b", "dtype": "DT_FLOAT",
                                  "tensorShape": {"dim": [{"size": "1"}, {"size": "10"}]}}


def test_rest_labels_and_percent_encoded_names(main_server):
    row = X[0].tolist()
    assert post_json(main_server, "/v1/models/add/labels/stable:predict", {"instances": [row]})[0] == 200
    assert post_json(main_server, "/v1/models/%61dd:predict", {"instances": [row]})[0] == 200
    assert http(main_server, "GET", "/v1/models/%61dd/metadata")[0] == 200


def test_rest_unnamed_b64_instances(main_server, model_repo):
    _skip_unsupported(model_repo, "string")
    b64 = base64.b64encode(b"raw\xff\x00bytes").decode()  # not UTF-8: comes back as b64
    status, doc = post_json(main_server, "/v1/models/string:predict", {"instances": [{"b64": b64}, "two"]})
    assert status == 200, doc
    assert doc == {"predictions": [{"b64": b64}, "two"]}


def test_rest_fp16_and_bool_json(main_server, model_repo):
    _skip_unsupported(model_repo, "identity_f16")
    status, doc = post_json(main_server, "/v1/models/identity_f16:predict",
                            {"inputs": {"x": [[0.5, -1.25, 0, 65504, 2, 3]]}})
    assert (status, doc) == (200, {"outputs": [[0.5, -1.25, 0.0, 65504.0, 2.0, 3.0]]})
    _skip_unsupported(model_repo, "identity_boolean")
    status, doc = post_json(main_server, "/v1/models/identity_boolean:predict",
                            {"instances": [[True, False, True, True, False, False]]})
    assert (status, doc) == (200, {"predictions": [[True, False, True, True, False, False]]})
    status, doc = post_json(main_server, "/v1/models/identity_u8:predict", {"instances": [[256, 0, 0, 0, 0, 0]]})
    assert status == 400 and "out of range" in doc["error"]


# -- binary images through string_val / {"b64": ...} (decoded natively on rank-4 inputs) ----------

def _png(seed: int, h: int, w: int) -> bytes:
    import io

    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    PIL.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def image_tfs_server(ovfast_server_session, tmp_path_factory):
    import openvino as ov
    from openvino import opset13 as ops

    base = tmp_path_factory.mktemp("tfs_images") / "means"
    x = ops.parameter([-1, -1, -1, 3], ov.Type.u8, name="image")
    x.output(0).get_tensor().set_names({"image"})
    y = ops.reduce_mean(ops.convert(x, ov.Type.f32), ops.constant(np.array([1, 2], np.int64)), keep_dims=False)
    y.output(0).get_tensor().set_names({"means"})
    (base / "1").mkdir(parents=True)
    ov.save_model(ov.Model([y], [x], "means"), str(base / "1" / "model.xml"))
    return ovfast_server_session("--model_name", "means", "--model_path", str(base))


def test_binary_image_inputs(image_tfs_server):
    from ovfast import _native

    img = _png(1, 5, 7)
    pixels = _native.decode_images([img], [-1, -1, -1, 3], "UINT8", "BGR")
    expected = np.asarray(pixels, np.float32).mean(axis=(1, 2))
    for client in (make_grpc_client(image_tfs_server.grpc_url), make_http_client(image_tfs_server.http_url)):
        out = client.predict({"image": img}, "means")  # bytes -> string_val / [{"b64": ...}]
        np.testing.assert_allclose(out, expected, rtol=1e-5)
    with pytest.raises(InvalidInputError):
        make_grpc_client(image_tfs_server.grpc_url).predict({"image": b"not an image"}, "means")
