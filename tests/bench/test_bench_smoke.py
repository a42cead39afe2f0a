"""The bench/ harness runs end to end on the tiny model (tiny sweep, tiny windows).

It checks that every series produced numbers and that the report files exist; it never
looks at how fast anything was.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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


@pytest.mark.timeout(120)
def test_bench_tiny_end_to_end(tmp_path):
    if not _perf_analyzer_runs():
        pytest.skip("perf_analyzer is not runnable here (see bench/README.md for its install)")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench", "--model", "tiny", "--concurrency", "1,2",
           "--interval-ms", "200", "--count-window", "20", "--stability", "1000", "--max-trials", "3",
           "--inprocess-seconds", "0.3", "--loadgen-seconds", "0.3",
           # --peers with an empty peer list: exercises the Python load generator against ovfast only
           "--peers", "--peer-list", "",
           "--out", str(out), "--model-cache", str(tmp_path / "models")]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=110)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ratios:" in r.stdout
    res = json.loads((out / "results.json").read_text())

    assert res["model"]["name"] == "tiny"
    assert res["machine"]["nproc"] >= 1 and res["machine"]["cpu"]
    assert res["server_settings"]["nireq"] >= 1 and res["server_settings"]["streams"] >= 1
    assert res["inprocess"]["async"]["infer_per_sec"] > 0
    assert res["inprocess"]["sync"]["p50_us"] > 0
    expected = {"ovfast grpc", "ovfast rest", "echo grpc", "echo rest", "ovfast grpc (loadgen)"}
    assert expected <= set(res["series"])
    for name in expected:
        points = res["series"][name]
        assert [p["concurrency"] for p in points] == [1, 2], name
        for p in points:
            assert "error" not in p, (name, p)
            assert p["infer_per_sec"] > 0 and p["p50_us"] > 0 and p["p99_us"] >= p["p50_us"], (name, p)
    assert "ovfast grpc / in-process (best throughput)" in res["ratios"]
    assert "ovfast grpc / echo grpc floor (best throughput)" in res["ratios"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib" in res["plot"]
    else:
        assert (out / "results.png").stat().st_size > 0


def test_bench_reports_unavailable_effnet(tmp_path):
    """Without the converter/package the effnet model is reported as not available, not a crash."""
    sys.path.insert(0, str(REPO))
    try:
        from bench.models import ModelUnavailable, get_model

        try:
            m = get_model("effnet", tmp_path)
        except ModelUnavailable as exc:
            assert str(exc)
        else:
            assert m.xml.exists()
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
