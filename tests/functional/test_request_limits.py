"""Issue 14 point 2: the request decoding limits (inputs, outputs, dimensions, parameters per request) are
set in config.json's "request_limits" (or by the flags of the same names, which win), checked on every API
(KServe and TFS, gRPC and REST) with INVALID_ARGUMENT / 400 and a message naming the limit, applied again
when config.json is reloaded; the defaults accept a real model (Silero VAD, two inputs and two outputs)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from ovmsclient import make_grpc_client

from kserve_util import rest
from lifecycle_util import wait_until
from stateful_model import build_stateless_vad

pytest.importorskip("openvino")

INPUT = np.zeros((1, 576), np.float32)
STATE = np.zeros((2, 1, 128), np.float32)
MESSAGE = "more than 1 inputs (the server's limit, --max_request_inputs)"


def write(path, limits: dict | None, base) -> None:
    doc = {"model_config_list": [{"config": {"name": "vad", "base_path": str(base)}}]}
    if limits is not None:
        doc["request_limits"] = limits
    path.write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def vad(tmp_path_factory):
    return build_stateless_vad(tmp_path_factory.mktemp("vad") / "vad")


def grpc_infer(srv):
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    inputs = []
    for name, arr in (("input", INPUT), ("state", STATE)):
        inputs.append(grpcclient.InferInput(name, list(arr.shape), "FP32"))
        inputs[-1].set_data_from_numpy(arr)
    try:
        return client.infer("vad", inputs, outputs=[grpcclient.InferRequestedOutput("stateN")])
    finally:
        client.close()


def tfs_predict(srv):
    return make_grpc_client(srv.grpc_url).predict({"input": INPUT, "state": STATE}, "vad")


def rest_infer(srv):
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 576], "data": INPUT.ravel().tolist()},
                       {"name": "state", "datatype": "FP32", "shape": [2, 1, 128], "data": STATE.ravel().tolist()}],
            "outputs": [{"name": "stateN"}]}
    return rest(srv.http_url, "POST", "/v2/models/vad/infer", body)


def tfs_rest_predict(srv):
    body = {"inputs": {"input": INPUT.tolist(), "state": STATE.tolist()}}
    return rest(srv.http_url, "POST", "/v1/models/vad:predict", body)


def assert_refused(srv, message: str) -> None:
    with pytest.raises(grpcclient.InferenceServerException) as err:
        grpc_infer(srv)
    assert err.value.status() == "StatusCode.INVALID_ARGUMENT" and message in err.value.message()
    with pytest.raises(Exception, match="more than 1 inputs"):
        tfs_predict(srv)
    for r in (rest_infer(srv), tfs_rest_predict(srv)):
        assert r.status == 400 and message in r.body.decode(), (r.status, r.body[:300])


def assert_served(srv) -> None:
    assert grpc_infer(srv).as_numpy("stateN").shape == (2, 1, 128)
    assert np.asarray(tfs_predict(srv)["stateN"]).shape == (2, 1, 128)
    for r in (rest_infer(srv), tfs_rest_predict(srv)):
        assert r.status == 200, (r.status, r.body[:300])


def test_the_default_limits_accept_a_real_model(ovfast_server, tmp_path, vad):
    write(tmp_path / "config.json", None, vad)
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"))
    assert_served(srv)


def test_limits_set_low_in_config_json_refuse_on_every_api_and_follow_a_reload(ovfast_server, tmp_path, vad):
    cfg = tmp_path / "config.json"
    write(cfg, {"max_request_inputs": 1}, vad)
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "1")
    assert_refused(srv, MESSAGE)
    # the other limits, one at a time over REST (the same checks as the native codecs')
    good = {"name": "input", "datatype": "FP32", "shape": [1, 576], "data": INPUT.ravel().tolist()}
    write(cfg, {"max_request_outputs": 1, "max_tensor_dims": 2, "max_request_parameters": 1}, vad)
    wait_until(lambda: rest_infer(srv).status == 400 and "dimensions" in rest_infer(srv).body.decode(),
               "the reloaded limits", srv)
    cases = [
        ({"inputs": [good], "outputs": [{"name": "stateN"}, {"name": "stateN"}]}, "more than 1 outputs"),
        ({"inputs": [{**good, "parameters": {"a": 1}}], "parameters": {"b": 2}}, "more than 1 parameters"),
    ]
    for body, message in cases:
        r = rest(srv.http_url, "POST", "/v2/models/vad/infer", body)
        assert r.status == 400 and message in r.error() and "the server's limit" in r.error(), r.body[:300]
    with pytest.raises(grpcclient.InferenceServerException) as err:
        grpc_infer(srv)
    assert "more than 2 dimensions in the shape of input state (the server's limit, --max_tensor_dims)" \
        in err.value.message()
    # the section removed: the defaults again
    write(cfg, None, vad)
    wait_until(lambda: rest_infer(srv).status == 200, "the default limits after a reload", srv)
    assert_served(srv)


def test_a_flag_on_the_command_line_wins_over_config_json(ovfast_server, tmp_path, vad):
    write(tmp_path / "config.json", {"max_request_inputs": 8}, vad)
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"), "--max_request_inputs", "1")
    assert_refused(srv, MESSAGE)


@pytest.mark.parametrize(("limits", "message"), [
    ({"max_request_inputs": 0}, "request_limits.max_request_inputs must be from 1 to 2147483647"),
    ({"max_request_inputs": True}, "request_limits.max_request_inputs must be from 1"),
    ({"max_inputs": 4}, "unknown key(s) ['max_inputs']"),
    ([1], "'request_limits' must be an object"),
])
def test_a_bad_request_limits_section_stops_the_start_with_the_reason(tmp_path, vad, limits, message):
    write(tmp_path / "config.json", None, vad)
    doc = json.loads((tmp_path / "config.json").read_text())
    doc["request_limits"] = limits
    (tmp_path / "config.json").write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "ovfast", "--config_path", str(tmp_path / "config.json"),
                        "--port", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr, r.stdout + r.stderr
