"""The .pyi stub is part of the binding's contract: mypy.stubtest checks it against the compiled module."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")


@pytest.mark.timeout(180)
def test_native_stub_matches_the_compiled_module():
    pytest.importorskip("mypy")
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "ovfast._native", "--allowlist", str(ALLOWLIST)],
                       capture_output=True, text=True, timeout=170)
    assert r.returncode == 0, r.stdout + r.stderr
