"""Runs ``python -m bench`` as a user would (a subprocess from the repository root) for the tests that
check a bench mode end to end: every series produced numbers, never how fast anything was."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_bench(args: list[str], tmp_path: Path, timeout: float) -> tuple[dict, str]:
    """Runs the bench with ``args`` writing into ``tmp_path``/out (models cached in ``tmp_path``/models);
    asserts it exited 0 and returns (results.json, stdout)."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench", *args, "--out", str(out), "--model-cache", str(tmp_path / "models")]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    return json.loads((out / "results.json").read_text()), res.stdout
