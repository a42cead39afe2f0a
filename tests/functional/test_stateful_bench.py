"""``python -m bench --stateful`` runs end to end (tiny windows): every series produced numbers, the served
answers equal the in-process loop, and the report exists; how fast anything was is never looked at."""
from __future__ import annotations

import pytest

from bench_run import run_bench


@pytest.mark.timeout(240)
def test_bench_stateful_end_to_end(tmp_path):
    doc, stdout = run_bench(["--stateful", "--concurrency", "1,3", "--stateful-seconds", "0.3"], tmp_path,
                            timeout=220)
    st = doc["stateful"]
    assert [p["concurrency"] for p in st["series"]] == [1, 3]
    for p in st["series"]:
        assert p["windows"] > 0 and p["windows_per_sec"] > 0 and not p["errors"], p
    assert st["checks"] == {"1": 0.0, "3": 0.0}
    assert st["inprocess"]["windows"] > 0
    assert doc["ratios"]["best_vs_inprocess"] > 0
    assert "best (c=" in stdout
