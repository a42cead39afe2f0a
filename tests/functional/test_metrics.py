"""Prometheus metrics (OVMS families on GET /metrics) and logging, against a real server.

Traffic goes through tritonclient (KServe gRPC and REST), ovmsclient (TF-Serving gRPC and REST)
and plain HTTP; the scrape is parsed with ``prometheus_client.parser``. Checks are made on
differences between two scrapes so that they hold whatever else the module sent before.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import OvfastServer, _server_args, free_ports, ovfast_cmd
from kserve_util import rest
from ovmsclient import make_grpc_client, make_http_client
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

import models as M

pytestmark = pytest.mark.timeout(240)

EX_USAGE = 64
OVMS_BUCKETS = [int(10 * 1.8**i) for i in range(33)]
ROUTES = [
    ("TensorFlowServing", itf, m) for itf in ("gRPC", "REST") for m in ("Predict", "GetModelMetadata", "GetModelStatus")
] + [("KServe", itf, m) for itf in ("gRPC", "REST") for m in ("ModelInfer", "ModelMetadata", "ModelReady")]
UNVERSIONED = {"GetModelStatus", "ModelReady"}


# -- helpers ---------------------------------------------------------------------------------------------


class Scrape:
    """One parsed /metrics response: ``families[name] -> {frozenset(labels): value}`` per sample name."""

    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[str, dict[frozenset, float]] = {}
        for fam in text_string_to_metric_families(text):
            self.types[fam.name] = fam.type
            for s in fam.samples:
                self.samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value

    def get(self, sample: str, **labels: str) -> float:
        values = self.samples.get(sample, {})
        key = frozenset(labels.items())
        assert key in values, f"no sample {sample}{labels}; have {sorted(map(sorted, values))[:6]}"
        return values[key]

    def requests(self, kind: str, api: str, interface: str, method: str, name: str, version: str | None):
        labels = {"api": api, "interface": interface, "method": method, "name": name}
        if version is not None:
            labels["version"] = version
        # the parser reports OVMS counters (no _total on the wire) under name + "_total"
        return self.get(f"ovms_requests_{kind}_total", **labels)


def scrape(srv: OvfastServer) -> Scrape:
    r = rest(srv.http_url, "GET", "/metrics")
    assert r.status == 200, r.body[:300]
    assert r.headers["content-type"].startswith("text/plain")
    return Scrape(r.body.decode())


def start(workdir: Path, args: list[str], log_level: str | None = "DEBUG") -> OvfastServer:
    """A server with exactly ``args`` (plus ports/bind, and --log_level unless None)."""
    workdir.mkdir(parents=True, exist_ok=True)
    g, r = free_ports(2)
    srv = OvfastServer(_server_args(g, r, args, log_level=log_level), workdir, g, r)
    try:
        srv.wait_ready()
    except Exception:
        srv.stop(5)
        raise
    return srv


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(ovfast_cmd(*args), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def add_input_grpc(shape=(1, 10)):
    i = grpcclient.InferInput(M.ADD_INPUT, list(shape), "FP32")
    i.set_data_from_numpy(np.ones(shape, np.float32))
    return [i]


def add_input_http(shape=(1, 10)):
    i = httpclient.InferInput(M.ADD_INPUT, list(shape), "FP32")
    i.set_data_from_numpy(np.ones(shape, np.float32), binary_data=False)
    return [i]


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("metrics_models")
    M.build_add(root / "add", version=1, addend=1.0)
    M.build_add(root / "add", version=2, addend=2.0)
    return root


@pytest.fixture(scope="module")
def metrics_server(repo, tmp_path_factory):
    """Metrics enabled through config.json `monitoring` (default family set); add v1 + v2 served."""
    wd = tmp_path_factory.mktemp("metrics_cfg")
    cfg = {
        "model_config_list": [{"config": {
            "name": "add", "base_path": str(repo / "add"), "nireq": 2,
            "model_version_policy": {"all": {}}}}],
        "monitoring": {"metrics": {"enable": True}},
    }
    (wd / "config.json").write_text(json.dumps(cfg))
    srv = start(wd, ["--config_path", str(wd / "config.json"), "--file_system_poll_wait_seconds", "0"])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clients(metrics_server):
    g = grpcclient.InferenceServerClient(metrics_server.grpc_url)
    h = httpclient.InferenceServerClient(metrics_server.http_url)
    yield g, h
    g.close()
    h.close()


# -- the families move as they should ----------------------------------------------------------------------


def test_series_precreated_at_load(metrics_server):
    s = scrape(metrics_server)
    for version in ("1", "2"):
        for api, itf, method in ROUTES:
            v = None if method in UNVERSIONED else version
            for kind in ("success", "fail"):
                s.requests(kind, api, itf, method, "add", v)
        for itf in ("gRPC", "REST"):
            s.get("ovms_request_time_us_count", interface=itf, name="add", version=version)
        for fam in ("ovms_inference_time_us", "ovms_wait_for_infer_req_time_us"):
            s.get(f"{fam}_count", name="add", version=version)
        s.get("ovms_streams", name="add", version=version)
        s.get("ovms_current_requests", name="add", version=version)
    # GetModelStatus / ModelReady series carry no version label (OVMS)
    assert not any(("version", "1") in k for k in s.samples["ovms_requests_success_total"]
                   if ("method", "ModelReady") in k)
    assert s.types["ovms_requests_success"] == "counter"
    assert s.types["ovms_request_time_us"] == "histogram"
    assert s.types["ovms_streams"] == "gauge"
    # counters keep OVMS's names on the wire
    assert '\novms_requests_success{api="KServe",interface="gRPC",method="ModelInfer",name="add",version="2"} ' \
        in s.text


def test_default_family_set(metrics_server):
    s = scrape(metrics_server)
    expected = {
        "ovms_requests_success", "ovms_requests_fail", "ovms_request_time_us", "ovms_inference_time_us",
        "ovms_wait_for_infer_req_time_us", "ovms_streams", "ovms_current_requests", "ovfast_models_loaded",
        "ovfast_model_load_time_seconds", "ovfast_batch_size", "ovfast_batch_queue_delay_us",
        "ovfast_requests_rejected", "ovfast_request_memory_bytes", "ovfast_model_memory_bytes",
        "ovfast_sequences", "ovfast_sequence_state_bytes",
    }
    assert set(s.types) == expected  # the infer_req gauges are opt-in, as in OVMS
    # the dynamic-batching families have series only for models served with a batcher
    assert not any(n.startswith("ovfast_batch") for n in s.samples)
    assert not any(n.startswith("ovfast_sequence") for n in s.samples)  # and the sequence ones for stateful models


def test_histogram_buckets_are_ovms(metrics_server):
    s = scrape(metrics_server)
    les = [dict(k)["le"] for k in s.samples["ovms_inference_time_us_bucket"] if ("version", "2") in k]
    finite = sorted(float(x) for x in les if x != "+Inf")
    assert finite == [float(b) for b in OVMS_BUCKETS]
    assert "+Inf" in les
    assert 'le="10"' in s.text and 'le="1474755971"' in s.text


def test_kserve_traffic_moves_counters_and_histograms(metrics_server, clients):
    g, h = clients
    before = scrape(metrics_server)
    n_grpc, n_rest = 5, 4
    for _ in range(n_grpc):
        g.infer("add", add_input_grpc())
    for _ in range(n_rest):
        h.infer("add", add_input_http())
    # one routed to version 1 explicitly on each interface
    g.infer("add", add_input_grpc(), model_version="1")
    h.infer("add", add_input_http(), model_version="1")
    # failures after the model is resolved: wrong shape (both), an unparsable REST body
    with pytest.raises(InferenceServerException):
        g.infer("add", add_input_grpc((1, 11)))
    with pytest.raises(InferenceServerException):
        h.infer("add", add_input_http((1, 11)))
    bad = rest(metrics_server.http_url, "POST", "/v2/models/add/infer", b"{not json")
    assert bad.status == 400
    # failures before a model is resolved are not counted (OVMS)
    with pytest.raises(InferenceServerException):
        g.infer("no_such_model", add_input_grpc())
    with pytest.raises(InferenceServerException):
        g.infer("add", add_input_grpc(), model_version="7")
    # metadata and readiness
    g.get_model_metadata("add")
    h.get_model_metadata("add")
    assert g.is_model_ready("add") and h.is_model_ready("add")
    after = scrape(metrics_server)

    def delta(kind, itf, method, version="2"):
        v = None if method in UNVERSIONED else version
        return (after.requests(kind, "KServe", itf, method, "add", v)
                - before.requests(kind, "KServe", itf, method, "add", v))

    assert delta("success", "gRPC", "ModelInfer") == n_grpc
    assert delta("success", "REST", "ModelInfer") == n_rest
    assert delta("success", "gRPC", "ModelInfer", "1") == 1
    assert delta("success", "REST", "ModelInfer", "1") == 1
    assert delta("fail", "gRPC", "ModelInfer") == 1
    assert delta("fail", "REST", "ModelInfer") == 2
    assert delta("fail", "gRPC", "ModelInfer", "1") == 0
    assert delta("success", "gRPC", "ModelMetadata") == 1
    assert delta("success", "REST", "ModelMetadata") == 1
    assert delta("success", "gRPC", "ModelReady") == 1
    assert delta("success", "REST", "ModelReady") == 1
    for itf in ("gRPC", "REST"):  # no TFS traffic was sent
        for method in ("Predict", "GetModelMetadata"):
            assert after.requests("success", "TensorFlowServing", itf, method, "add", "2") \
                == before.requests("success", "TensorFlowServing", itf, method, "add", "2")

    def hdelta(family, suffix, **labels):
        return after.get(f"{family}_{suffix}", **labels) - before.get(f"{family}_{suffix}", **labels)

    v2 = {"name": "add", "version": "2"}
    # request time: successful inferences per interface
    assert hdelta("ovms_request_time_us", "count", interface="gRPC", **v2) == n_grpc
    assert hdelta("ovms_request_time_us", "count", interface="REST", **v2) == n_rest
    assert hdelta("ovms_request_time_us", "sum", interface="gRPC", **v2) > 0
    # inference and wait time: every inference that ran (validation failures never reach OpenVINO)
    assert hdelta("ovms_inference_time_us", "count", **v2) == n_grpc + n_rest
    assert hdelta("ovms_inference_time_us", "sum", **v2) > 0
    assert hdelta("ovms_wait_for_infer_req_time_us", "count", **v2) == n_grpc + n_rest
    assert hdelta("ovms_inference_time_us", "count", name="add", version="1") == 2
    # buckets are cumulative and end at _count
    for fam in ("ovms_inference_time_us", "ovms_wait_for_infer_req_time_us"):
        series = sorted(((float(dict(k)["le"]), v) for k, v in after.samples[f"{fam}_bucket"].items()
                         if ("version", "2") in k))
        values = [v for _, v in series]
        assert values == sorted(values)
        assert values[-1] == after.get(f"{fam}_count", **v2)
    # gauges
    assert after.get("ovms_current_requests", **v2) == 0
    assert after.get("ovms_streams", **v2) >= 1
    assert after.get("ovfast_models_loaded") == 2
    assert after.get("ovfast_model_load_time_seconds", **v2) > 0


def test_tfs_traffic_moves_counters(metrics_server):
    before = scrape(metrics_server)
    grpc_c, http_c = make_grpc_client(metrics_server.grpc_url), make_http_client(metrics_server.http_url)
    x = np.ones((1, 10), np.float32)
    n = {"gRPC": 3, "REST": 2}
    for itf, client in (("gRPC", grpc_c), ("REST", http_c)):
        for _ in range(n[itf]):
            client.predict({M.ADD_INPUT: x}, "add")
        with pytest.raises(Exception):  # wrong shape: INVALID_ARGUMENT after the model resolved
            client.predict({M.ADD_INPUT: np.ones((1, 4), np.float32)}, "add")
        client.get_model_metadata("add")
        client.get_model_status("add")
    bad = rest(metrics_server.http_url, "POST", "/v1/models/add:predict", b"{")
    assert bad.status == 412
    after = scrape(metrics_server)

    def delta(kind, itf, method, version="2"):
        v = None if method in UNVERSIONED else version
        return (after.requests(kind, "TensorFlowServing", itf, method, "add", v)
                - before.requests(kind, "TensorFlowServing", itf, method, "add", v))

    for itf in ("gRPC", "REST"):
        assert delta("success", itf, "Predict") == n[itf]
        assert delta("success", itf, "GetModelMetadata") == 1
        assert delta("success", itf, "GetModelStatus") == 1
    assert delta("fail", "gRPC", "Predict") == 1
    assert delta("fail", "REST", "Predict") == 2  # wrong shape + unparsable body
    v2 = {"name": "add", "version": "2"}
    for itf in ("gRPC", "REST"):
        assert (after.get("ovms_request_time_us_count", interface=itf, **v2)
                - before.get("ovms_request_time_us_count", interface=itf, **v2)) == n[itf]
    assert (after.get("ovms_inference_time_us_count", **v2)
            - before.get("ovms_inference_time_us_count", **v2)) == n["gRPC"] + n["REST"]


# -- selection, disabled, refused names ---------------------------------------------------------------------


def test_metrics_list_selects_families(repo, tmp_path):
    log_file = tmp_path / "server.log"
    srv = start(tmp_path / "srv", [
        "--model_name", "add", "--model_path", str(repo / "add"), "--nireq", "3", "--metrics_enable",
        "--metrics_list", "ovms_requests_success,ovms_infer_req_queue_size,ovms_infer_req_active",
        "--log_path", str(log_file)])
    try:
        c = grpcclient.InferenceServerClient(srv.grpc_url)
        c.infer("add", add_input_grpc())
        with pytest.raises(InferenceServerException):
            c.infer("add", add_input_grpc((2, 10)))
        c.close()
        s = scrape(srv)
        assert set(s.types) == {"ovms_requests_success", "ovms_infer_req_queue_size", "ovms_infer_req_active"}
        assert s.get("ovms_infer_req_queue_size", name="add", version="2") == 3
        # the slot goes back to the pool just after the response is queued: 0 or, briefly, 1
        assert 0 <= s.get("ovms_infer_req_active", name="add", version="2") <= 1
        assert s.requests("success", "KServe", "gRPC", "ModelInfer", "add", "2") == 1
        # DEBUG (conftest's default level here) logs the failed request with its model and version
        text = log_file.read_text()
        assert "Inference failed for model add version 2" in text
        assert "Invalid input batch size" in text or "Invalid input shape" in text
    finally:
        srv.stop()


def test_metrics_disabled_answers_invalid_url_and_info_log(repo, tmp_path):
    """No metrics: /metrics is 400 "Invalid request URL". Also the INFO log file: state changes and load
    errors, and no line per request."""
    broken = tmp_path / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "model.xml").write_text("<not a model")
    (broken / "model.bin").write_bytes(b"")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_config_list": [
        {"config": {"name": "add", "base_path": str(repo / "add")}},
        {"config": {"name": "broken", "base_path": str(tmp_path / "broken")}}]}))
    log_file = tmp_path / "server.log"
    srv = start(tmp_path / "srv", ["--config_path", str(cfg), "--file_system_poll_wait_seconds", "0",
                                   "--log_path", str(log_file), "--log_level", "INFO"], log_level=None)
    try:
        r = rest(srv.http_url, "GET", "/metrics")
        assert r.status == 400
        assert r.error() == "Invalid request URL"
        text = log_file.read_text()
        assert 'STATUS CHANGE: Version 2 of model add status change. New status: ( "state": "AVAILABLE"' in text
        assert 'STATUS CHANGE: Version 2 of model add status change. New status: ( "state": "LOADING"' in text
        assert "[ERROR] Error loading model broken version 1" in text
        lines_before = len(text.splitlines())
        g = grpcclient.InferenceServerClient(srv.grpc_url)
        h = httpclient.InferenceServerClient(srv.http_url)
        for _ in range(3):
            g.infer("add", add_input_grpc())
            h.infer("add", add_input_http())
        for client, inp in ((g, add_input_grpc), (h, add_input_http)):
            with pytest.raises(InferenceServerException):
                client.infer("add", inp((1, 3)))
        g.close()
        h.close()
        assert len(log_file.read_text().splitlines()) == lines_before
        # our records all went to the file (OpenVINO's own readers may still print to stderr)
        assert "][ovfast." not in srv.stderr()
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "case",
    ["cli_unknown", "config_unknown", "config_no_rest_port", "list_without_enable", "config_malformed"],
)
def test_metrics_usage_errors(repo, tmp_path, case):
    g, r = free_ports(2)
    addr = ["--port", str(g), "--grpc_bind_address", "127.0.0.1", "--rest_bind_address", "127.0.0.1"]
    model = ["--model_name", "add", "--model_path", str(repo / "add")]

    def config(monitoring) -> list[str]:
        p = tmp_path / "config.json"
        p.write_text(json.dumps({"model_config_list": [{"config": {"name": "add", "base_path": str(repo / "add")}}],
                                 "monitoring": monitoring}))
        return ["--config_path", str(p)]

    cases = {  # built lazily: each config case writes the same file
        "cli_unknown": lambda: ([*model, *addr, "--rest_port", str(r), "--metrics_enable",
                                 "--metrics_list", "ovms_requests_success,ovms_no_such_family"],
                                "Invalid name in metrics_list: ovms_no_such_family"),
        "config_unknown": lambda: ([*config({"metrics": {"enable": True, "metrics_list": ["bogus_family"]}}),
                                    *addr, "--rest_port", str(r)], "Invalid name in metrics_list: bogus_family"),
        "config_no_rest_port": lambda: ([*config({"metrics": {"enable": True}}), *addr],
                                        "Missing rest_port parameter in server CLI"),
        "list_without_enable": lambda: ([*model, *addr, "--rest_port", str(r), "--metrics_list", "ovms_streams"],
                                        "metrics_enable setting is missing, required when metrics_list is provided"),
        "config_malformed": lambda: ([*config({"metrics": {"metrics_list": []}}), *addr, "--rest_port", str(r)],
                                     "monitoring.metrics.enable is required"),
    }
    args, message = cases[case]()
    res = run_cli(*args)
    assert res.returncode == EX_USAGE, res.stderr
    assert message in res.stderr
