"""Models served from Google Cloud Storage: gcp-storage-emulator (the GCS JSON API) on loopback, reached
through STORAGE_EMULATOR_HOST; OpenVINO IR models uploaded to it; inference through tritonclient."""
from __future__ import annotations

import numpy as np
import pytest

import models as M
from lifecycle_util import states, wait_until, write_config
from storage_util import ADD_IN, infer_add, ready_error, start_gcs


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    server = start_gcs(tmp_path_factory.mktemp("gcs"))
    yield server
    server.stop()


def test_gs_models_follow_remote_versions_and_fail_alone(gcs, monkeypatch, ovfast_server, tmp_path):
    gcs.make_bucket("models")
    M.build_add(tmp_path / "v1", version=1, addend=1.0)
    gcs.upload(tmp_path / "v1", "models", "repo/add")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    local = M.build_add(tmp_path / "local", version=1, addend=5.0)
    cache = tmp_path / "cache"
    config = write_config(tmp_path / "config.json", [
        {"name": "add", "base_path": "gs://models/repo/add", "model_version_policy": {"all": {}}},
        {"name": "missing_bucket", "base_path": "gs://no-such-bucket/add"},
        {"name": "local", "base_path": str(local)},
    ])
    srv = ovfast_server("--config_path", str(config), "--storage_cache_dir", str(cache),
                        "--file_system_poll_wait_seconds", "1")
    np.testing.assert_array_equal(infer_add(srv, "add"), ADD_IN + 1)
    np.testing.assert_array_equal(infer_add(srv, "local"), ADD_IN + 5)
    err = ready_error(srv, "missing_bucket")
    assert "gs://no-such-bucket/add" in err and "not found" in err, err
    assert states(srv)["missing_bucket"] == {}

    M.build_add(tmp_path / "v2", version=2, addend=2.0)
    gcs.upload(tmp_path / "v2", "models", "repo/add")
    wait_until(lambda: states(srv)["add"].get("2") == "AVAILABLE", "version 2 from GCS", srv)
    np.testing.assert_array_equal(infer_add(srv, "add"), ADD_IN + 2)

    gcs.delete("models", "repo/add/1")
    wait_until(lambda: states(srv)["add"] == {"2": "AVAILABLE", "1": "END"}, "version 1 retired", srv)
    assert sorted(p.name for p in cache.glob("*/*") if p.is_dir()) == ["2"]
    np.testing.assert_array_equal(infer_add(srv, "local"), ADD_IN + 5)


def test_corrupted_download_is_never_loaded(monkeypatch, ovfast_server, tmp_path):
    """The store serves bytes that do not match the MD5 it lists (the object was damaged behind its back):
    the version is not loaded and says why; once the object is whole again it is downloaded and served."""
    gcs = start_gcs(tmp_path, in_memory=False)
    try:
        gcs.make_bucket("models")
        M.build_add(tmp_path / "v1", version=1, addend=1.0)
        gcs.upload(tmp_path / "v1", "models", "add")
        (stored,) = [p for p in (tmp_path / ".cloudstorage").rglob("*model.bin*") if p.is_file()]
        good = stored.read_bytes()
        stored.write_bytes(bytes(b ^ 0xFF for b in good))  # same size, other bytes
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        cache = tmp_path / "cache"
        srv = ovfast_server("--model_name", "add", "--model_path", "gs://models/add",
                            "--storage_cache_dir", str(cache), "--file_system_poll_wait_seconds", "1")
        assert states(srv)["add"] == {"1": "LOADING"}
        assert "gs://models/add/1/model.bin: checksum mismatch" in srv.log()
        assert not [p for p in cache.rglob("*") if p.is_dir() and p.name == "1"]  # nothing half-made in place

        stored.write_bytes(good)
        wait_until(lambda: states(srv)["add"] == {"1": "AVAILABLE"}, "the repaired version", srv)
        np.testing.assert_array_equal(infer_add(srv, "add"), ADD_IN + 1)
    finally:
        gcs.stop()
