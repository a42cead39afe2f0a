"""Which URI, credentials and client a remote base path gets (storage_access), and Azure end to end as far
as this machine allows: there is no Azure Blob emulator on PyPI (Azurite is an npm package), so the az://
models here point at a closed loopback port or lack credentials, and the tests check that each gets a
clear, secret-free error while the models beside it serve."""
from __future__ import annotations

import json

import numpy as np
import pytest

import models as M
from conftest import free_ports
from lifecycle_util import states, write_config
from ovfast.repository.storage_access import (
    RemoteURI, StorageError, access_for, parse_uri, pick_entry, read_storage_config,
)
from storage_util import ADD_IN, infer_add, ready_error

ACCOUNT_KEY = "c2VjcmV0LWF6dXJlLWFjY291bnQta2V5LWZvci10ZXN0cw=="


def test_uris():
    assert parse_uri("s3://bucket/a/b/") == RemoteURI("s3", "bucket", "a/b")
    assert parse_uri("gs://bucket") == RemoteURI("gs", "bucket", "")
    u = parse_uri("az://container/models/resnet")
    assert (u.url, u.root, u.child(3).url) == ("az://container/models/resnet", "container/models/resnet",
                                               "az://container/models/resnet/3")
    for bad, why in (("s3://", "no bucket"), ("azfs://share/m", "file shares"), ("ftp://h/m", "unsupported")):
        with pytest.raises(StorageError, match=why):
            parse_uri(bad)


def test_ovms_environment_variables():
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "AWS_SESSION_TOKEN": "tok-123",
           "AWS_REGION": "eu-west-1", "S3_ENDPOINT": "minio:9000", "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
           "AZURE_STORAGE_CONNECTION_STRING": f"AccountName=acc;AccountKey={ACCOUNT_KEY}"}
    s3 = access_for(parse_uri("s3://b/m"), {}, env=env)
    assert (s3.protocol, s3.source) == ("s3", "environment")
    assert {k: s3.options[k] for k in ("key", "secret", "token", "endpoint_url")} == {
        "key": "AKIAEXAMPLE", "secret": "s3cr3t-value", "token": "tok-123", "endpoint_url": "https://minio:9000"}
    assert s3.options["client_kwargs"] == {"region_name": "eu-west-1"}
    assert s3.options["config_kwargs"]["connect_timeout"] > 0
    assert s3.scrub("key s3cr3t-value and tok-123") == "key *** and ***"
    gs = access_for(parse_uri("gs://b/m"), {}, env=env)
    assert (gs.protocol, gs.options["token"]) == ("gcs", "/keys/sa.json")
    az = access_for(parse_uri("az://c/m"), {}, env=env)
    assert az.protocol == "abfs" and az.options["connection_string"].endswith(ACCOUNT_KEY)
    assert ACCOUNT_KEY not in az.scrub(f"failed with {env['AZURE_STORAGE_CONNECTION_STRING']}")
    with pytest.raises(StorageError, match="no Azure credentials.*AZURE_STORAGE_CONNECTION_STRING"):
        access_for(parse_uri("az://c/m"), {}, env={})


def test_storage_config_folder(tmp_path):
    entries = {
        "minio": {"type": "s3", "bucket": "mm-models", "endpoint_url": "http://minio:9000",
                  "access_key_id": "mk", "secret_access_key": "ms", "region": "us-south"},
        "default_s3": {"type": "s3", "access_key_id": "dk", "secret_access_key": "ds"},
        "blobs": {"type": "azure", "container": "c1", "connection_string": f"AccountName=a;AccountKey={ACCOUNT_KEY}"},
        "gcs": {"type": "gcs", "bucket": "g", "private_key": "-----BEGIN PRIVATE KEY-----x", "client_email": "sa@p"},
    }
    for name, e in entries.items():
        (tmp_path / name).write_text(json.dumps(e))
    (tmp_path / "..data").mkdir()  # a mounted Secret's bookkeeping is not a key
    (tmp_path / "notes").write_text('["no type"]')
    read = read_storage_config(tmp_path)
    assert read == entries
    env = {"AWS_ACCESS_KEY_ID": "envk", "AWS_SECRET_ACCESS_KEY": "envs"}
    by_bucket = access_for(parse_uri("s3://mm-models/x"), read, env=env)
    assert (by_bucket.source, by_bucket.options["key"], by_bucket.options["endpoint_url"]) == (
        "storage-config key 'minio'", "mk", "http://minio:9000")
    assert by_bucket.options["client_kwargs"] == {"region_name": "us-south"}
    assert access_for(parse_uri("s3://other/x"), read, env=env).options["key"] == "dk"  # default_s3
    assert access_for(parse_uri("s3://other/x"), {}, env=env).options["key"] == "envk"
    assert access_for(parse_uri("s3://mm-models/x"), read, key="default_s3", env=env).options["key"] == "dk"
    assert access_for(parse_uri("az://c1/m"), read, env={}).source == "storage-config key 'blobs'"
    token = access_for(parse_uri("gs://g/m"), read, env={}).options["token"]
    assert token["type"] == "service_account" and token["client_email"] == "sa@p"
    with pytest.raises(StorageError, match="no key 'nope'"):
        pick_entry(read, parse_uri("s3://b/m"), "nope")
    with pytest.raises(StorageError, match="of type 'azure', not 's3'"):
        pick_entry(read, parse_uri("s3://b/m"), "blobs")


def test_azure_models_fail_alone(monkeypatch, ovfast_server, tmp_path):
    (closed_port,) = free_ports(1)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
                       f"BlobEndpoint=http://127.0.0.1:{closed_port}/devstoreaccount1;")
    cfg_dir = tmp_path / "storage-config"
    cfg_dir.mkdir()
    (cfg_dir / "nocreds").write_text(json.dumps({"type": "azure", "container": "nocreds"}))
    local = M.build_add(tmp_path / "local", version=1, addend=5.0)
    config = write_config(tmp_path / "config.json", [
        {"name": "unreachable", "base_path": "az://models/add"},
        {"name": "no_credentials", "base_path": "az://nocreds/add"},
        {"name": "file_share", "base_path": "azfs://share/add"},
        {"name": "local", "base_path": str(local)},
    ])
    srv = ovfast_server("--config_path", str(config), "--storage_config_dir", str(cfg_dir),
                        "--file_system_poll_wait_seconds", "1")
    np.testing.assert_array_equal(infer_add(srv, "local"), ADD_IN + 5)
    st = states(srv)
    for model, expected in (("unreachable", "az://models/add: listing version folders: request failed"),
                            ("no_credentials", "az://nocreds/add: no Azure credentials"),
                            ("file_share", "azfs://share/add: Azure file shares (azfs://) are not served")):
        assert st[model] == {}, (model, st)
        assert expected in ready_error(srv, model), (model, ready_error(srv, model))
        assert expected in srv.log()
    assert ACCOUNT_KEY not in srv.log()
