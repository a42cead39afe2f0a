"""The reload plan drives the registry, against a real server: a change of the version selection loads
and retires versions without reloading those that stay; a change of settings reloads every version
(switching a shape between fixed and "auto" too); and a pipeline that cannot be served says why in its
status while the rest of the file is served."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

import models as M
from lifecycle_util import rest, states, write_config


def loads(srv, version: int) -> int:
    """How many times version ``version`` of model ``m`` was compiled so far (one log line per load)."""
    return srv.stderr().count(f"Loaded model m; version: {version};")


def infer(g, rows: int) -> np.ndarray:
    x = np.ones((rows, 10), np.float32)
    inp = grpcclient.InferInput(M.ADD_INPUT, [rows, 10], "FP32")
    inp.set_data_from_numpy(x)
    return g.infer("m", [inp], model_version="1").as_numpy(M.ADD_OUTPUT) - x


def test_each_kind_of_reload_does_what_the_plan_says(tmp_path, ovfast_server):
    for v in (1, 2):
        M.build_add(tmp_path / "m", version=v, addend=float(v))
    cfg = tmp_path / "config.json"
    # allow_cache: the compile options of the model's own shape and of "auto" are then the same, so
    # only the config can tell that switching to "auto" needs a reload
    entry = {"name": "m", "base_path": "m", "allow_cache": True}
    srv = ovfast_server("--config_path", str(write_config(cfg, [entry])), "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert states(srv) == {"m": {"2": "AVAILABLE"}}
    assert (loads(srv, 1), loads(srv, 2)) == (0, 1)

    # selection only: version 1 is loaded, version 2 stays as it is
    entry["model_version_policy"] = {"all": {}}
    write_config(cfg, [entry])
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert states(srv) == {"m": {"1": "AVAILABLE", "2": "AVAILABLE"}}
    assert (loads(srv, 1), loads(srv, 2)) == (1, 1)
    assert "Model m: re-selecting versions because model_version_policy changed" in srv.stderr()

    # settings: every version is reloaded
    entry["nireq"] = 2
    write_config(cfg, [entry])
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert (loads(srv, 1), loads(srv, 2)) == (2, 2)
    assert "Model m: reloading all versions because nireq changed from 0 to 2" in srv.stderr()

    # the model's own shape -> "auto": reloaded, and the shape now follows the requests
    entry["shape"] = {"b": "auto"}
    write_config(cfg, [entry])
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert (loads(srv, 1), loads(srv, 2)) == (3, 3)
    np.testing.assert_allclose(infer(g, 3), 1.0)

    # "auto" -> fixed: reloaded with the fixed shape, whatever shape "auto" had last compiled
    entry["shape"] = {"b": "(2,10)"}
    write_config(cfg, [entry])
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert g.get_model_metadata("m", "1").inputs[0].shape == [2, 10]
    np.testing.assert_allclose(infer(g, 2), 1.0)
    assert states(srv) == {"m": {"1": "AVAILABLE", "2": "AVAILABLE"}}


def test_an_invalid_pipeline_says_why_and_the_models_are_served(tmp_path, ovfast_server):
    M.build_add(tmp_path / "m")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({
        "model_config_list": [{"config": {"name": "m", "base_path": "m"}}],
        "pipeline_config_list": [{"name": "chain", "inputs": ["b"], "nodes": [], "outputs": []}],
    }))
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")
    assert states(srv) == {"m": {"1": "AVAILABLE"}, "chain": {"1": "LOADING"}}
    assert "Validation of pipeline: chain definition failed. Pipeline definition is missing request or response " \
           "node" in srv.stderr()
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    with pytest.raises(InferenceServerException, match="not loaded yet"):
        g.infer("chain", [grpcclient.InferInput("b", [1, 10], "FP32").set_data_from_numpy(np.ones((1, 10), np.float32))])
    np.testing.assert_allclose(infer(g, 1), 1.0)
    code, _ = rest(srv, "POST", "/v1/config/reload")
    assert code in (200, 201)
    assert states(srv) == {"m": {"1": "AVAILABLE"}, "chain": {"1": "LOADING"}}
