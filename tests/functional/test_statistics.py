"""Triton statistics are the native per-version counters, whatever API a request came through:
successes, failures, queue and compute time, inference/execution counts and the last inference time
add up over KServe gRPC, KServe REST, TFS gRPC and TFS REST alike, and both statistics endpoints agree."""
from __future__ import annotations

import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

import models as M
from four_apis import APIS, infer
from lifecycle_util import rest

PER_API = 3


def _grpc_stats(srv) -> dict:
    (s,) = grpcclient.InferenceServerClient(srv.grpc_url).get_inference_statistics("add", as_json=True)["model_stats"]
    return s


def test_every_api_counts_into_the_same_native_statistics(tmp_path, ovfast_server):
    base = M.build_add(tmp_path / "add")
    srv = ovfast_server("--model_name", "add", "--model_path", str(base))
    t0_ms = int(time.time() * 1000)
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    for api in APIS:
        for _ in range(PER_API):
            np.testing.assert_allclose(infer(srv, api, "add", x), x + 1.0)
    bad = np.zeros((1, 7), np.float32)  # wrong shape: refused by native validation on every API
    for api in APIS:
        with pytest.raises(Exception):
            infer(srv, api, "add", bad)

    s = _grpc_stats(srv)
    n = PER_API * len(APIS)
    inf = s["inference_stats"]
    assert int(inf["success"]["count"]) == n
    assert int(inf["fail"]["count"]) == len(APIS)
    assert int(s["inference_count"]) == n and int(s["execution_count"]) == n
    assert int(inf["queue"]["count"]) == n and int(inf["compute_infer"]["count"]) == n
    assert int(inf["compute_infer"]["ns"]) > 0 and int(inf["success"]["ns"]) >= int(inf["compute_infer"]["ns"])
    assert int(s["last_inference"]) >= t0_ms
    # REST reads the same counters
    code, body = rest(srv, "GET", "/v2/models/add/stats")
    assert code == 200
    (r,) = body["model_stats"]
    assert r["inference_stats"]["success"]["count"] == n and r["inference_stats"]["fail"]["count"] == len(APIS)
    assert (r["inference_count"], r["execution_count"]) == (n, n)
