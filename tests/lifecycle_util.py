"""Helpers shared by the functional tests that drive a server's model lifecycle: the OVMS config
endpoints over plain HTTP, version states, atomic config writes, and bounded waits."""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

WAIT_S = 60.0  # generous upper bound for a load to show up; never asserted as a time


def rest(srv, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://{srv.http_url}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def states(srv) -> dict[str, dict[str, str]]:
    """{model: {version: state}} from GET /v1/config."""
    code, doc = rest(srv, "GET", "/v1/config")
    assert code == 200, doc
    return {m: {s["version"]: s["state"] for s in v["model_version_status"]} for m, v in doc.items()}


def wait_until(cond, what: str, srv=None, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{srv.log()[-6000:]}" if srv else ""))


def write_config(path: Path, entries: list[dict], **top) -> Path:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries], **top}, indent=1))
    os.replace(tmp, path)  # atomic: the watcher never sees half a file
    return path


def serve_version_without_model_file(repo: Path, ovfast_server):
    """A server with model ``m`` (all versions): version 1 (b + 1) AVAILABLE, and version 2 a folder with no
    model file, so it stays LOADING (failed; retried at every reload). Returns (server, base path)."""
    import models as M

    base = repo / "models" / "m"
    M.build_add(base, version=1, addend=1.0)
    srv = ovfast_server("--config_path", str(write_config(repo / "config.json", [
        {"name": "m", "base_path": "models/m", "model_version_policy": {"all": {}}}])),
        "--file_system_poll_wait_seconds", "0")
    (base / "2").mkdir()
    assert rest(srv, "POST", "/v1/config/reload")[0] == 200
    assert states(srv)["m"] == {"2": "LOADING", "1": "AVAILABLE"}
    return srv, base
