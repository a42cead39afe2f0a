"""SIGTERM with 2,000 requests in flight on the native gRPC port: the server stops accepting, answers
every request it already received — the ones queued for a busy infer request and the ones waiting in
a batch queue (flushed at once, not after their hour-long delay) — and exits 0."""
from __future__ import annotations

import json
import time

import grpc
import numpy as np
from tritonclient.grpc import service_pb2_grpc

import models as M
from kserve_util import grpc_input, make_infer_request, output_array, rest

WIDTH = 4
QUEUED = 500    # for the slow model's one infer request
BATCHED = 1500  # waiting for a batch that fills only at 4,096 rows or after an hour


def current_requests(http_url: str) -> float:
    text = rest(http_url, "GET", "/metrics").body.decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("ovms_current_requests{"))


def test_sigterm_answers_every_request_in_flight_then_exits_0(ovfast_server, tmp_path):
    M.build_slow(tmp_path / "slow", depth=1)
    M.build_rows(tmp_path / "rows", width=WIDTH)
    cfg = {"model_config_list": [
        {"config": {"name": "slow", "base_path": str(tmp_path / "slow"), "nireq": 1}},
        {"config": {"name": "rows", "base_path": str(tmp_path / "rows"),
                    "dynamic_batching": {"max_batch_size": 4096, "max_queue_delay_us": 3_600_000_000}}},
    ]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    srv = ovfast_server("--config_path", str(tmp_path / "config.json"), "--metrics_enable")
    channels = [grpc.insecure_channel(srv.grpc_url) for _ in range(4)]
    stubs = [service_pb2_grpc.GRPCInferenceServiceStub(ch) for ch in channels]
    for ch in channels:
        grpc.channel_ready_future(ch).result(timeout=30)
    slow_x = np.zeros((1, M.SLOW_WIDTH), np.float32)
    calls = []
    for i in range(QUEUED):
        req = make_infer_request("slow", [grpc_input("x", "FP32", [1, M.SLOW_WIDTH], slow_x)])
        calls.append(("slow", None, stubs[i % 4].ModelInfer.future(req, timeout=300)))
    for i in range(BATCHED):
        x = np.full((1, WIDTH), i, np.float32)
        req = make_infer_request("rows", [grpc_input("x", "FP32", [1, WIDTH], x)])
        calls.append(("rows", x, stubs[i % 4].ModelInfer.future(req, timeout=300)))
    # every request has reached the server: answered already, or counted as in progress
    for _ in range(1200):
        done = sum(1 for _, _, f in calls if f.done())
        if done + current_requests(srv.http_url) >= len(calls):
            break
        time.sleep(0.05)
    assert done < len(calls), "the batch queue cannot have been answered before SIGTERM"
    srv.terminate()
    failures = []
    for name, x, f in calls:
        try:
            resp = f.result()
            if name == "rows":
                np.testing.assert_array_equal(output_array(resp, "y"), 2 * x + 1)
        except grpc.RpcError as e:
            failures.append((name, e.code(), e.details()))
    rc = srv.wait(120)
    for ch in channels:
        ch.close()
    assert not failures, f"{len(failures)} of {len(calls)} failed, e.g. {failures[:3]}\n{srv.log()[-3000:]}"
    assert rc == 0, srv.log()
