"""``python -m bench --ocr`` runs end to end (short points): every series produced numbers, every way read the
drawn lines exactly, and the report exists; how fast anything was is never looked at."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_bench_ocr_end_to_end(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench", "--ocr", "--concurrency", "1,2", "--ocr-seconds", "0.5",
           "--out", str(out), "--model-cache", str(tmp_path / "models")]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=580, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    st = doc["ocr"]
    assert st["checks_ok"], st["checks"]
    for key in ("inprocess", "pipeline", "client_steps"):
        assert [p["concurrency"] for p in st[key]] == [1, 2], (key, st[key])
        for p in st[key]:
            assert p.get("count", 0) > 0 and p["infer_per_sec"] > 0 and not p.get("errors"), (key, p)
    assert set(doc["ratios"]["pipeline_vs_client_steps"]) == {"1", "2"}
    assert "pipeline best / in-process best" in res.stdout
