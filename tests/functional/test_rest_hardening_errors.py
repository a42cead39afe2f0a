"""Issue 14 point 9, the rest of error hygiene: NaN and ±inf outputs in REST JSON as TF Serving writes
them (and KServe/TFS clients read them), float inputs out of range are 400, malformed protobuf on the
Python-forwarded gRPC RPCs is INVALID_ARGUMENT, and client-facing messages carry no absolute paths."""
from __future__ import annotations

import json
import math
import time

import grpc
import numpy as np
import openvino as ov
import pytest
import requests
import tritonclient.http as httpclient

import models as M
from models import ops

from ovfast._gen.tensorflow_serving.apis import get_model_status_pb2 as st_pb
from ovfast._gen.tensorflow_serving.apis import model_pb2

pytestmark = pytest.mark.timeout(180)


def build_log(base):
    """``x`` FP32 [1,3] -> ``y`` = log(x), ``z`` = 0 - log(x): x = [0, -1, 1] gives -inf, NaN, 0 and +inf, NaN, 0."""
    x = M._name(ops.parameter([1, 3], ov.Type.f32, name="x"), "x")
    y = M._name(ops.log(x), "y")
    z = M._name(ops.subtract(ops.constant(np.float32(0.0)), y), "z")
    return M._save(ov.Model([ops.result(y), ops.result(z)], [x], "log"), base)


@pytest.fixture(scope="module")
def server(model_repo, ovfast_server_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("hygiene")
    broken = root / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.xml").write_text("not a model")
    cfg = model_repo.config(["add", "identity_f32", "identity_f16"])
    cfg["model_config_list"] += [{"config": {"name": "log", "base_path": str(build_log(root / "log"))}},
                                 {"config": {"name": "broken", "base_path": str(root / "broken")}}]
    path = root / "config.json"
    path.write_text(json.dumps(cfg))
    srv = ovfast_server_session("--config_path", str(path), "--file_system_poll_wait_seconds", "0")
    srv.config_path, srv.root = path, root
    return srv


def _post(srv, path, body):
    return requests.post(f"http://{srv.http_url}{path}", json=body, timeout=60)


# -- NaN and ±inf in JSON outputs -------------------------------------------------------------------

def _same(got, want) -> bool:
    return all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, want, strict=True))


def test_kserve_json_outputs_nan_and_infinity(server):
    r = _post(server, "/v2/models/log/infer",
              {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [0.0, -1.0, 1.0]}]})
    assert r.status_code == 200, r.text
    assert b"-Infinity" in r.content and b"NaN" in r.content and b"null" not in r.content
    out = {o["name"]: o["data"] for o in json.loads(r.content)["outputs"]}  # Python's json reads them
    assert _same(out["y"], [-math.inf, math.nan, 0.0]) and _same(out["z"], [math.inf, math.nan, 0.0])


def test_tritonclient_reads_nan_and_infinity(server):
    c = httpclient.InferenceServerClient(server.http_url)
    try:
        inp = httpclient.InferInput("x", [1, 6], "FP16")
        sent = np.array([[np.nan, np.inf, -np.inf, 1.0, -2.0, 65504.0]], np.float16)
        inp.set_data_from_numpy(sent, binary_data=True)
        res = c.infer("identity_f16", [inp], outputs=[httpclient.InferRequestedOutput("y", binary_data=False)])
        np.testing.assert_array_equal(res.as_numpy("y").astype(np.float16), sent)
        inp = httpclient.InferInput("x", [1, 6], "FP32")
        sent = np.array([[np.nan, np.inf, -np.inf, 1.5, 3.0e38, -1e-30]], np.float32)
        inp.set_data_from_numpy(sent, binary_data=True)
        res = c.infer("identity_f32", [inp], outputs=[httpclient.InferRequestedOutput("y", binary_data=False)])
        np.testing.assert_array_equal(res.as_numpy("y"), sent)
    finally:
        c.close()


@pytest.mark.parametrize("body,key", [({"inputs": {"x": [[0.0, -1.0, 1.0]]}}, "outputs"),
                                      ({"instances": [{"x": [0.0, -1.0, 1.0]}]}, "predictions")])
def test_tfs_json_outputs_nan_and_infinity(server, body, key):
    r = _post(server, "/v1/models/log:predict", body)
    assert r.status_code == 200, r.text
    assert b"Infinity" in r.content and b"NaN" in r.content and b"null" not in r.content
    doc = json.loads(r.content)[key]
    y, z = (doc["y"][0], doc["z"][0]) if key == "outputs" else (doc[0]["y"], doc[0]["z"])
    assert _same(y, [-math.inf, math.nan, 0.0]) and _same(z, [math.inf, math.nan, 0.0])


def test_strings_that_look_like_markers_are_strings(server):
    """Only float values become bare NaN/Infinity tokens: a finite response is unchanged."""
    r = _post(server, "/v2/models/log/infer",
              {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 1.0, 1.0]}]})
    assert [o["data"] for o in r.json()["outputs"]] == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


# -- float inputs out of range ----------------------------------------------------------------------

@pytest.mark.parametrize("model,datatype,value", [("identity_f32", "FP32", 1e39), ("identity_f32", "FP32", -3.5e38),
                                                  ("identity_f16", "FP16", 70000.0),
                                                  ("identity_f16", "FP16", -65520.0)])
def test_kserve_float_out_of_range_is_400(server, model, datatype, value):
    r = _post(server, f"/v2/models/{model}/infer",
              {"inputs": [{"name": "x", "datatype": datatype, "shape": [1, 6], "data": [value, 1, 2, 3, 4, 5]}]})
    assert r.status_code == 400, r.text
    assert "out of range" in r.json()["error"]


@pytest.mark.parametrize("model,value", [("identity_f32", 3.4e38), ("identity_f16", 65504.0)])
def test_kserve_float_at_the_edge_of_range_is_served(server, model, value):
    datatype = "FP32" if model.endswith("f32") else "FP16"
    r = _post(server, f"/v2/models/{model}/infer",
              {"inputs": [{"name": "x", "datatype": datatype, "shape": [1, 6], "data": [value, 1, 2, 3, 4, 5]}]})
    assert r.status_code == 200, r.text
    assert math.isfinite(r.json()["outputs"][0]["data"][0])


@pytest.mark.parametrize("model,value", [("add", 1e39), ("identity_f16", 1e5)])
def test_tfs_float_out_of_range_is_400(server, model, value):
    width = 10 if model == "add" else 6
    r = _post(server, f"/v1/models/{model}:predict", {"instances": [[value] * width]})
    assert r.status_code == 400, r.text
    assert "out of range" in r.json()["error"]


# -- malformed protobuf on the Python-forwarded RPCs --------------------------------------------------

@pytest.mark.parametrize("method", ["/inference.GRPCInferenceService/ModelMetadata",
                                    "/inference.GRPCInferenceService/ModelReady",
                                    "/inference.GRPCInferenceService/RepositoryIndex",
                                    "/tensorflow.serving.ModelService/GetModelStatus",
                                    "/tensorflow.serving.PredictionService/GetModelMetadata"])
@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff\xff", b"\x0a\x64add", bytes(range(256)) * 4])
def test_malformed_protobuf_on_cold_path_is_invalid_argument(server, method, payload):
    with grpc.insecure_channel(server.grpc_url) as ch:
        call = ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as info:
            call(payload, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "not a valid" in info.value.details()
    assert "Traceback" not in server.stderr()


# -- no absolute paths in what clients are told -------------------------------------------------------

def _no_paths(srv, text: str) -> None:
    assert str(srv.root) not in text and "/tmp/" not in text, text


def test_load_errors_do_not_reveal_paths(server):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        index = requests.post(f"http://{server.http_url}/v2/repository/index", timeout=30).json()
        (broken,) = [m for m in index if m["name"] == "broken"]
        if broken["reason"]:
            break
        time.sleep(0.2)
    assert broken["reason"], index
    _no_paths(server, broken["reason"])
    status = requests.get(f"http://{server.http_url}/v1/models/broken", timeout=30)
    _no_paths(server, status.text)
    with grpc.insecure_channel(server.grpc_url) as ch:
        call = ch.unary_unary("/tensorflow.serving.ModelService/GetModelStatus",
                              request_serializer=st_pb.GetModelStatusRequest.SerializeToString,
                              response_deserializer=st_pb.GetModelStatusResponse.FromString)
        resp = call(st_pb.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="broken")), timeout=30)
    _no_paths(server, str(resp))
    # the server's own log keeps the whole path
    assert str(server.root / "broken") in server.stderr()


def test_reload_errors_do_not_reveal_paths(model_repo, ovfast_server, tmp_path):
    cfg = model_repo.write_config(tmp_path / "config.json", ["add"])
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")
    cfg.unlink()
    r = requests.post(f"http://{srv.http_url}/v1/config/reload", timeout=60)
    assert r.status_code == 412, r.text
    assert "config.json" in r.json()["error"]
    assert str(tmp_path) not in r.text and "/tmp/" not in r.text, r.text
