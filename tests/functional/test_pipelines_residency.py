"""Pipelines under --memory_budget (residency), against a real server and real clients: a pipeline whose
model is not loaded (parked at start, or unloaded by the budget to make room for another model) stays
AVAILABLE, and its next request loads the model, as a direct request would, instead of failing
validation."""
from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from ovmsclient import make_grpc_client, make_http_client

import density_models as D
from density_util import X, build_catalog, check, infer, ready
from test_density import BIG, loads_in_log, measured_size

pytestmark = pytest.mark.timeout(300)


def pipeline(name: str, model: str) -> dict:
    """request.in -> model (x -> y) -> response.out"""
    return {"name": name, "inputs": ["in"], "nodes": [
        {"name": "node", "type": "DL model", "model_name": model,
         "inputs": [{"x": {"node_name": "request", "data_item": "in"}}],
         "outputs": [{"data_item": "y", "alias": "y"}]}],
        "outputs": [{"out": {"node_name": "node", "data_item": "y"}}]}


def infer_pipeline(srv, api: str, name: str) -> np.ndarray:
    if api.startswith("kserve"):
        mod = grpcclient if api == "kserve-grpc" else httpclient
        client = mod.InferenceServerClient(srv.grpc_url if api == "kserve-grpc" else srv.http_url)
        inp = mod.InferInput("in", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        return client.infer(name, [inp]).as_numpy("out")
    client = make_grpc_client(srv.grpc_url) if api == "tfs-grpc" else make_http_client(srv.http_url)
    return np.asarray(client.predict({"in": X}, name))


def loaded(srv) -> set[str]:
    """The models loaded now (the repository index lists the pipeline too)."""
    return ready(srv) - {"p"}


def pipeline_state(srv, name: str) -> str:
    return make_grpc_client(srv.grpc_url).get_model_status(name)[1]["state"]


def test_a_pipeline_loads_its_parked_model_on_request(tmp_path, ovfast_server):
    """Under a budget nothing loads at start: the pipeline is AVAILABLE with its signature, and its first
    request (over any API) loads its model once."""
    cfg, seeds = build_catalog(tmp_path, ["a", "b"], pipeline_config_list=[pipeline("p", "a")])
    srv = ovfast_server("--config_path", str(cfg), "--memory_budget", "1GiB")
    assert loaded(srv) == set()
    assert pipeline_state(srv, "p") == "AVAILABLE"
    assert grpcclient.InferenceServerClient(srv.grpc_url).is_model_ready("p")  # a request is all it takes
    md = httpclient.InferenceServerClient(srv.http_url).get_model_metadata("p")
    assert md["inputs"] == [{"name": "in", "datatype": "FP32", "shape": [1, D.IN]}]
    assert loaded(srv) == set()  # metadata loads nothing
    for api in ("kserve-grpc", "kserve-rest", "tfs-grpc", "tfs-rest"):
        check(infer_pipeline(srv, api, "p"), seeds["a"])
    assert loaded(srv) == {"a"}
    assert loads_in_log(srv, "a") == 1


def test_a_model_unloaded_by_the_budget_is_loaded_again_by_its_pipeline(tmp_path, ovfast_server):
    size = measured_size(ovfast_server, tmp_path)
    budget = int(size * 1.5)  # one BIG model fits, two do not
    cfg, seeds = build_catalog(tmp_path / "pipe", ["a", "b"], BIG, pipeline_config_list=[pipeline("p", "a")])
    srv = ovfast_server("--config_path", str(cfg), "--memory_budget", str(budget))
    check(infer_pipeline(srv, "kserve-grpc", "p"), seeds["a"], BIG)
    assert loaded(srv) == {"a"}
    # a direct request for b makes room by unloading a, the least recently used (and idle) model
    check(infer(srv, "kserve-grpc", "b"), seeds["b"], BIG)
    assert loaded(srv) == {"b"}
    assert pipeline_state(srv, "p") == "AVAILABLE"
    # the pipeline's request loads a again (making room by unloading b), then runs on it
    check(infer_pipeline(srv, "kserve-rest", "p"), seeds["a"], BIG)
    assert loaded(srv) == {"a"}
    check(infer_pipeline(srv, "kserve-grpc", "p"), seeds["a"], BIG)  # served natively again
    assert loads_in_log(srv, "a") == 2 and loads_in_log(srv, "b") == 1
