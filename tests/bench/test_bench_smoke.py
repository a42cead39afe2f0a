"""The bench/ harness runs end to end on the tiny model (tiny sweep, tiny windows).

It checks that every series produced numbers and that the report files exist; it never
looks at how fast anything was.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from bench_run import REPO, run_bench


def _perf_analyzer_runs() -> bool:
    sys.path.insert(0, str(REPO))
    try:
        from bench import perf

        exe = perf.perf_analyzer_path()
        r = subprocess.run([exe, "--help"], capture_output=True, env=perf._env(), timeout=30)
        return b"concurrency-range" in r.stdout + r.stderr  # it prints its usage (exit code 99) for --help
    except Exception:
        return False
    finally:
        sys.path.remove(str(REPO))


def _grpcpp_floor_builds() -> str | None:
    """Builds the grpc++ floor into the bench cache (a no-op once built); why not, or None."""
    sys.path.insert(0, str(REPO))
    try:
        from bench import floors

        floors.build_grpcpp(REPO / "bench" / ".cache", REPO / "bench" / ".cache" / "build.log")
        return None
    except floors.FloorUnavailable as exc:
        return str(exc)
    finally:
        sys.path.remove(str(REPO))


@pytest.mark.timeout(1200)  # the first build of the grpc++ floor compiles against grpc++ (minutes when loaded)
def test_bench_tiny_end_to_end(tmp_path):
    if not _perf_analyzer_runs():
        pytest.skip("perf_analyzer is not runnable here (see bench/README.md for its install)")
    grpcpp_why_not = _grpcpp_floor_builds()  # outside the run's time limit below
    args = ["--model", "tiny", "--concurrency", "1,2",
            "--interval-ms", "200", "--count-window", "20", "--stability", "1000", "--max-trials", "3",
            "--inprocess-seconds", "0.3", "--loadgen-seconds", "0.3",
            # --peers with an empty peer list: exercises the Python load generator against ovfast only
            "--peers", "--peer-list", ""]
    res, stdout = run_bench(args, tmp_path, timeout=170)
    out = tmp_path / "out"
    assert "ratios:" in stdout

    assert res["model"]["name"] == "tiny"
    assert res["machine"]["nproc"] >= 1 and res["machine"]["cpu"]
    assert res["server_settings"]["nireq"] >= 1 and res["server_settings"]["streams"] >= 1
    assert res["inprocess"]["async"]["infer_per_sec"] > 0
    assert res["inprocess"]["sync"]["p50_us"] > 0
    expected = {"ovfast grpc", "ovfast rest", "echo grpc", "echo rest", "ovfast grpc (loadgen)", "floor grpc.aio"}
    if grpcpp_why_not is None:
        expected.add("floor grpc++")
    else:
        assert "floor grpc++" not in res["series"] and res["unavailable"]["floor grpc++"], res["unavailable"]
    assert expected <= set(res["series"])
    for name in expected:
        points = res["series"][name]
        assert [p["concurrency"] for p in points] == [1, 2], name
        for p in points:
            assert "error" not in p, (name, p)
            assert p["infer_per_sec"] > 0 and p["p50_us"] > 0 and p["p99_us"] >= p["p50_us"], (name, p)
    assert "ovfast grpc / in-process (best throughput)" in res["ratios"]
    assert "ovfast grpc / echo grpc floor (best throughput)" in res["ratios"]
    assert res["ratios"]["ovfast grpc / floor grpc.aio (best throughput)"] > 0
    if grpcpp_why_not is None:
        assert res["ratios"]["ovfast grpc / floor grpc++ (best throughput)"] > 0
        assert "ovfast grpc p50 - floor grpc++ p50 @c=1 (us)" in res["ratios"]
    # the floors replayed ovfast's own answers, one file per RPC the run makes
    canned = {p.name for p in (out / "canned").iterdir()}
    assert {"%2Finference.GRPCInferenceService%2FModelInfer",
            "%2Finference.GRPCInferenceService%2FModelConfig"} <= canned, canned
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib" in res["plot"]
    else:
        assert (out / "results.png").stat().st_size > 0


@pytest.mark.timeout(150)
def test_bench_batching_end_to_end(tmp_path):
    """``--batching``: in-process batch-1/batch-N, then ovfast without and with --max_batch_size, batch-1
    requests over gRPC at two concurrencies; a small mlp, tiny windows. Checks only that every part ran
    and was recorded (including the batch-size histogram read from the batched server's /metrics).
    ``--peers --peer-list kserve`` adds the load generator against the batched server and its answer check;
    KServe has no server-side batching, so it is reported as not available before any venv is made."""
    if not _perf_analyzer_runs():
        pytest.skip("perf_analyzer is not runnable here (see bench/README.md for its install)")
    args = ["--model", "mlp", "--mlp-dims", "32,64,2",
            "--batching", "4", "--queue-delay-us", "300", "--concurrency", "1,4", "--no-rest",
            "--interval-ms", "200", "--count-window", "20", "--stability", "1000", "--max-trials", "3",
            "--inprocess-seconds", "0.2", "--peers", "--peer-list", "kserve", "--loadgen-seconds", "0.3"]
    res, stdout = run_bench(args, tmp_path, timeout=140)
    assert "ratios:" in stdout and "dynamic batching: max_batch_size 4" in stdout

    assert res["model"]["name"] == "mlp" and res["model"]["dims"] == [32, 64, 2, 10]
    assert res["batching"]["max_batch_size"] == 4 and res["batching"]["max_queue_delay_us"] == 300
    for when in ("before", "after"):
        for key in ("b1", "b4"):
            for hint in ("LATENCY", "THROUGHPUT"):
                reading = res["inprocess"][when][key][hint]
                assert reading["rows_per_sec"] > 0 and reading["batch"] == int(key[1:]), (when, key, hint)
    assert res["inprocess"]["sync"]["p50_us"] > 0
    for which in ("plain", "batched"):
        assert res["server_settings"][which]["nireq"] >= 1, which
    assert set(res["series"]) == {"ovfast grpc", "ovfast grpc batched", "ovfast grpc batched (loadgen)"}
    # 16 distinct rows sent at once to the batched server came back each with its own in-process answer
    check = res["batching"]["answer_checks"]["ovfast grpc batched (loadgen)"]
    assert check["ok"] and check["count"] == 16, check
    assert "server-side" in res["unavailable"]["peer kserve batched (loadgen)"]
    for name, points in res["series"].items():
        assert [p["concurrency"] for p in points] == [1, 4], name
        for p in points:
            assert "error" not in p, (name, p)
            assert p["infer_per_sec"] > 0 and p["p50_us"] > 0, (name, p)
    # batches formed and were counted: the histogram grew by at least one batch of >= 1 row
    metrics = res["batching"]["metrics"]
    assert metrics["scraped"], metrics
    assert metrics["batch_size_count"] >= 1 and 1 <= metrics["batch_size_mean"] <= 4, metrics
    for key in ("in-process batch-4 / batch-1 (rows/s, best hint)", "grpc batched c=4 / in-process batch-1",
                "grpc batched p50 / unbatched p50 at c=1 (latency cost)"):
        assert res["ratios"].get(key) is not None, key


def test_mlp_cache_follows_dims(tmp_path):
    """The cached mlp is rebuilt when asked for other dimensions, and reused when they match."""
    sys.path.insert(0, str(REPO))
    try:
        import openvino as ov

        from bench.models import MlpDims, get_model

        a = get_model("mlp", tmp_path, mlp_dims=MlpDims(16, 32, 1))
        stamp = a.xml.stat().st_mtime_ns
        assert get_model("mlp", tmp_path, mlp_dims=MlpDims(16, 32, 1)).xml.stat().st_mtime_ns == stamp
        b = get_model("mlp", tmp_path, batch=2, mlp_dims=MlpDims(24, 32, 2, 5))
        assert b.input_shape == (2, 24) and b.extra["dims"] == [24, 32, 2, 5]
        model = ov.Core().read_model(str(b.xml))
        assert model.inputs[0].get_partial_shape()[1].get_length() == 24
        assert model.outputs[0].get_partial_shape()[1].get_length() == 5
        assert model.inputs[0].get_partial_shape()[0].is_dynamic
    finally:
        sys.path.remove(str(REPO))


def test_effnet_builds_through_bench(tmp_path):
    """``--model effnet``: bench builds EfficientNet-Lite0 with tests/effnet.py (f32 NCHW, real weights; the
    package comes with the test extra) and drives it like resnet50: one static f32 input of [1,3,224,224]."""
    sys.path.insert(0, str(REPO))
    try:
        import numpy as np
        import openvino as ov

        from bench.models import get_model

        m = get_model("effnet", tmp_path)
        assert (m.input_name, m.input_shape, m.datatype) == ("input", (1, 3, 224, 224), "FP32")
        # static: perf_analyzer cannot drive a dynamic dimension without being given shapes
        assert ov.Core().read_model(str(m.xml)).inputs[0].get_partial_shape().is_static
        compiled = ov.Core().compile_model(str(m.xml), "CPU")
        out = compiled(m.sample())[compiled.outputs[0]]
        assert out.shape == (1, 1000) and np.isfinite(out).all()
        stamp = m.xml.stat().st_mtime_ns
        assert get_model("effnet", tmp_path).xml.stat().st_mtime_ns == stamp  # built once, then reused
    finally:
        sys.path.remove(str(REPO))


def test_resnet50_topology(tmp_path):
    """The ResNet-50 builder: 53 convolutions (incl. 4 projections), ~4.1 G multiply-adds, 1000 classes."""
    sys.path.insert(0, str(REPO))
    try:
        import openvino as ov

        from bench.models import get_model

        m = get_model("resnet50", tmp_path)
        model = ov.Core().read_model(str(m.xml))
        convs = [n for n in model.get_ordered_ops() if n.get_type_name() == "Convolution"]
        assert len(convs) == 53
        assert 3.9 < m.extra["gmacs"] < 4.3
        assert list(model.outputs[0].get_partial_shape().to_shape()) == [1, 1000]
    finally:
        sys.path.remove(str(REPO))
