"""Models served from S3: a real S3-compatible server (moto, credentials checked through IAM) on loopback,
OpenVINO IR models uploaded to it, ovfast started with OVMS's variables or a ModelMesh storage-config folder,
inference through tritonclient over KServe gRPC and REST."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import models as M
from conftest import free_ports
from lifecycle_util import rest, states, wait_until, write_config
from storage_util import ADD_IN, infer_add, ready_error, start_moto


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def no_aws_env(monkeypatch, tmp_path):
    """Nothing from this machine's AWS setup reaches the servers the test starts."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                "AWS_DEFAULT_REGION", "S3_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def _add_model(tmp: Path, version: int, addend: float) -> Path:
    folder = tmp / f"add-{version}-{addend}"
    M.build_add(folder, version=version, addend=addend)
    return folder


def _cached_versions(cache: Path) -> set[str]:
    return {p.name for p in cache.glob("*/*") if p.is_dir() and not p.name.startswith(".")}


def test_model_path_on_s3_follows_remote_versions(s3, no_aws_env, ovfast_server, tmp_path):
    s3.client().create_bucket(Bucket="models")
    s3.upload(_add_model(tmp_path, 1, 1.0), "models", "repo/add")
    no_aws_env.setenv("AWS_ACCESS_KEY_ID", s3.key)
    no_aws_env.setenv("AWS_SECRET_ACCESS_KEY", s3.secret)
    no_aws_env.setenv("AWS_REGION", "us-east-1")
    no_aws_env.setenv("S3_ENDPOINT", s3.url)
    cache = tmp_path / "cache"
    srv = ovfast_server("--model_name", "add", "--model_path", "s3://models/repo/add",
                        "--model_version_policy", '{"all": {}}', "--file_system_poll_wait_seconds", "1",
                        "--storage_cache_dir", str(cache))
    np.testing.assert_array_equal(infer_add(srv, "add"), ADD_IN + 1)
    assert _cached_versions(cache) == {"1"}

    # a version uploaded to the bucket is found by polling, downloaded and served
    s3.upload(_add_model(tmp_path, 2, 2.0), "models", "repo/add")
    wait_until(lambda: states(srv)["add"].get("2") == "AVAILABLE", "version 2 from S3", srv)
    np.testing.assert_array_equal(infer_add(srv, "add"), ADD_IN + 2)
    np.testing.assert_array_equal(infer_add(srv, "add", "1"), ADD_IN + 1)
    assert _cached_versions(cache) == {"1", "2"}

    # a version deleted from the bucket is retired, and its cached copy removed
    s3.delete("models", "repo/add/1")
    wait_until(lambda: states(srv)["add"] == {"2": "AVAILABLE", "1": "END"}, "version 1 retired", srv)
    assert _cached_versions(cache) == {"2"}
    np.testing.assert_array_equal(infer_add(srv, "add"), ADD_IN + 2)
    assert s3.secret not in srv.log()


def test_bad_remote_models_fail_alone(s3, no_aws_env, ovfast_server, tmp_path):
    """Wrong credentials, missing credentials, a missing bucket and an unreachable endpoint each give
    their model a clear error; the S3 and local models beside them serve; a fixed bucket is picked up."""
    admin = s3.client()
    for bucket in ("good", "locked", "public"):
        admin.create_bucket(Bucket=bucket)
        s3.upload(_add_model(tmp_path, 1, 1.0), bucket, "add")
    (closed_port,) = free_ports(1)
    cfg_dir = tmp_path / "storage-config"
    cfg_dir.mkdir()
    entries = {
        "good": {"type": "s3", "bucket": "good", "endpoint_url": s3.url, "region": "us-east-1",
                 "access_key_id": s3.key, "secret_access_key": s3.secret},
        "locked": {"type": "s3", "bucket": "locked", "endpoint_url": s3.url,
                   "access_key_id": "AKIAWRONGWRONGWRONG", "secret_access_key": "not-the-secret-at-all"},
        "later": {"type": "s3", "bucket": "later", "endpoint_url": s3.url,
                  "access_key_id": s3.key, "secret_access_key": s3.secret},
        "faraway": {"type": "s3", "bucket": "faraway", "endpoint_url": f"http://127.0.0.1:{closed_port}",
                    "access_key_id": s3.key, "secret_access_key": s3.secret},
    }
    for name, e in entries.items():
        (cfg_dir / name).write_text(json.dumps(e))
    (cfg_dir / "broken").write_text("{not json")
    no_aws_env.setenv("S3_ENDPOINT", s3.url)  # "public" has no storage-config entry and no credentials
    local = M.build_add(tmp_path / "local", version=1, addend=5.0)
    config = write_config(tmp_path / "config.json", [
        {"name": "good", "base_path": "s3://good/add"},
        {"name": "wrong_credentials", "base_path": "s3://locked/add"},
        {"name": "no_credentials", "base_path": "s3://public/add"},
        {"name": "missing_bucket", "base_path": "s3://later/add"},
        {"name": "unreachable", "base_path": "s3://faraway/add"},
        {"name": "local", "base_path": str(local)},
    ])
    srv = ovfast_server("--config_path", str(config), "--storage_config_dir", str(cfg_dir),
                        "--storage_cache_dir", str(tmp_path / "cache"), "--file_system_poll_wait_seconds", "1")
    np.testing.assert_array_equal(infer_add(srv, "good"), ADD_IN + 1)
    np.testing.assert_array_equal(infer_add(srv, "local"), ADD_IN + 5)
    st = states(srv)
    expected = {
        "wrong_credentials": ("s3://locked/add", "access denied"),
        # real S3 answers AccessDenied; moto answers an unsigned request with 500 when it checks credentials
        "no_credentials": ("s3://public/add", "(environment, no credentials found: anonymous)"),
        "missing_bucket": ("s3://later/add", "not found"),
        "unreachable": ("s3://faraway/add", "request failed"),
    }
    for model, (uri, reason) in expected.items():
        assert st[model] == {}, (model, st)
        err = ready_error(srv, model)
        assert uri in err and reason in err, (model, err)
        assert f"Model {model}: {uri}: listing version folders: " in srv.log() and reason in srv.log()
    log = srv.log()
    assert "not-the-secret-at-all" not in log and s3.secret not in log
    assert "broken" in log and "not a readable JSON file" in log

    # the missing bucket appears: the next poll serves it; the others still serve
    admin.create_bucket(Bucket="later")
    s3.upload(_add_model(tmp_path, 1, 3.0), "later", "add")
    wait_until(lambda: states(srv)["missing_bucket"] == {"1": "AVAILABLE"}, "the new bucket's model", srv)
    np.testing.assert_array_equal(infer_add(srv, "missing_bucket"), ADD_IN + 3)
    np.testing.assert_array_equal(infer_add(srv, "good"), ADD_IN + 1)
    assert rest(srv, "GET", "/v2/health/ready")[0] == 200


def test_changed_remote_files_are_downloaded_again(s3, no_aws_env, ovfast_server, tmp_path):
    """A version whose files change in the bucket is fetched again (new stamp) and, as for a local folder,
    a changed mapping_config.json reloads it."""
    s3.client().create_bucket(Bucket="remap")
    s3.upload(_add_model(tmp_path, 1, 1.0), "remap", "add")
    for var, value in (("AWS_ACCESS_KEY_ID", s3.key), ("AWS_SECRET_ACCESS_KEY", s3.secret), ("S3_ENDPOINT", s3.url)):
        no_aws_env.setenv(var, value)
    srv = ovfast_server("--model_name", "add", "--model_path", "s3://remap/add",
                        "--storage_cache_dir", str(tmp_path / "cache"), "--file_system_poll_wait_seconds", "1")
    np.testing.assert_array_equal(infer_add(srv, "add"), ADD_IN + 1)
    s3.client().put_object(Bucket="remap", Key="add/1/mapping_config.json",
                           Body=json.dumps({"inputs": {"b": "x"}, "outputs": {"a": "y"}}).encode())

    def renamed() -> bool:
        code, doc = rest(srv, "GET", "/v2/models/add")
        return code == 200 and [i["name"] for i in doc["inputs"]] == ["x"]

    wait_until(renamed, "the mapping from S3 to apply", srv)
    assert "Model cache: downloaded s3://remap/add/1 (3 files" in srv.log()
    started = time.monotonic()
    while time.monotonic() - started < 3:  # three more polls: nothing changes, nothing is downloaded again
        time.sleep(0.5)
    assert srv.log().count("Model cache: downloaded s3://remap/add/1") == 2


def test_model_folder_or_file_for_modelmesh(s3, no_aws_env, tmp_path):
    """Storage.fetch_model (what a ModelMesh loadModel with an s3:// modelPath calls): a whole remote folder,
    or a single model file, as a local folder; release_model deletes it."""
    import asyncio

    from ovfast.repository.storage import Storage

    s3.client().create_bucket(Bucket="mm-models")
    src = _add_model(tmp_path, 1, 1.0) / "1"
    s3.upload(src, "mm-models", "models/add-abc")
    s3.upload(src, "mm-models", "models/add-abc-other")  # shares the prefix: must not leak in
    s3.client().upload_file(str(src / "model.xml"), "mm-models", "files/model.xml")
    cfg_dir = tmp_path / "storage-config"
    cfg_dir.mkdir()
    (cfg_dir / "localMinIO").write_text(json.dumps({"type": "s3", "bucket": "mm-models", "endpoint_url": s3.url,
                                                    "access_key_id": s3.key, "secret_access_key": s3.secret}))
    storage = Storage(tmp_path / "cache", cfg_dir)
    local = Path(asyncio.run(storage.fetch_model("s3://mm-models/models/add-abc", "localMinIO")))
    assert sorted(p.name for p in local.iterdir()) == ["model.bin", "model.xml"]
    assert (local / "model.bin").read_bytes() == (src / "model.bin").read_bytes()
    single = Path(asyncio.run(storage.fetch_model("s3://mm-models/files/model.xml")))
    assert [p.name for p in single.iterdir()] == ["model.xml"]
    storage.release_model("s3://mm-models/models/add-abc")
    assert not local.exists() and single.exists()
    with pytest.raises(OSError, match="Directory does not exist or is empty: s3://mm-models/models/missing"):
        asyncio.run(storage.fetch_model("s3://mm-models/models/missing"))
