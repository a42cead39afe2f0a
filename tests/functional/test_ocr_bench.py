"""``python -m bench --ocr`` runs end to end (short points): every series produced numbers, every way read the
drawn lines exactly, and the report exists; how fast anything was is never looked at."""
from __future__ import annotations

import pytest

from bench_run import run_bench


@pytest.mark.timeout(600)
def test_bench_ocr_end_to_end(tmp_path):
    doc, stdout = run_bench(["--ocr", "--concurrency", "1,2", "--ocr-seconds", "0.5"], tmp_path, timeout=580)
    st = doc["ocr"]
    assert st["checks_ok"], st["checks"]
    for key in ("inprocess", "pipeline", "client_steps"):
        assert [p["concurrency"] for p in st[key]] == [1, 2], (key, st[key])
        for p in st[key]:
            assert p.get("count", 0) > 0 and p["infer_per_sec"] > 0 and not p.get("errors"), (key, p)
    assert set(doc["ratios"]["pipeline_vs_client_steps"]) == {"1", "2"}
    assert "pipeline best / in-process best" in stdout
