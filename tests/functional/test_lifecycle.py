"""Model repository and lifecycle against a real server: version policies, status APIs,
config watching and POST /v1/config/reload, version folders coming and going, reloads under
continuous traffic, invalid configs, reshaping, and the model formats OpenVINO reads."""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import models as M
from lifecycle_util import rest, serve_version_without_model_file, states, wait_until, write_config


# -- helpers ---------------------------------------------------------------------------------

def add_version(base: Path, version: int, addend: float, staging: Path) -> None:
    """Builds a version folder elsewhere and renames it in, so the watcher sees it complete."""
    M.build_add(staging, version=version, addend=addend)
    os.rename(staging / str(version), base / str(version))


def remove_version(base: Path, version: int, staging: Path) -> None:
    gone = staging / f"gone-{version}-{time.monotonic_ns()}"
    os.rename(base / str(version), gone)
    shutil.rmtree(gone)


def infer_add(client, model: str, version: str = "", batch: int = 1, width: int = 10) -> np.ndarray:
    x = np.arange(batch * width, dtype=np.float32).reshape(batch, width)
    mod = grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient
    inp = mod.InferInput("b", [batch, width], "FP32")
    inp.set_data_from_numpy(x)
    res = client.infer(model, [inp], model_version=version)
    return res.as_numpy("a") - x


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "staging").mkdir()
    return tmp_path


# -- version policies and status APIs ---------------------------------------------------------

@pytest.mark.parametrize("policy,served", [
    (None, ["3"]),
    ({"all": {}}, ["1", "2", "3"]),
    ({"latest": {"num_versions": 2}}, ["2", "3"]),
    ({"specific": {"versions": [1, 3, 7]}}, ["1", "3"]),
])
def test_version_policy(repo, ovfast_server, policy, served):
    base = repo / "models" / "m"
    for v in (1, 2, 3):
        M.build_add(base, version=v, addend=float(v))
    entry = {"name": "m", "base_path": "models/m"}  # relative to the config file
    if policy:
        entry["model_version_policy"] = policy
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [entry])),
                        "--file_system_poll_wait_seconds", "0")
    assert states(srv) == {"m": {v: "AVAILABLE" for v in served}}
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert g.get_model_metadata("m").versions == served
    # the default is the highest served version; every served version answers by number
    assert np.allclose(infer_add(g, "m"), float(served[-1]))
    for v in served:
        assert np.allclose(infer_add(g, "m", v), float(v))
        assert g.is_model_ready("m", v)
    for v in {"1", "2", "3"} - set(served):
        with pytest.raises(InferenceServerException, match="version is not found"):
            g.is_model_ready("m", v)
        with pytest.raises(InferenceServerException, match="version is not found"):
            infer_add(g, "m", v)


def test_status_json_matches_ovms(repo, ovfast_server):
    M.build_add(repo / "models" / "m")
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "m", "base_path": str(repo / "models" / "m")}])), "--file_system_poll_wait_seconds", "0")
    code, doc = rest(srv, "GET", "/v1/config")
    assert code == 200
    assert doc == {"m": {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": "OK"}}]}}
    code, doc2 = rest(srv, "POST", "/v1/config/reload")
    assert (code, doc2) == (200, doc)


# -- online changes ----------------------------------------------------------------------------

def test_reload_api_adds_and_removes_models(repo, ovfast_server):
    for n in ("a", "b"):
        M.build_add(repo / "models" / n)
    cfg = repo / "config.json"
    a = {"name": "a", "base_path": "models/a"}
    b = {"name": "b", "base_path": "models/b"}
    srv = ovfast_server("--config_path", str(write_config(cfg, [a])), "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert "b" not in states(srv)
    write_config(cfg, [a, b])
    code, doc = rest(srv, "POST", "/v1/config/reload")
    assert code == 201
    assert doc["b"]["model_version_status"][0]["state"] == "AVAILABLE"
    assert g.is_model_ready("b")
    assert rest(srv, "POST", "/v1/config/reload")[0] == 200  # nothing changed
    write_config(cfg, [a])
    code, doc = rest(srv, "POST", "/v1/config/reload")
    assert code == 201
    assert doc["b"]["model_version_status"][0]["state"] == "END"
    assert not g.is_model_ready("b")
    with pytest.raises(InferenceServerException, match="retired"):
        infer_add(g, "b")
    assert np.allclose(infer_add(g, "a"), 1.0)
    # the reason of every change is logged
    log = srv.stderr()
    assert "Model b: added" in log and "Model b: removed from the config" in log


def test_changed_model_config_is_reloaded_with_reason(repo, ovfast_server):
    M.build_add(repo / "models" / "a")
    cfg = repo / "config.json"
    srv = ovfast_server("--config_path", str(write_config(cfg, [{"name": "a", "base_path": "models/a"}])),
                        "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert g.get_model_metadata("a").inputs[0].shape == [1, 10]
    write_config(cfg, [{"name": "a", "base_path": "models/a", "batch_size": 3}])
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert g.get_model_metadata("a").inputs[0].shape == [3, 10]
    assert np.allclose(infer_add(g, "a", batch=3), 1.0)
    assert "Model a: reloading all versions because batch_size changed from None to 3" in srv.stderr()


def test_watcher_picks_up_version_folders_and_config(repo, ovfast_server):
    base = repo / "models" / "m"
    M.build_add(base, version=1, addend=1.0)
    cfg = repo / "config.json"
    srv = ovfast_server("--config_path", str(write_config(cfg, [{"name": "m", "base_path": "models/m"}])),
                        "--file_system_poll_wait_seconds", "1")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    add_version(base, 2, 2.0, repo / "staging")
    wait_until(lambda: states(srv)["m"] == {"2": "AVAILABLE", "1": "END"}, "version 2 to replace 1", srv)
    assert np.allclose(infer_add(g, "m"), 2.0)
    remove_version(base, 2, repo / "staging")
    wait_until(lambda: states(srv)["m"] == {"2": "END", "1": "AVAILABLE"}, "version 1 back", srv)
    assert np.allclose(infer_add(g, "m"), 1.0)
    # the config file itself is watched too
    M.build_add(repo / "models" / "n")
    write_config(cfg, [{"name": "m", "base_path": "models/m"}, {"name": "n", "base_path": "models/n"}])
    wait_until(lambda: states(srv).get("n") == {"1": "AVAILABLE"}, "model n", srv)


def test_version_folder_without_model_file_is_retried(repo, ovfast_server):
    srv, base = serve_version_without_model_file(repo, ovfast_server)
    code, doc = rest(srv, "GET", "/v1/config")
    assert doc["m"]["model_version_status"][0]["status"]["error_code"] == "UNKNOWN"
    os.rmdir(base / "2")
    add_version(base, 2, 2.0, repo / "staging")
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert states(srv)["m"] == {"2": "AVAILABLE", "1": "AVAILABLE"}


# -- bad configs -------------------------------------------------------------------------------

def test_invalid_config_at_reload_keeps_serving(repo, ovfast_server):
    for n in ("a", "b"):
        M.build_add(repo / "models" / n)
    cfg = repo / "config.json"
    a = {"name": "a", "base_path": "models/a"}
    srv = ovfast_server("--config_path", str(write_config(cfg, [a])), "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    before = states(srv)

    cfg.write_text('{"model_config_list": [')
    code, doc = rest(srv, "POST", "/v1/config/reload")
    assert code == 412 and "not valid json" in doc["error"]
    assert states(srv) == before and np.allclose(infer_add(g, "a"), 1.0)

    write_config(cfg, [{**a, "unknown_key": 1}])
    code, doc = rest(srv, "POST", "/v1/config/reload")
    assert code == 412 and "unknown key" in doc["error"]
    # a served model whose entry became invalid keeps running as it was
    assert states(srv) == before and np.allclose(infer_add(g, "a"), 1.0)

    write_config(cfg, [a], extra_top_level=True)
    code, doc = rest(srv, "POST", "/v1/config/reload")
    assert code == 412 and "unknown top-level key" in doc["error"]

    # one bad entry does not stop a good one
    write_config(cfg, [a, {"name": "b", "base_path": "models/b"}, {"name": "c", "base_path": "/x", "nireq": -5}])
    code, doc = rest(srv, "POST", "/v1/config/reload")
    assert code == 412 and "model 'c'" in doc["error"] and "nireq" in doc["error"]
    assert states(srv) == {"a": {"1": "AVAILABLE"}, "b": {"1": "AVAILABLE"}}
    assert "Reloading config file failed" in srv.stderr() or "invalid model configuration" in srv.stderr()


def test_invalid_config_at_start_refuses_to_start(repo, ovfast_server):
    cfg = repo / "config.json"
    cfg.write_text('{"model_config_list": [{"config": {"name": "a", "base_path": "/a", "bogus": 1}}], "x": 2}')
    srv = ovfast_server("--config_path", str(cfg), wait=False)
    assert srv.wait(60) == 64
    assert "unknown top-level key" in srv.stderr()


def test_failed_load_is_retried(repo, ovfast_server):
    base = repo / "models" / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "model.xml").write_text("<not a model/>")
    (base / "1" / "model.bin").write_bytes(b"")
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "m", "base_path": str(base)}])), "--file_system_poll_wait_seconds", "0")
    assert states(srv) == {"m": {"1": "LOADING"}}
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    with pytest.raises(InferenceServerException, match="not loaded yet"):
        infer_add(g, "m")
    shutil.rmtree(base / "1")
    M.build_add(base, version=1)
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert np.allclose(infer_add(g, "m"), 1.0)


# -- zero failed requests while the repository changes ----------------------------------------

def test_reload_under_load_has_zero_failures(repo, ovfast_server):
    models_dir = repo / "models"
    staging = repo / "staging"
    M.build_add(models_dir / "a", version=1, addend=1.0)
    M.build_add(models_dir / "b", version=1, addend=1.0)
    cfg = repo / "config.json"
    a = {"name": "a", "base_path": "models/a"}
    b = {"name": "b", "base_path": "models/b"}
    srv = ovfast_server("--config_path", str(write_config(cfg, [a])), "--file_system_poll_wait_seconds", "1")

    stop = threading.Event()
    failures: list[str] = []
    successes = [0]
    lock = threading.Lock()

    def hammer(kind: str):
        client = (grpcclient.InferenceServerClient(srv.grpc_url) if kind == "grpc"
                  else httpclient.InferenceServerClient(srv.http_url))
        while not stop.is_set():
            try:
                got = infer_add(client, "a")
                ok = any(np.allclose(got, float(v)) for v in (1, 2, 3))
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                with lock:
                    failures.append(f"{kind}: {e}")
                continue
            with lock:
                if ok:
                    successes[0] += 1
                else:
                    failures.append(f"{kind}: wrong result {got[0, :3]}")
        client.close()

    threads = [threading.Thread(target=hammer, args=(k,)) for k in ("grpc", "grpc", "http")]
    for t in threads:
        t.start()
    try:
        def reload_now():
            assert rest(srv, "POST", "/v1/config/reload")[0] in (200, 201)

        write_config(cfg, [a, b])                                   # B appears (watcher)
        wait_until(lambda: states(srv).get("b") == {"1": "AVAILABLE"}, "b", srv)
        add_version(models_dir / "a", 2, 2.0, staging)              # A v2 replaces v1 as default
        reload_now()
        assert states(srv)["a"] == {"2": "AVAILABLE", "1": "END"}
        add_version(models_dir / "b", 2, 2.0, staging)
        wait_until(lambda: states(srv)["b"].get("2") == "AVAILABLE", "b v2", srv)
        write_config(cfg, [{**a, "nireq": 2}, b])                     # A's config changes: all versions reload
        reload_now()
        add_version(models_dir / "a", 3, 3.0, staging)
        wait_until(lambda: states(srv)["a"].get("3") == "AVAILABLE", "a v3", srv)
        remove_version(models_dir / "a", 3, staging)                 # back to v2
        wait_until(lambda: states(srv)["a"] == {"3": "END", "2": "AVAILABLE", "1": "END"}, "a v2 again", srv)
        remove_version(models_dir / "b", 2, staging)
        write_config(cfg, [{**a, "nireq": 2}])                        # B disappears
        reload_now()
        assert set(states(srv)["b"].values()) == {"END"}
        time.sleep(0.5)  # some traffic after the last change
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert failures == [], failures[:10]
    assert successes[0] > 0


# -- reshaping ---------------------------------------------------------------------------------

def test_fixed_shape_and_batch(repo, ovfast_server):
    M.build_dynamic(repo / "models" / "dyn")
    M.build_add(repo / "models" / "add")
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "dyn", "base_path": "models/dyn", "shape": {"x": "(2,3)"}},
        {"name": "add4", "base_path": "models/add", "batch_size": 4},
        {"name": "addr", "base_path": "models/add", "batch_size": "1:3"},
        {"name": "dyn_range", "base_path": "models/dyn", "shape": "(-1,1:5)"},
    ])), "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert g.get_model_metadata("dyn").inputs[0].shape == [2, 3]
    assert g.get_model_metadata("add4").inputs[0].shape == [4, 10]
    assert g.get_model_metadata("addr").inputs[0].shape == [-1, 10]
    assert np.allclose(infer_add(g, "add4", batch=4), 1.0)
    assert np.allclose(infer_add(g, "addr", batch=2), 1.0)
    with pytest.raises(InferenceServerException, match=r"Invalid input batch size - Expected: 4; Actual: 1"):
        infer_add(g, "add4", batch=1)
    with pytest.raises(InferenceServerException, match=r"Invalid input batch size - Expected: 1:3; Actual: 5"):
        infer_add(g, "addr", batch=5)

    def infer_dyn(model, shape):
        x = np.ones(shape, np.float32)
        inp = grpcclient.InferInput("x", list(shape), "FP32")
        inp.set_data_from_numpy(x)
        return g.infer(model, [inp]).as_numpy("y")

    assert np.allclose(infer_dyn("dyn", (2, 3)), 2.0)
    with pytest.raises(InferenceServerException, match=r"Invalid input shape - Expected: \(2,3\); Actual: \(2,4\)"):
        infer_dyn("dyn", (2, 4))
    assert np.allclose(infer_dyn("dyn_range", (7, 5)), 2.0)
    with pytest.raises(InferenceServerException, match="INVALID_ARGUMENT|Invalid input shape"):
        infer_dyn("dyn_range", (7, 6))


@pytest.mark.parametrize("setting", [{"shape": "auto"}, {"shape": {"b": "auto"}}, {"batch_size": "auto"}])
def test_auto_reshape_follows_requests(repo, ovfast_server, setting):
    M.build_add(repo / "models" / "add")
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "add", "base_path": "models/add", **setting}])), "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    h = httpclient.InferenceServerClient(srv.http_url)
    assert np.allclose(infer_add(g, "add", batch=1), 1.0)
    assert np.allclose(infer_add(g, "add", batch=3), 1.0)
    assert g.get_model_metadata("add").inputs[0].shape == [3, 10]
    assert np.allclose(infer_add(h, "add", batch=5), 1.0)
    assert np.allclose(infer_add(g, "add", batch=1), 1.0)
    if "shape" in setting:
        assert np.allclose(infer_add(g, "add", batch=2, width=4), 1.0)
    # concurrent requests of different shapes all succeed (reshapes are serialized)
    errors: list[str] = []

    def run(batch):
        try:
            for _ in range(3):
                assert np.allclose(infer_add(grpcclient.InferenceServerClient(srv.grpc_url), "add", batch=batch), 1.0)
        except Exception as e:  # noqa: BLE001
            errors.append(str(e))

    threads = [threading.Thread(target=run, args=(b,)) for b in (1, 2, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert states(srv) == {"add": {"1": "AVAILABLE"}}


# -- formats -----------------------------------------------------------------------------------

def test_formats_ir_onnx_tflite(repo, ovfast_server):
    from tflite_model import ADDEND, build_tflite_add

    M.build_add(repo / "models" / "ir")
    M.build_onnx_add(repo / "models" / "onnx")
    build_tflite_add(repo / "models" / "tflite")
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": n, "base_path": f"models/{n}"} for n in ("ir", "onnx", "tflite")])),
        "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert np.allclose(infer_add(g, "ir"), 1.0)
    assert np.allclose(infer_add(g, "onnx"), 1.0)
    x = np.array([[1, 1, 1, 1]], np.float32)
    inp = grpcclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(x)
    assert np.allclose(g.infer("tflite", [inp]).as_numpy("y"), x + ADDEND)


# -- single-model CLI flags ----------------------------------------------------------------------

def test_single_model_cli_flags(repo, ovfast_server):
    base = repo / "models" / "m"
    for v in (1, 2):
        M.build_add(base, version=v, addend=float(v))
    srv = ovfast_server("--model_name", "m", "--model_path", str(base), "--batch_size", "2",
                        "--model_version_policy", '{"all": {}}', "--nireq", "2", "--target_device", "CPU",
                        "--plugin_config", '{"PERFORMANCE_HINT": "LATENCY"}', "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert states(srv) == {"m": {"2": "AVAILABLE", "1": "AVAILABLE"}}
    assert g.get_model_metadata("m").inputs[0].shape == [2, 10]
    assert np.allclose(infer_add(g, "m", "1", batch=2), 1.0)
    assert "Loaded model m; version: 1; No of InferRequests: 2" in srv.stderr()
    # single-model mode: reload re-scans the version folders
    assert rest(srv, "POST", "/v1/config/reload")[0] == 200
    add_version(base, 3, 3.0, repo / "staging")
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert np.allclose(infer_add(g, "m", batch=2), 3.0)
    srv2 = ovfast_server("--model_name", "m", "--model_path", str(base), "--shape", '{"b": "(3,10)"}',
                         "--layout", "NC", "--file_system_poll_wait_seconds", "0")
    g2 = grpcclient.InferenceServerClient(srv2.grpc_url)
    assert g2.get_model_metadata("m").inputs[0].shape == [3, 10]
    bad = ovfast_server("--model_name", "m", "--model_path", str(base), "--shape", "(1,x)", wait=False)
    assert bad.wait(60) == 64
    assert "bad dimension" in bad.stderr()


# -- a request for a version that is still loading waits for it -----------------------------------

def test_request_waits_for_loading_version(repo, ovfast_server):
    from resnet_model import build_resnet50

    base = repo / "models" / "m"
    M.build_add(base, version=1)
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "m", "base_path": "models/m", "model_version_policy": {"all": {}}}])),
        "--file_system_poll_wait_seconds", "0")
    build_resnet50(repo / "staging", version=2)  # compiling it takes a while
    os.rename(repo / "staging" / "2", base / "2")
    result: dict = {}
    reload = threading.Thread(target=lambda: result.update(code=rest(srv, "POST", "/v1/config/reload")[0]))
    reload.start()
    wait_until(lambda: "2" in states(srv)["m"], "version 2 to be listed", srv)
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    inp = grpcclient.InferInput("data", [1, 3, 224, 224], "FP32")
    inp.set_data_from_numpy(np.ones((1, 3, 224, 224), np.float32))
    out = g.infer("m", [inp], model_version="2").as_numpy("prob")  # waits while LOADING, then runs
    assert out.shape == (1, 1000) and np.isclose(out.sum(), 1.0, atol=1e-3)
    reload.join(120)
    assert result["code"] == 201
    assert np.allclose(infer_add(g, "m", "1"), 1.0)


# -- model cache -------------------------------------------------------------------------------

def test_cache_dir_and_allow_cache(repo, ovfast_server):
    M.build_add(repo / "models" / "fixed")
    M.build_dynamic(repo / "models" / "auto")
    M.build_dynamic(repo / "models" / "auto_cached")
    cache = repo / "cache"
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "fixed", "base_path": "models/fixed"},
        {"name": "auto", "base_path": "models/auto", "shape": "auto"},
    ])), "--file_system_poll_wait_seconds", "0", "--cache_dir", str(cache))
    assert len(list(cache.glob("*.blob"))) == 1  # the "auto" model bypasses the cache
    write_config(repo / "config.json", [
        {"name": "fixed", "base_path": "models/fixed"},
        {"name": "auto", "base_path": "models/auto", "shape": "auto"},
        {"name": "auto_cached", "base_path": "models/auto_cached", "shape": "auto", "allow_cache": True}])
    assert rest(srv, "POST", "/v1/config/reload")[0] == 201
    assert len(list(cache.glob("*.blob"))) == 2


@pytest.mark.parametrize("device", ["AUTO", "HETERO:CPU", "MULTI:CPU"])
def test_target_device_passed_through(repo, ovfast_server, device):
    M.build_add(repo / "models" / "m")
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "m", "base_path": "models/m", "target_device": device, "nireq": 3,
         "plugin_config": {"PERFORMANCE_HINT": "THROUGHPUT"}}])), "--file_system_poll_wait_seconds", "0")
    g = grpcclient.InferenceServerClient(srv.grpc_url)
    assert np.allclose(infer_add(g, "m"), 1.0)
    assert "No of InferRequests: 3" in srv.stderr()


def test_unknown_device_fails_the_model_not_the_server(repo, ovfast_server):
    M.build_add(repo / "models" / "m")
    M.build_add(repo / "models" / "ok")
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "m", "base_path": "models/m", "target_device": "NO_SUCH_DEVICE"},
        {"name": "ok", "base_path": "models/ok"}])), "--file_system_poll_wait_seconds", "0")
    assert states(srv) == {"m": {"1": "LOADING"}, "ok": {"1": "AVAILABLE"}}
    code, doc = rest(srv, "GET", "/v1/config")
    assert doc["m"]["model_version_status"][0]["status"]["error_code"] == "UNKNOWN"
