"""Conformance defects found with external clients (issue 12.6), each pinned by a real client against a real
server: OVMS's deprecated plugin keys and refused plugin configs, Triton's statistics for every model, a
repeated requested output, malformed REST POST bodies, the input format in Triton's ModelConfig, and the
extensions the server metadata lists. mapping_config.json is in test_conformance_mapping.py."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import grpc
import numpy as np
import openvino as ov
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import predict_pb2
from tritonclient.utils import InferenceServerException

import models as M
from kserve_util import predict_request, rest, triton_clients

try:
    from openvino import opset13 as ops
except ImportError:  # older layout
    from openvino.runtime import opset13 as ops  # type: ignore[no-redef]

X = np.arange(10, dtype=np.float32).reshape(1, 10)
WAIT_S = 60.0  # upper bound for a load to show up; never asserted as a time
BACKOFF_WATCH_S = 7.0  # how long the refused model is watched (per-second retries would make ~8 attempts)
EXTENSIONS = {"binary_tensor_data", "statistics", "model_configuration", "model_repository"}


def build_image(base: Path) -> Path:
    """Input ``img`` FP32 [1,3,4,4] (NCHW) -> output ``out`` = relu(img)."""
    img = ops.parameter([1, 3, 4, 4], ov.Type.f32, name="img")
    img.output(0).get_tensor().set_names({"img"})
    out = ops.relu(img)
    out.output(0).get_tensor().set_names({"out"})
    (base / "1").mkdir(parents=True)
    ov.save_model(ov.Model([ops.result(out)], [img], "image"), base / "1" / "model.xml")
    return base


def write_config(path: Path, entries: list[dict]) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    os.replace(tmp, path)  # atomic: the watcher never sees half a file
    return path




def wait_until(cond, what: str, srv) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{srv.log()[-6000:]}")


@pytest.fixture(scope="module")
def srv(ovfast_server_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    add = M.build_add(root / "add")
    cfg = write_config(root / "config.json", [
        {"name": "add", "base_path": str(add)},
        {"name": "throughput", "base_path": str(add),
         "plugin_config": {"CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_AUTO"}},
        {"name": "image", "base_path": str(build_image(root / "image")), "layout": "NHWC:NCHW"},
    ])
    return ovfast_server_session("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")


@pytest.fixture(scope="module")
def clients(srv):
    with triton_clients(srv) as both:
        yield both


# -- 1. plugin_config -------------------------------------------------------------------------------

def test_deprecated_plugin_key_is_translated_and_the_model_answers(srv, clients):
    gclient, _ = clients
    inp = grpcclient.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(X)
    res = gclient.infer("throughput", [inp])
    np.testing.assert_array_equal(res.as_numpy("a"), X + 1)
    lines = [ln for ln in srv.log().splitlines() if "CPU_THROUGHPUT_STREAMS" in ln]
    assert len(lines) == 1, lines  # logged once, at load
    assert "Model throughput" in lines[0] and "PERFORMANCE_HINT" in lines[0] and "THROUGHPUT" in lines[0]


def test_refused_plugin_config_fails_the_version_and_backs_off(ovfast_server, tmp_path):
    add = M.build_add(tmp_path / "add")
    cfg = write_config(tmp_path / "config.json", [
        {"name": "add", "base_path": str(add)},
        {"name": "bad", "base_path": str(add), "plugin_config": {"NOT_A_KEY": "1"}}])
    s = ovfast_server("--config_path", str(cfg))  # the watcher polls every second
    c = httpclient.InferenceServerClient(s.http_url)
    try:
        time.sleep(BACKOFF_WATCH_S)  # lets the retries happen; nothing here measures time
        log = s.log().splitlines()
        attempts = [ln for ln in log if "Error loading model bad version 1" in ln]
        assert 1 <= len(attempts) <= 4, "\n".join(attempts)  # 1 s, 2 s, 4 s apart, not every second
        assert all("Unsupported property NOT_A_KEY" in ln for ln in attempts), attempts
        assert not [ln for ln in log if ln.startswith("Exception from")]  # OpenVINO's dump is one line
        # the failed state shows on both APIs
        assert c.is_model_ready("add") and not c.is_model_ready("bad")
        # Between attempts the version shows the failure (during an attempt it is LOADING/OK, as in OVMS).
        def failed() -> bool:
            r = rest(s.http_url, "GET", "/v1/models/bad")
            assert r.status == 200
            status = r.json()["model_version_status"][0]
            # a retry starts from START (a fresh attempt), then LOADING; never AVAILABLE
            assert status["state"] in ("START", "LOADING"), status
            return status["state"] == "LOADING" and status["status"]["error_code"] == "UNKNOWN"

        wait_until(failed, "model bad to show its failed load", s)
        # a config change retries at once, and this one loads
        write_config(cfg, [{"name": "add", "base_path": str(add)},
                           {"name": "bad", "base_path": str(add), "plugin_config": {"CPU_THREADS_NUM": "1"}}])
        wait_until(lambda: c.is_model_ready("bad"), "model bad to load with a good plugin_config", s)
    finally:
        c.close()


# -- 3. statistics of every model -------------------------------------------------------------------

def test_statistics_of_every_model(srv, clients):
    gclient, hclient = clients
    inp = httpclient.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(X)
    hclient.infer("add", [inp])
    stats = hclient.get_inference_statistics()  # GET /v2/models/stats
    by_name = {s["name"]: s for s in stats["model_stats"]}
    assert {"add", "throughput", "image"} <= set(by_name)
    assert by_name["add"]["inference_stats"]["success"]["count"] >= 1
    grpc_names = {s.name for s in gclient.get_inference_statistics().model_stats}
    assert grpc_names == set(by_name)


# -- 4. a repeated requested output ------------------------------------------------------------------

@pytest.mark.parametrize("client_mod", [grpcclient, httpclient], ids=["kserve_grpc", "kserve_rest"])
def test_repeated_requested_output_is_invalid(srv, clients, client_mod):
    gclient, hclient = clients
    client = gclient if client_mod is grpcclient else hclient
    inp = client_mod.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(X)
    outs = [client_mod.InferRequestedOutput("a"), client_mod.InferRequestedOutput("a")]
    with pytest.raises(InferenceServerException) as e:
        client.infer("add", [inp], outputs=outs)
    assert e.value.status() in ("StatusCode.INVALID_ARGUMENT", "400")
    assert "more than once" in e.value.message() and "a" in e.value.message()
    res = client.infer("add", [inp], outputs=outs[:1])  # the server keeps serving
    np.testing.assert_array_equal(res.as_numpy("a"), X + 1)


def test_tfs_output_filter_repeated_returns_each_output_once(srv):
    """TFS Predict ignores output_filter (as OVMS): a repeated name never yields a second copy."""
    req = predict_request("add", {"b": X}, output_filter=["a", "a"])
    with grpc.insecure_channel(srv.grpc_url) as ch:
        call = ch.unary_unary("/tensorflow.serving.PredictionService/Predict",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=predict_pb2.PredictResponse.FromString)
        resp = call(req, timeout=30)
    assert list(resp.outputs) == ["a"]
    np.testing.assert_array_equal(np.frombuffer(resp.outputs["a"].tensor_content, np.float32), X[0] + 1)


# -- 5. REST POST bodies ---------------------------------------------------------------------------

GOOD_INPUT = {"name": "b", "shape": [1, 10], "datatype": "FP32", "data": X[0].tolist()}


@pytest.mark.parametrize("path, body", [
    ("/v2/repository/index", b"{"),
    ("/v2/repository/index", b"[true]"),
    ("/v2/repository/index", b'{"ready": "yes"}'),
    ("/v2/models/add/infer", b"{"),
    ("/v2/models/add/infer", b"[]"),
    ("/v2/models/add/infer", b'{"inputs": {"b": [1]}}'),
    ("/v2/models/add/infer", {"inputs": [{k: v for k, v in GOOD_INPUT.items() if k != "name"}]}),
    ("/v2/models/add/infer", b'{"inputs": [5]}'),
    ("/v2/models/add/infer", {"id": 7, "inputs": [GOOD_INPUT]}),
    ("/v2/models/add/infer", {"inputs": [GOOD_INPUT], "outputs": [{"name": "a", "parameters": 1}]}),
    ("/v2/models/add/versions/1/infer", b"not json"),
    ("/v1/config/reload", b"{"),
    ("/v1/config/reload", b"[1]"),
    ("/v1/models/add:predict", b"[1]"),
    ("/v1/models/add:predict", b'{"instances": 5}'),
    ("/v1/models/add:predict", b'{"inputs": {"b": "x"}}'),
])
def test_malformed_post_body_is_400(srv, path, body):
    r = rest(srv.http_url, "POST", path, body)
    assert r.status == 400, r.body
    assert r.error()


def test_post_bodies_that_are_fine(srv):
    assert rest(srv.http_url, "POST", "/v2/repository/index", b"").status == 200
    r = rest(srv.http_url, "POST", "/v2/repository/index", b'{"ready": true}')
    assert r.status == 200 and {m["name"] for m in r.json()} == {"add", "throughput", "image"}
    assert rest(srv.http_url, "POST", "/v1/config/reload", b"").status in (200, 201)
    assert rest(srv.http_url, "POST", "/v2/models/add/infer", {"inputs": [GOOD_INPUT]}).status == 200


def test_tfs_predict_invalid_json_stays_412_as_ovms(srv):
    r = rest(srv.http_url, "POST", "/v1/models/add:predict", b"{")
    assert r.status == 412 and r.error().startswith("The file is not valid json")


# -- 6. ModelConfig input format ---------------------------------------------------------------------

def test_model_config_reports_the_input_format(srv, clients):
    gclient, hclient = clients
    cfg = gclient.get_model_config("image").config
    assert cfg.input[0].name == "img"
    assert cfg.input[0].format == 1  # FORMAT_NHWC: "NHWC:NCHW" means clients send NHWC
    assert list(cfg.input[0].dims) == [1, 4, 4, 3]
    assert gclient.get_model_config("add").config.input[0].format == 0  # FORMAT_NONE: no layout configured
    doc = hclient.get_model_config("image")
    assert doc["input"][0]["format"] == "FORMAT_NHWC" and doc["input"][0]["dims"] == [1, 4, 4, 3]
    assert hclient.get_model_config("add")["input"][0]["format"] == "FORMAT_NONE"


# -- 7. server metadata extensions --------------------------------------------------------------------

def test_server_metadata_lists_only_served_extensions(srv, clients):
    gclient, hclient = clients
    assert set(hclient.get_server_metadata()["extensions"]) == EXTENSIONS
    assert set(gclient.get_server_metadata().extensions) == EXTENSIONS
    # each listed extension answers ...
    assert hclient.get_inference_statistics("add")["model_stats"]
    assert hclient.get_model_config("add")["name"] == "add"
    inp = httpclient.InferInput("b", [1, 10], "FP32")
    inp.set_data_from_numpy(X, binary_data=True)
    res = hclient.infer("add", [inp], outputs=[httpclient.InferRequestedOutput("a", binary_data=True)])
    np.testing.assert_array_equal(res.as_numpy("a"), X + 1)
    # ... model_repository included (load of a loaded model: nothing to do; unknown model: 404)
    assert rest(srv.http_url, "POST", "/v2/repository/models/add/load", b"{}").status == 200
    assert rest(srv.http_url, "POST", "/v2/repository/models/nope/load", b"{}").status == 404
