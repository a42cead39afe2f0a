"""The model-repository extension against a real server: tritonclient's load_model / unload_model /
get_model_repository_index over gRPC and HTTP, --model_control_mode explicit with --load_model, and
the same calls on a server started without any residency option."""
from __future__ import annotations

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from density_util import build_catalog, check, index, infer, metrics, post, ready


def test_explicit_mode_serves_only_what_was_loaded(tmp_path, ovfast_server):
    cfg, seeds = build_catalog(tmp_path, ["a", "b"])
    srv = ovfast_server("--config_path", str(cfg), "--model_control_mode", "explicit", "--load_model", "a",
                        "--metrics_enable")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    h = httpclient.InferenceServerClient(srv.http_url)
    assert "model_repository" in h.get_server_metadata()["extensions"]
    assert ready(srv) == {"a"}
    by_name = {m.name: m for m in g.get_model_repository_index().models}
    assert by_name["b"].state == "UNAVAILABLE" and by_name["b"].reason == "unloaded"
    assert not g.is_model_ready("b") and not h.is_model_ready("b")
    with pytest.raises(InferenceServerException) as err:
        infer(srv, "kserve-grpc", "b")
    assert err.value.status() == "StatusCode.UNAVAILABLE" and "repository API" in err.value.message()
    check(infer(srv, "kserve-rest", "a"), seeds["a"])

    g.load_model("b")  # gRPC RepositoryModelLoad
    assert g.is_model_ready("b") and ready(srv) == {"a", "b"}
    check(infer(srv, "tfs-grpc", "b"), seeds["b"])

    h.unload_model("a")  # HTTP unload
    assert not h.is_model_ready("a") and ready(srv) == {"b"}
    assert {m["name"]: m["reason"] for m in h.get_model_repository_index()}["a"] == "unloaded"
    with pytest.raises(InferenceServerException):
        infer(srv, "kserve-grpc", "a")
    h.load_model("a")
    check(infer(srv, "kserve-grpc", "a"), seeds["a"])
    g.unload_model("b")
    assert ready(srv) == {"a"}
    assert metrics(srv)["ovfast_model_unloads{reason=explicit}"] == 2


def test_repository_calls_without_residency_options(tmp_path, ovfast_server):
    cfg, seeds = build_catalog(tmp_path, ["m", "n"])
    srv = ovfast_server("--config_path", str(cfg))
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    h = httpclient.InferenceServerClient(srv.http_url)
    assert ready(srv) == {"m", "n"}  # today's behaviour: everything loaded at start
    g.unload_model("m")
    assert not g.is_model_ready("m") and ready(srv) == {"n"}
    with pytest.raises(InferenceServerException) as err:
        infer(srv, "kserve-rest", "m")
    assert "not loaded" in err.value.message()
    h.load_model("m")
    check(infer(srv, "kserve-grpc", "m"), seeds["m"])
    assert srv.log().count("Model m version 1: loading from") == 2


def test_repository_errors(tmp_path, ovfast_server):
    cfg, _ = build_catalog(tmp_path, ["m"])
    srv = ovfast_server("--config_path", str(cfg), "--model_control_mode", "explicit")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    with pytest.raises(InferenceServerException) as err:
        g.load_model("nope")
    assert err.value.status() == "StatusCode.NOT_FOUND"
    assert post(srv, "/v2/repository/models/nope/unload")[0] == 404
    code, doc = post(srv, "/v2/repository/models/m/load", {"parameters": {"config": "{}"}})
    assert code == 501 and "config.json" in doc["error"]
    code, doc = post(srv, "/v2/repository/models/m/load", {"parameters": []})
    assert code == 400
    assert index(srv)["m"]["state"] == "UNAVAILABLE"
    assert post(srv, "/v2/repository/models/m/load")[0] == 200
    assert index(srv)["m"]["state"] == "READY"
