"""Residency over object storage: under --memory_budget, versions in S3 (a moto server on loopback,
credentials checked) are neither downloaded nor loaded at start; model metadata downloads a version's
files without loading it; the first inference request downloads and loads it; an unloaded version
loads again from the cache."""
from __future__ import annotations

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

import models as M
from density_util import index, metrics, ready
from lifecycle_util import write_config
from storage_util import ADD_IN, infer_add
from test_storage_s3 import _cached_versions, no_aws_env, s3  # noqa: F401 - fixtures

LAZY_REASON = "not loaded yet"


def test_remote_versions_load_on_their_first_request(s3, no_aws_env, ovfast_server, tmp_path):  # noqa: F811
    s3.client().create_bucket(Bucket="lazy")
    for name, addend in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        s3.upload(M.build_add(tmp_path / name, version=1, addend=addend), "lazy", f"repo/{name}")
    for var, value in (("AWS_ACCESS_KEY_ID", s3.key), ("AWS_SECRET_ACCESS_KEY", s3.secret),
                       ("AWS_REGION", "us-east-1"), ("S3_ENDPOINT", s3.url)):
        no_aws_env.setenv(var, value)
    cfg = write_config(tmp_path / "config.json", [
        {"name": n, "base_path": f"s3://lazy/repo/{n}"} for n in ("a", "b", "c")])
    cache = tmp_path / "cache"
    srv = ovfast_server("--config_path", str(cfg), "--memory_budget", "1GiB", "--metrics_enable",
                        "--storage_cache_dir", str(cache))
    idx = index(srv)
    assert {m["state"] for m in idx.values()} == {"UNAVAILABLE"}, idx
    assert all(LAZY_REASON in m["reason"] for m in idx.values()), idx
    assert _cached_versions(cache) == set()  # nothing downloaded at start either

    # metadata of a version nobody asked for: its files are fetched to read the signature, it is not loaded
    h = httpclient.InferenceServerClient(srv.http_url)
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert h.get_model_metadata("b")["inputs"] == [{"name": "b", "datatype": "FP32", "shape": [1, 10]}]
    assert g.get_model_metadata("c").outputs[0].name == "a"
    assert _cached_versions(cache) == {"1"} and len(list(cache.glob("*/1"))) == 2
    assert ready(srv) == set() and metrics(srv)["ovfast_model_loads"] == 0

    # the first request downloads and loads its version; the others stay as they are
    np.testing.assert_array_equal(infer_add(srv, "a"), ADD_IN + 1)
    assert ready(srv) == {"a"} and index(srv)["a"]["size_bytes"] > 0
    assert len(list(cache.glob("*/1"))) == 3
    np.testing.assert_array_equal(infer_add(srv, "b"), ADD_IN + 2)
    assert ready(srv) == {"a", "b"}
    assert metrics(srv)["ovfast_model_loads"] == 2

    # unloaded explicitly, then loaded again (from the cache: the bucket still has it)
    h.unload_model("a")
    assert ready(srv) == {"b"}
    h.load_model("a")
    np.testing.assert_array_equal(infer_add(srv, "a"), ADD_IN + 1)
    assert ready(srv) == {"a", "b"}
    h.close()
    g.close()
