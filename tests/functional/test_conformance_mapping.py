"""mapping_config.json (OVMS): a version folder's file renames the model's inputs and outputs, and every API
(KServe gRPC + REST with tritonclient, TFS gRPC + REST with ovmsclient and plain HTTP) shows only the public
names: in metadata, in requests, in responses and in errors. A bad file fails the version with a clear message.

The model is ``two_io`` (inputs x, y -> outputs sum = x+y, prod = x*y) with
``{"inputs": {"x": "first", "y": "second"}, "outputs": {"sum": "total"}}``: ``prod`` keeps its name.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from ovmsclient import make_grpc_client, make_http_client
from ovmsclient.tfs_compat.base.errors import InvalidInputError
from tritonclient.utils import InferenceServerException

import models as M
from kserve_util import rest, triton_clients

MAPPING = {"inputs": {"x": "first", "y": "second"}, "outputs": {"sum": "total"}}
INPUTS, OUTPUTS = ["first", "second"], ["total", "prod"]
XV = np.array([[1, 2, 3, 4]], np.float32)
YV = np.array([[2, 2, 2, 2]], np.float32)




@pytest.fixture(scope="module")
def srv(ovfast_server_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("mapping")
    mapped = M.build_two_io(root / "mapped")
    (mapped / "1" / "mapping_config.json").write_text(json.dumps(MAPPING))
    entries = [{"name": "mapped", "base_path": str(mapped)}]
    for name, text in (("bad_json", "{"), ("bad_shape", json.dumps({"inputs": {"x": 1}})),
                       ("bad_key", json.dumps({"inputs": {}, "comment": "x"})),
                       ("bad_tensor", json.dumps({"inputs": {"nope": "first"}}))):
        base = root / name
        shutil.copytree(mapped, base)
        (base / "1" / "mapping_config.json").write_text(text)
        entries.append({"name": name, "base_path": str(base)})
    # shapes and layouts name the public names (OVMS)
    shaped = root / "shaped"
    shutil.copytree(mapped, shaped)
    entries.append({"name": "shaped", "base_path": str(shaped), "shape": {"first": "(-1,4)", "second": "(-1,4)"}})
    cfg = root / "config.json"
    cfg.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    return ovfast_server_session("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")


@pytest.fixture(scope="module")
def clients(srv):
    with triton_clients(srv) as both:
        yield both


# -- metadata ---------------------------------------------------------------------------------------

def test_kserve_metadata_shows_public_names(clients):
    gclient, hclient = clients
    md = gclient.get_model_metadata("mapped")
    assert [t.name for t in md.inputs] == INPUTS and [t.name for t in md.outputs] == OUTPUTS
    md = hclient.get_model_metadata("mapped")
    assert [t["name"] for t in md["inputs"]] == INPUTS and [t["name"] for t in md["outputs"]] == OUTPUTS
    cfg = gclient.get_model_config("mapped").config
    assert [t.name for t in cfg.input] == INPUTS and [t.name for t in cfg.output] == OUTPUTS


@pytest.mark.parametrize("make", [make_grpc_client, make_http_client], ids=["tfs_grpc", "tfs_rest"])
def test_tfs_metadata_shows_public_names(srv, make):
    url = srv.grpc_url if make is make_grpc_client else srv.http_url
    md = make(url).get_model_metadata("mapped")
    assert sorted(md["inputs"]) == sorted(INPUTS) and sorted(md["outputs"]) == sorted(OUTPUTS)


# -- requests and responses --------------------------------------------------------------------------

@pytest.mark.parametrize("client_mod", [grpcclient, httpclient], ids=["kserve_grpc", "kserve_rest"])
def test_kserve_infer_with_public_names(clients, client_mod):
    gclient, hclient = clients
    client = gclient if client_mod is grpcclient else hclient
    inputs = []
    for name, value in (("first", XV), ("second", YV)):
        inp = client_mod.InferInput(name, list(value.shape), "FP32")
        inp.set_data_from_numpy(value)
        inputs.append(inp)
    res = client.infer("mapped", inputs)
    names = [o.name for o in res.get_response().outputs] if client_mod is grpcclient else \
        [o["name"] for o in res.get_response()["outputs"]]
    assert names == OUTPUTS
    np.testing.assert_array_equal(res.as_numpy("total"), XV + YV)
    np.testing.assert_array_equal(res.as_numpy("prod"), XV * YV)
    res = client.infer("mapped", inputs, outputs=[client_mod.InferRequestedOutput("total")])
    np.testing.assert_array_equal(res.as_numpy("total"), XV + YV)


@pytest.mark.parametrize("make", [make_grpc_client, make_http_client], ids=["tfs_grpc", "tfs_rest"])
def test_tfs_predict_with_public_names(srv, make):
    url = srv.grpc_url if make is make_grpc_client else srv.http_url
    out = make(url).predict({"first": XV, "second": YV}, "mapped")
    assert sorted(out) == sorted(OUTPUTS)
    np.testing.assert_array_equal(out["total"], XV + YV)


def test_tfs_rest_json_uses_public_names(srv):
    body = {"inputs": {"first": XV.tolist(), "second": YV.tolist()}}
    r = rest(srv.http_url, "POST", "/v1/models/mapped:predict", body)
    assert r.status == 200 and r.json() == {"outputs": {"total": (XV + YV).tolist(), "prod": (XV * YV).tolist()}}


def test_configured_shape_names_public_inputs(clients):
    """Shapes (and layouts) in config.json name the public names: rows of -1 were applied to first/second."""
    gclient, _ = clients
    md = gclient.get_model_metadata("shaped")
    assert {t.name: list(t.shape) for t in md.inputs} == {"first": [-1, 4], "second": [-1, 4]}
    rows = np.ones((3, 4), np.float32)
    inputs = []
    for name in INPUTS:
        inp = grpcclient.InferInput(name, [3, 4], "FP32")
        inp.set_data_from_numpy(rows)
        inputs.append(inp)
    np.testing.assert_array_equal(gclient.infer("shaped", inputs).as_numpy("total"), rows * 2)


# -- errors name the public names --------------------------------------------------------------------

@pytest.mark.parametrize("client_mod", [grpcclient, httpclient], ids=["kserve_grpc", "kserve_rest"])
def test_kserve_errors_name_public_inputs(clients, client_mod):
    gclient, hclient = clients
    client = gclient if client_mod is grpcclient else hclient
    inputs = []
    for name, value in (("first", XV), ("y", YV)):  # y is the model's own name, not the public one
        inp = client_mod.InferInput(name, list(value.shape), "FP32")
        inp.set_data_from_numpy(value)
        inputs.append(inp)
    with pytest.raises(InferenceServerException) as e:
        client.infer("mapped", inputs)
    assert e.value.status() in ("StatusCode.INVALID_ARGUMENT", "400")
    assert "Missing input with specific name - Required input: second" in e.value.message()


def test_tfs_errors_name_public_inputs(srv):
    with pytest.raises(InvalidInputError, match="Required input: second"):
        make_grpc_client(srv.grpc_url).predict({"first": XV, "y": YV}, "mapped")
    r = rest(srv.http_url, "POST", "/v1/models/mapped:predict", {"inputs": {"first": XV.tolist(), "y": YV.tolist()}})
    assert r.status == 400 and "Required input: second" in r.error()


# -- a bad mapping_config.json ----------------------------------------------------------------------

@pytest.mark.parametrize("name, why", [
    ("bad_json", "not valid JSON"),
    ("bad_shape", '"inputs" must map tensor names to non-empty strings'),
    ("bad_key", 'only "inputs" and "outputs"'),
    ("bad_tensor", "maps input 'nope' which the model does not have"),
])
def test_bad_mapping_file_fails_the_version_clearly(srv, clients, name, why):
    _, hclient = clients
    assert not hclient.is_model_ready(name)
    r = rest(srv.http_url, "GET", f"/v1/models/{name}")
    assert r.status == 200
    status = r.json()["model_version_status"][0]
    assert status["state"] == "LOADING" and status["status"]["error_code"] == "UNKNOWN"
    reasons = [m["reason"] for m in hclient.get_model_repository_index() if m["name"] == name]
    assert len(reasons) == 1 and why in reasons[0] and "mapping_config.json" in reasons[0], reasons
    lines = [ln for ln in srv.log().splitlines() if f"model {name} " in ln.lower() and "mapping_config.json" in ln]
    assert lines and why in lines[0]
