"""Pipelines across config reloads, against a real server: a pipeline whose model disappears stops
serving with a clear state (LOADING, FAILED_PRECONDITION, OVMS's message) and serves again when the
model is back; a new version of its model is picked up; a removed pipeline ends; a request in flight
finishes on the graph it started on while the pipeline is removed under it."""
from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from ovmsclient import make_grpc_client
from tritonclient.utils import InferenceServerException

import models as M
from lifecycle_util import rest, states, wait_until

pytestmark = pytest.mark.timeout(300)


def write(cfg: Path, models: dict[str, str], pipelines: list[dict]) -> None:
    tmp = cfg.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "model_config_list": [{"config": {"name": k, "base_path": v, "model_version_policy": {"all": {}}}}
                              for k, v in models.items()],
        "pipeline_config_list": pipelines}))
    tmp.replace(cfg)


def chain(name: str, model: str, width: int = 10) -> dict:
    return {"name": name, "inputs": ["in"], "nodes": [
        {"name": "n", "type": "DL model", "model_name": model,
         "inputs": [{M.ADD_INPUT: {"node_name": "request", "data_item": "in"}}],
         "outputs": [{"data_item": M.ADD_OUTPUT, "alias": "out"}]}],
        "outputs": [{"result": {"node_name": "n", "data_item": "out"}}]}


def infer(g, name: str = "p", x: np.ndarray | None = None, output: str = "result") -> np.ndarray:
    x = np.ones((1, 10), np.float32) if x is None else x
    i = grpcclient.InferInput("in", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    return g.infer(name, [i]).as_numpy(output) - x


def status(srv, name: str) -> dict:
    """TFS GetModelStatus of version 1 (it carries the reason; /v1/config repeats the code, as OVMS)."""
    return make_grpc_client(srv.grpc_url).get_model_status(name)[1]


def test_pipeline_follows_its_models_through_reloads(tmp_path, ovfast_server):
    M.build_add(tmp_path / "m", version=1, addend=1.0)
    cfg = tmp_path / "config.json"
    write(cfg, {"m": "m"}, [chain("p", "m")])
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    np.testing.assert_allclose(infer(g), 1.0)
    assert states(srv)["p"] == {"1": "AVAILABLE"}

    # a new version of the model: the pipeline runs on it
    M.build_add(tmp_path / "m", version=2, addend=2.0)
    assert rest(srv, "POST", "/v1/config/reload")[0] in (200, 201)
    np.testing.assert_allclose(infer(g), 2.0)

    # the model leaves the config: the pipeline stops serving and says why
    write(cfg, {}, [chain("p", "m")])
    assert rest(srv, "POST", "/v1/config/reload")[0] in (200, 201)
    s = status(srv, "p")
    assert s["state"] == "LOADING" and s["error_code"] == 9  # FAILED_PRECONDITION
    assert s["error_message"].startswith("Pipeline definition has reference to missing model - node: n model: m")
    with pytest.raises(InferenceServerException) as e:
        infer(g)
    assert (e.value.message(), e.value.status()) == ("Pipeline is not loaded yet", "StatusCode.UNAVAILABLE")

    # ... and serves again once it is back
    write(cfg, {"m": "m"}, [chain("p", "m")])
    assert rest(srv, "POST", "/v1/config/reload")[0] in (200, 201)
    assert status(srv, "p")["state"] == "AVAILABLE"
    np.testing.assert_allclose(infer(g), 2.0)

    # the pipeline leaves the config: it ends (listed, as OVMS lists retired servables)
    write(cfg, {"m": "m"}, [])
    assert rest(srv, "POST", "/v1/config/reload")[0] in (200, 201)
    assert status(srv, "p")["state"] == "END"
    with pytest.raises(InferenceServerException) as e:
        infer(g)
    assert (e.value.message(), e.value.status()) == ("Pipeline is retired", "StatusCode.NOT_FOUND")
    body = json.dumps({"inputs": [{"name": "in", "shape": [1, 10], "datatype": "FP32", "data": [1.0] * 10}]})
    assert rest(srv, "POST", "/v2/models/p/infer", body.encode()) == (404, {"error": "Pipeline is retired"})
    np.testing.assert_allclose(g.infer("m", [_add_input()]).as_numpy(M.ADD_OUTPUT) - 1.0, 2.0)


def _add_input():
    i = grpcclient.InferInput(M.ADD_INPUT, [1, 10], "FP32")
    i.set_data_from_numpy(np.ones((1, 10), np.float32))
    return i


def test_a_request_in_flight_finishes_on_its_graph(tmp_path, ovfast_server):
    M.build_slow(tmp_path / "slow", depth=120)
    cfg = tmp_path / "config.json"
    p = chain("p", "slow")
    p["nodes"][0]["inputs"] = [{"x": {"node_name": "request", "data_item": "in"}}]
    p["nodes"][0]["outputs"] = [{"data_item": "y", "alias": "out"}]
    write(cfg, {"slow": "slow"}, [p])
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0", "--metrics_enable")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    x = np.ones((1, M.SLOW_WIDTH), np.float32)
    results: list = []

    def run():
        try:
            results.append(infer(grpcclient.InferenceServerClient(srv.grpc_url), x=x))
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: in_flight(srv, "p") > 0, "a pipeline request in flight", srv)
    write(cfg, {"slow": "slow"}, [])  # the pipeline goes while its requests run
    assert rest(srv, "POST", "/v1/config/reload")[0] in (200, 201)
    for t in threads:
        t.join(240)
    assert any(isinstance(r, np.ndarray) for r in results), results
    for r in results:
        # started on the graph: answered by it; arrived after the removal: refused as retired
        assert isinstance(r, np.ndarray) or "retired" in str(r), r
        if isinstance(r, np.ndarray):
            np.testing.assert_allclose(r, 1.0, rtol=2e-2)
    assert status(srv, "p")["state"] == "END"
    np.testing.assert_allclose(g.infer("slow", [_slow_input(x)]).as_numpy("y") - x, 1.0, rtol=2e-2)


def in_flight(srv, name: str) -> float:
    with urllib.request.urlopen(f"http://{srv.http_url}/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(f'ovms_current_requests{{name="{name}",version="1"}}'):
                return float(line.split()[-1])
    return 0.0


def _slow_input(x):
    i = grpcclient.InferInput("x", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    return i
