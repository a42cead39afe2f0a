"""``python -m bench --density`` runs end to end on a small catalog (short phases): every phase produced
numbers through the grpc++ load generator and the report exists; how fast anything was is never looked at."""
from __future__ import annotations

import pytest

from bench_run import run_bench


@pytest.mark.timeout(900)  # the first use compiles the grpc++ load generator
def test_bench_density_end_to_end(tmp_path):
    doc, stdout = run_bench(["--density", "--models", "60", "--budget", "64MiB", "--cold-requests", "10",
                             "--hot-seconds", "1", "--seconds", "2", "--clients", "4"], tmp_path, timeout=880)
    assert doc["load_generator"].startswith("grpc++"), doc["load_generator"]
    assert doc["models"] == 60 and doc["start_s"] > 0
    assert doc["cold"]["requests"] == 10 and doc["cold"]["failed"] == 0, doc["cold"]
    assert doc["cold"]["server_load_p50_ms"] > 0
    for phase in ("hot", "zipf"):
        r = doc[phase]
        assert r["requests"] > 0 and r["failed"] == 0 and r["p99_us"] >= r["p50_us"] > 0, (phase, r)
    assert doc["hot"]["server_mean_us"] > 0, doc["hot"]
    assert doc["max_rss_bytes"] > 0
    assert "hot p50 / p99" in stdout
