"""Dynamic batching, control plane: CLI flags and config.json reach the native batcher, the Triton model
configuration and /metrics show the settings, and settings that cannot batch are refused clearly.

(The batcher's behaviour under load is tested elsewhere; here a few requests are enough.)
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import free_ports, ovfast_cmd
from kserve_util import rest
from prometheus_client.parser import text_string_to_metric_families

import models as M

pytestmark = pytest.mark.timeout(180)

EX_USAGE = 64
REQUESTS = 12


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("batching_models")
    return {"dynamic": M.build_dynamic(root / "dynamic"), "static": M.build_add(root / "static")}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    g, r = free_ports(2)
    addr = ["--port", str(g), "--rest_port", str(r), "--grpc_bind_address", "127.0.0.1",
            "--rest_bind_address", "127.0.0.1"]
    try:
        return subprocess.run(ovfast_cmd(*args, *addr), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:  # it started serving instead of refusing the arguments
        raise AssertionError(f"ovfast {args} did not exit: {e.stderr!r}") from None


USAGE_CASES = {
    "delay_without_max": (["--max_queue_delay_us", "100"], "--max_queue_delay_us requires --max_batch_size"),
    "preferred_without_max": (["--preferred_batch_sizes", "4"], "--preferred_batch_sizes requires --max_batch_size"),
    "zero_max": (["--max_batch_size", "0"], "max_batch_size is required and must be an integer in 1..1048576, got 0"),
    "not_a_number": (["--max_batch_size", "eight"], "max_batch_size"),
    "negative_delay": (["--max_batch_size", "4", "--max_queue_delay_us", "-5"], "max_queue_delay_us"),
    "bad_preferred_list": (["--max_batch_size", "8", "--preferred_batch_sizes", "4,x"],
                           "--preferred_batch_sizes must be comma-separated integers"),
    "preferred_above_max": (["--max_batch_size", "4", "--preferred_batch_sizes", "2,8"],
                            r"[8] not in 1..max_batch_size (4)"),
    "fixed_batch_size": (["--max_batch_size", "4", "--batch_size", "1"], 'batch_size "1" fixes the batch dimension'),
    "auto_shape": (["--max_batch_size", "4", "--shape", "auto"], 'cannot be combined with shape "auto"'),
}


@pytest.mark.parametrize("case", list(USAGE_CASES))
def test_usage_errors(case, models):
    flags, mention = USAGE_CASES[case]
    res = run_cli("--model_name", "m", "--model_path", str(models["dynamic"]), *flags)
    assert res.returncode == EX_USAGE, (res.returncode, res.stderr)
    assert mention in res.stderr, res.stderr


def test_flags_need_single_model_mode(models, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_config_list": [{"config": {"name": "m", "base_path": str(models["dynamic"])}}]}))
    res = run_cli("--config_path", str(cfg), "--max_batch_size", "4")
    assert res.returncode == EX_USAGE and "exclusive with the config file" in res.stderr, res.stderr
    res = run_cli("--max_batch_size", "4")  # the demo model: no model flags allowed
    assert res.returncode == EX_USAGE and "--max_batch_size requires --model_name" in res.stderr, res.stderr


def scrape(srv) -> dict[str, float]:
    r = rest(srv.http_url, "GET", "/metrics")
    assert r.status == 200
    out = {}
    for fam in text_string_to_metric_families(r.body.decode()):
        for s in fam.samples:
            if s.labels.get("name") == "m" and s.labels.get("version") == "1" and "le" not in s.labels:
                out[s.name] = s.value
            elif s.labels.get("le") == "+Inf":
                out[s.name + "+Inf"] = s.value
    return out


def infer_rows(srv, n: int) -> None:
    """``n`` one-row requests in flight together, each with its own values; checks every answer (y = 2x)."""
    client = httpclient.InferenceServerClient(srv.http_url, concurrency=n)
    try:
        pending = []
        for i in range(n):
            x = np.arange(3, dtype=np.float32).reshape(1, 3) + 10 * i
            inp = httpclient.InferInput("x", [1, 3], "FP32")
            inp.set_data_from_numpy(x)
            pending.append((x, client.async_infer("m", [inp])))
        for x, req in pending:
            np.testing.assert_array_equal(req.get_result().as_numpy("y"), 2 * x)
    finally:
        client.close()


def test_single_model_flags_reach_the_batcher(models, ovfast_server):
    srv = ovfast_server("--model_name", "m", "--model_path", str(models["dynamic"]), "--max_batch_size", "4",
                        "--max_queue_delay_us", "500", "--preferred_batch_sizes", "4,2", "--metrics_enable")
    assert ("No of InferRequests: " in srv.stderr() and
            "dynamic batching: max_batch_size 4, max_queue_delay_us 500, preferred_batch_sizes 2,4" in srv.stderr())
    before = scrape(srv)
    assert before["ovfast_batch_size_count"] == 0 and before["ovfast_batch_queue_delay_us_count"] == 0
    infer_rows(srv, REQUESTS)
    after = scrape(srv)
    runs = after["ovfast_batch_size_count"]
    assert 1 <= runs <= REQUESTS
    assert after["ovfast_batch_size_bucket+Inf"] == runs
    assert after["ovfast_batch_size_sum"] == REQUESTS  # every request was one row
    assert after["ovfast_batch_queue_delay_us_count"] == REQUESTS

    # Triton's model configuration: the batch dimension stays in the dims (max_batch_size 0)
    r = rest(srv.http_url, "GET", "/v2/models/m/config")
    doc = r.json()
    assert doc["max_batch_size"] == 0 and doc["input"][0]["dims"] == [-1, -1]
    assert doc["dynamic_batching"] == {"preferred_batch_size": [2, 4], "max_queue_delay_microseconds": 500}
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        cfg = g.get_model_config("m").config
    finally:
        g.close()
    assert cfg.max_batch_size == 0 and list(cfg.input[0].dims) == [-1, -1]
    assert cfg.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500


def test_static_batch_model_is_refused_at_load(models, ovfast_server):
    srv = ovfast_server("--model_name", "m", "--model_path", str(models["static"]), "--max_batch_size", "4")
    assert rest(srv.http_url, "GET", "/v2/models/m/ready").status != 200
    status = rest(srv.http_url, "GET", "/v1/models/m").json()["model_version_status"][0]
    assert status["state"] != "AVAILABLE"
    assert "dynamic_batching needs" in srv.stderr(), srv.stderr()
    # without batching the same model serves
    plain = ovfast_server("--model_name", "m", "--model_path", str(models["static"]))
    assert rest(plain.http_url, "GET", "/v2/models/m/ready").status == 200


def test_config_change_of_batching_reloads(models, ovfast_server, tmp_path):
    def write(batching: dict | None) -> None:
        c = {"name": "m", "base_path": str(models["dynamic"])}
        if batching is not None:
            c["dynamic_batching"] = batching
        cfg.write_text(json.dumps({"model_config_list": [{"config": c}]}))

    def delay() -> int | None:
        doc = rest(srv.http_url, "GET", "/v2/models/m/config").json()
        return doc["dynamic_batching"]["max_queue_delay_microseconds"] if "dynamic_batching" in doc else None

    cfg = tmp_path / "config.json"
    write({"max_batch_size": 4, "max_queue_delay_us": 100})
    srv = ovfast_server("--config_path", str(cfg), "--file_system_poll_wait_seconds", "0")
    assert delay() == 100
    write({"max_batch_size": 4, "max_queue_delay_us": 300})
    assert rest(srv.http_url, "POST", "/v1/config/reload").status == 201
    assert delay() == 300
    assert "dynamic_batching changed from {max_batch_size: 4, max_queue_delay_us: 100" in srv.stderr()
    write(None)
    assert rest(srv.http_url, "POST", "/v1/config/reload").status == 201
    assert delay() is None
    infer_rows(srv, 2)
    # an entry that cannot batch is skipped; the running version keeps serving
    write({"max_batch_size": 4, "max_delay": 1})
    assert rest(srv.http_url, "POST", "/v1/config/reload").status != 201
    assert "unknown key(s) ['max_delay']" in srv.stderr()
    infer_rows(srv, 2)
