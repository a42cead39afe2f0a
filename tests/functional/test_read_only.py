"""Where the server writes, and what it does when it cannot: the demo model's cache and the
compiled-model cache (--cache_dir). A prebuilt demo model is only read; an unwritable cache falls back
(demo: a temporary directory) or turns off (--cache_dir), with a log line, and the server still serves.

Tests run as root, which ignores permission bits, so "unwritable" here is a path under a regular file
(every mkdir there fails, for root too); the container image test (packaging/test-image.sh) runs the
server with --read-only --user 12345.
"""
from __future__ import annotations

import logging
import os

import pytest
from kserve_util import assert_rest_serving, rest

from ovfast.demo import DEMO_NAME, ensure_demo_model

pytestmark = pytest.mark.timeout(180)


def _snapshot(root):
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def test_prebuilt_demo_model_is_only_read(tmp_path, monkeypatch):
    monkeypatch.setenv("OVFAST_CACHE", str(tmp_path))
    base = ensure_demo_model()
    assert base == tmp_path / "models" / DEMO_NAME
    before = _snapshot(tmp_path)
    assert ensure_demo_model() == base
    assert _snapshot(tmp_path) == before, "a prebuilt demo model was written again"


def test_unwritable_demo_cache_builds_in_a_temporary_directory(tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("OVFAST_CACHE", str(tmp_path / "file" / "cache"))
    with caplog.at_level(logging.WARNING, logger="ovfast.demo"):
        base = ensure_demo_model()
    assert (base / "1" / "model.xml").is_file() and (base / "1" / "model.bin").is_file()
    assert not str(base).startswith(str(tmp_path))
    assert "is not writable" in caplog.text and str(base) in caplog.text


def test_demo_cache_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("OVFAST_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ensure_demo_model() == tmp_path / "ovfast" / "models" / DEMO_NAME


def test_server_serves_the_demo_from_an_unwritable_cache(ovfast_server, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setenv("OVFAST_CACHE", str(tmp_path / "file" / "cache"))
    srv = ovfast_server()
    r = rest(srv.http_url, "POST", f"/v2/models/{DEMO_NAME}/infer",
             {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": list(range(10))}]})
    assert r.status == 200, r.body
    assert r.json()["outputs"][0]["data"] == [float(x + 1) for x in range(10)]
    assert "built the demo model in" in srv.log()
    assert srv.stop() == 0, srv.log()


def test_unwritable_cache_dir_turns_the_model_cache_off(ovfast_server, model_repo, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    cache = tmp_path / "file" / "cache"
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]), "--cache_dir", str(cache))
    assert_rest_serving(srv.http_url, value=2.0)
    assert f"--cache_dir {cache} is not writable" in srv.log()
    assert srv.stop() == 0, srv.log()


def test_writable_cache_dir_is_created_and_used(ovfast_server, model_repo, tmp_path):
    cache = tmp_path / "new" / "cache"
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]), "--cache_dir", str(cache))
    assert_rest_serving(srv.http_url, value=2.0)
    assert "is not writable" not in srv.log()
    assert os.listdir(cache), "OpenVINO cached no compiled model in --cache_dir"
    assert srv.stop() == 0, srv.log()
