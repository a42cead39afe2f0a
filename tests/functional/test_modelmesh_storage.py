"""ModelMesh with its storage helper off: loadModel gets the InferenceService's storage path and ovfast fetches the
model itself from a real S3-compatible server (moto, credentials checked) on loopback: an ``s3://`` URI with
OVMS's variables, and a path relative to a storage-config key's bucket, as ModelMesh passes it. The download
is cached while the model is loaded and removed when it is unloaded; a missing object is FAILED_PRECONDITION
and leaves the loaded models serving."""
from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

import models as M
from modelmesh_util import ModelMesh, check_mlp, code_of, mlp_folder, x_in
from storage_util import ADD_IN, start_moto


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def _cached(cache: Path) -> list[str]:
    return sorted(p.parent.name for p in cache.glob("*/model") if p.is_dir())


def _infer(srv, model_id: str, name: str, x: np.ndarray, out: str) -> np.ndarray:
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        inp = grpcclient.InferInput(name, list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        return client.infer("isvc", [inp], headers={"mm-model-id": model_id}).as_numpy(out)
    finally:
        client.close()


def test_models_fetched_from_s3_by_the_runtime(s3, ovfast_server, tmp_path, monkeypatch):
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("S3_ENDPOINT", s3.url)
    s3.client().create_bucket(Bucket="mm-models")
    s3.upload(mlp_folder(tmp_path, 7), "mm-models", "ir/mlp7")
    s3.upload(M.build_onnx_add(tmp_path / "onnx") / "1", "mm-models", "onnx")
    # ModelMesh's storage-config Secret, mounted as a folder: one JSON file per key
    cfg_dir = tmp_path / "storage-config"
    cfg_dir.mkdir()
    (cfg_dir / "localMinIO").write_text(json.dumps({
        "type": "s3", "access_key_id": s3.key, "secret_access_key": s3.secret, "endpoint_url": s3.url,
        "bucket": "mm-models", "region": "us-east-1"}))
    cache = tmp_path / "cache"
    sock = tmp_path / "mm.sock"
    srv = ovfast_server("--modelmesh", "--modelmesh_endpoint", f"unix:{sock}", "--memory_budget", "1GiB",
                        "--storage_cache_dir", str(cache), "--storage_config_dir", str(cfg_dir))
    mm = ModelMesh(f"unix:{sock}")
    mm.wait_ready()

    ir_id, onnx_id = "mlp7__isvc-7777777777", "add__isvc-aaaaaaaaaa"
    assert mm.load(ir_id, "s3://mm-models/ir/mlp7").sizeInBytes > 0
    # storage helper off: the InferenceService's path within the storage key's bucket, as ModelMesh passes it
    assert mm.load(onnx_id, "onnx/model.onnx", "onnx", storage_key="localMinIO").sizeInBytes > 0
    x = x_in(7)
    check_mlp(_infer(srv, ir_id, "x", x, "y"), x, 7)
    np.testing.assert_allclose(_infer(srv, onnx_id, "b", ADD_IN, "a"), ADD_IN + 1, rtol=2e-2)
    assert len(_cached(cache)) == 2

    # nothing there: refused before anything loads; the loaded models keep serving
    missing = mm.load_future("gone__isvc-0000000000", "s3://mm-models/no/such/model")
    assert code_of(missing) == grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(mm.load_future("nokey__isvc-0000000000", "onnx/model.onnx", "onnx",
                                  storage_key="unknownKey")) == grpc.StatusCode.FAILED_PRECONDITION
    check_mlp(_infer(srv, ir_id, "x", x, "y"), x, 7)

    # unloading removes the cached download; loading again fetches it again
    mm.unload(ir_id)
    assert len(_cached(cache)) == 1
    mm.unload(onnx_id)
    assert _cached(cache) == []
    assert mm.load(ir_id, "s3://mm-models/ir/mlp7").sizeInBytes > 0
    check_mlp(_infer(srv, ir_id, "x", x, "y"), x, 7)
    mm.close()
    assert s3.secret not in srv.log()
