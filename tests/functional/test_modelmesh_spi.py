"""ovfast as a ModelMesh runtime, driven the way ModelMesh drives one (spec/modelmesh.md §3-4; there is no
ModelMesh to run here): runtimeStatus polled until READY, concurrent loadModel calls with ModelMesh-style ids
and modelKey JSON, size queries, inference with ModelMesh's routing metadata through tritonclient (KServe
gRPC) and TF-Serving Predict, unloads, a load cancelled by an immediate unload, reloads, loads beyond the
capacity, and a runtimeStatus after a ModelMesh restart, which purges every model.

The SPI is called with ovfast's own generated stubs (ovfast._gen.mmesh). ovmsclient cannot send gRPC
metadata, so it is used the way ModelMesh's idInjectionPath makes every client look (model_spec.name = the
concrete modelId); Predict with the mm-model-id header is sent with the generated TF-Serving stubs."""
from __future__ import annotations

import concurrent.futures

import grpc
import numpy as np
import ovmsclient
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

import density_models as D
import models as M
from lifecycle_util import wait_until
from modelmesh_util import ModelMesh, check_mlp, code_of, mlp_folder, native_calls, x_in
from ovfast._gen.mmesh import model_runtime_pb2 as pb
from ovfast._gen.tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

GiB = 2**30
IDS = ["mnist-svm__isvc-6b2eb0b8bf", "resnet-a__isvc-0a1b2c3d4e", "flowers__ksp-99f00d1234"]


def mm_server(ovfast_server, tmp_path, *extra: str):
    sock = tmp_path / "mm.sock"
    srv = ovfast_server("--modelmesh", "--modelmesh_endpoint", f"unix:{sock}", *extra)
    return srv, ModelMesh(f"unix:{sock}")


def infer_kserve(srv, x: np.ndarray, model_name: str, headers: dict | None = None) -> np.ndarray:
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        inp = grpcclient.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        return client.infer(model_name, [inp], headers=headers).as_numpy("y")
    finally:
        client.close()


def kserve_error(srv, model_name: str, headers: dict | None = None) -> str:
    with pytest.raises(InferenceServerException) as e:
        infer_kserve(srv, x_in(), model_name, headers)
    return str(e.value.status())


def predict_tfs(srv, x: np.ndarray, model_name: str, metadata: tuple = ()) -> np.ndarray:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model_name
    req.inputs["x"].dtype = 1  # DT_FLOAT
    for d in x.shape:
        req.inputs["x"].tensor_shape.dim.add(size=d)
    req.inputs["x"].tensor_content = x.tobytes()
    with grpc.insecure_channel(srv.grpc_url) as ch:
        resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(req, metadata=metadata, timeout=30)
    y = resp.outputs["y"]
    return np.frombuffer(y.tensor_content, np.float32).reshape([d.size for d in y.tensor_shape.dim])


def test_modelmesh_drives_loads_inference_and_unloads(ovfast_server, tmp_path):
    srv, mm = mm_server(ovfast_server, tmp_path, "--memory_budget", "2GiB")
    ready, seen = mm.wait_ready()
    assert set(seen) <= {"STARTING", "READY", "UNAVAILABLE"}
    assert ready.capacityInBytes == 2 * GiB
    assert ready.maxLoadingConcurrency == 1 and ready.modelLoadingTimeoutMs == 90000
    assert ready.defaultModelSizeInBytes == 128 * 2**20
    assert ready.runtimeVersion.startswith("ovfast-")
    assert not ready.allowAnyMethod and not ready.limitModelConcurrency
    paths = {k: list(v.idInjectionPath) for k, v in ready.methodInfos.items()}
    assert paths["inference.GRPCInferenceService/ModelInfer"] == [1]
    assert paths["tensorflow.serving.PredictionService/Predict"] == [1, 1]

    # three models as the puller leaves them: an IR folder, a folder of numbered versions, one ONNX file
    seeds = {IDS[0]: 1, IDS[1]: 2}
    folders = {IDS[0]: mlp_folder(tmp_path, 1), IDS[1]: D.build_mlp(tmp_path / "versions", 2)}
    onnx_file = M.build_onnx_add(tmp_path / "onnx") / "1" / "model.onnx"
    for model_id, folder in folders.items():
        assert mm.predict_size(model_id, folder) > 0
    futures = {i: mm.load_future(i, p, "openvino_ir", disk_size_bytes=p.stat().st_size) for i, p in folders.items()}
    futures[IDS[2]] = mm.load_future(IDS[2], onnx_file, "onnx")
    sizes = {i: f.result().sizeInBytes for i, f in futures.items()}
    assert all(s > 0 for s in sizes.values()), sizes
    for model_id, size in sizes.items():
        assert mm.size(model_id) == size
        assert mm.predict_size(model_id, onnx_file, "onnx") == size  # measured once: predicted exactly
    # the same id again is harmless: the same answer, nothing loaded twice
    assert mm.load(IDS[0], folders[IDS[0]]).sizeInBytes == sizes[IDS[0]]

    # inference as ModelMesh forwards it: the concrete id in mm-model-id, whatever the message names ...
    x = x_in(1)
    for model_id, seed in seeds.items():
        check_mlp(infer_kserve(srv, x, "the-isvc-name", {"mm-model-id": model_id}), x, seed)
        check_mlp(predict_tfs(srv, x, "the-isvc-name", (("mm-model-id", model_id),)), x, seed)
        # ... and with the id injected into the message (idInjectionPath), as every client then looks
        check_mlp(infer_kserve(srv, x, model_id), x, seed)
        got = ovmsclient.make_grpc_client(srv.grpc_url).predict({"x": x}, model_id)
        check_mlp(got, x, seed)
    # forwarded calls too: the metadata's id reaches the Python handlers in the message
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    assert client.get_model_metadata("the-isvc-name", headers={"mm-model-id": IDS[0]}).name == IDS[0]
    assert client.is_model_ready("the-isvc-name", headers={"mm-model-id": IDS[1]})
    with pytest.raises(InferenceServerException, match="NOT_FOUND|not found"):
        client.is_model_ready(IDS[0], headers={"mm-model-id": "gone__isvc-0000000000"})
    client.close()
    check_mlp(predict_tfs(srv, x, "the-isvc-name", (("mm-model-id-bin", IDS[1].encode()),)), x, 2)  # binary form
    check_mlp(infer_kserve(srv, x, "ignored", {"mm-vmodel-id": IDS[1]}), x, 2)
    check_mlp(infer_kserve(srv, x, "ignored", {"mm-model-id": IDS[0], "mm-vmodel-id": IDS[1]}), x, 1)
    onnx_out = infer_kserve_onnx(srv, IDS[2])
    np.testing.assert_allclose(onnx_out, np.arange(10, dtype=np.float32).reshape(1, 10) + 1, rtol=2e-2)

    # an unknown model is NOT_FOUND, and nothing else
    assert "NOT_FOUND" in kserve_error(srv, "anything", {"mm-model-id": "gone__isvc-0000000000"})
    assert "NOT_FOUND" in kserve_error(srv, "gone__isvc-0000000000")

    # unload: memory released, the model is NOT_FOUND; unknown ids are fine; a reload serves again
    mm.unload(IDS[0])
    assert "NOT_FOUND" in kserve_error(srv, "x", {"mm-model-id": IDS[0]})
    assert code_of(lambda: mm.size(IDS[0])) == grpc.StatusCode.NOT_FOUND
    mm.unload(IDS[0])
    mm.unload("never-loaded__isvc-1111111111")
    assert mm.predict_size(IDS[0], folders[IDS[0]]) == sizes[IDS[0]]
    assert mm.load(IDS[0], folders[IDS[0]]).sizeInBytes > 0
    check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": IDS[0]}), x, 1)
    check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": IDS[1]}), x, 2)  # never unloaded by ovfast

    # ModelMesh restarted: runtimeStatus purges every model before it says READY again
    assert mm.status().status == pb.RuntimeStatusResponse.STARTING
    mm.wait_ready()
    for model_id in IDS:
        assert "NOT_FOUND" in kserve_error(srv, "x", {"mm-model-id": model_id})
        assert code_of(lambda i=model_id: mm.size(i)) == grpc.StatusCode.NOT_FOUND
    mm.close()
    assert srv.stop() == 0
    assert native_calls(srv.log()) >= 10  # header-routed inference ran natively, not through Python


def infer_kserve_onnx(srv, model_id: str) -> np.ndarray:
    client = grpcclient.InferenceServerClient(srv.grpc_url)
    try:
        inp = grpcclient.InferInput("b", [1, 10], "FP32")
        inp.set_data_from_numpy(np.arange(10, dtype=np.float32).reshape(1, 10))
        return client.infer("isvc", [inp], headers={"mm-model-id": model_id}).as_numpy("a")
    finally:
        client.close()


def test_bad_loads_are_refused_and_the_runtime_keeps_serving(ovfast_server, tmp_path):
    srv, mm = mm_server(ovfast_server, tmp_path, "--memory_budget", "1GiB")
    mm.wait_ready()
    good = mlp_folder(tmp_path, 3)
    mm.load("good__isvc-0000000001", good)
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    precondition = grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(mm.load_future("", good)) == invalid
    req = pb.LoadModelRequest(modelId="m__isvc-0000000002", modelPath=str(good), modelKey="{not json")
    assert code_of(lambda: mm.stub.loadModel(req, timeout=30)) == invalid
    assert code_of(mm.load_future("m__isvc-0000000003", good, "sklearn")) == invalid
    assert code_of(mm.load_future("m__isvc-0000000004", tmp_path / "missing")) == precondition
    assert code_of(mm.load_future("m__isvc-0000000005", good, "onnx")) == precondition  # no ONNX file there
    empty = tmp_path / "empty"
    empty.mkdir()
    assert code_of(mm.load_future("m__isvc-0000000006", empty, None)) == precondition
    # a damaged model: the load is attempted and fails; nothing of it stays
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.xml").write_text("<net>not a model")
    (broken / "model.bin").write_bytes(b"\0" * 16)
    assert code_of(mm.load_future("m__isvc-0000000007", broken)) not in (grpc.StatusCode.OK, invalid)
    assert mm.load("m__isvc-0000000008", mlp_folder(tmp_path, 4)).sizeInBytes > 0  # loads still work
    x = x_in(2)
    check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": "good__isvc-0000000001"}), x, 3)
    check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": "m__isvc-0000000008"}), x, 4)
    assert "NOT_FOUND" in kserve_error(srv, "x", {"mm-model-id": "m__isvc-0000000007"})
    mm.close()


def test_load_cancelled_by_an_immediate_unload(ovfast_server, tmp_path):
    """ModelMesh cancels a load that takes too long and at once sends unloadModel: once the unload returns the
    model is not loaded, whatever stage the load had reached; loading it again works."""
    srv, mm = mm_server(ovfast_server, tmp_path, "--memory_budget", "2GiB")
    mm.wait_ready()
    big = mlp_folder(tmp_path, 5, hidden=16384)
    for attempt in range(3):
        model_id = f"big__isvc-00000000{attempt:02d}"
        future = mm.load_future(model_id, big)
        wait_until(lambda i=model_id: f"ModelMesh: loading model {i}" in srv.log(), "the load to start", srv)
        future.cancel()  # ModelMesh's timeout: the call is cancelled ...
        mm.unload(model_id)  # ... and unloadModel sent right away
        assert "NOT_FOUND" in kserve_error(srv, "x", {"mm-model-id": model_id})
        assert code_of(lambda i=model_id: mm.size(i)) == grpc.StatusCode.NOT_FOUND
    # ModelMesh restarting while a load is under way: the purge undoes that load too before READY
    future = mm.load_future("purged__isvc-0000000000", big)
    wait_until(lambda: "ModelMesh: loading model purged__isvc-0000000000" in srv.log(), "the load to start", srv)
    assert mm.status().status == pb.RuntimeStatusResponse.STARTING
    mm.wait_ready()
    assert "NOT_FOUND" in kserve_error(srv, "x", {"mm-model-id": "purged__isvc-0000000000"})
    try:  # the load either finished before the purge (then the purge unloaded it) or was stopped by it
        future.result()
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.CANCELLED, e.details()
    assert mm.load("big__isvc-0000000099", big).sizeInBytes > 0
    x = x_in(3)
    check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": "big__isvc-0000000099"}), x, 5, hidden=16384)
    mm.close()


def test_loads_beyond_capacity_are_refused_and_nothing_is_evicted(ovfast_server, tmp_path):
    srv, mm = mm_server(ovfast_server, tmp_path, "--memory_budget", "96MiB")
    ready, _ = mm.wait_ready()
    assert ready.capacityInBytes == 96 * 2**20
    # a model predicted larger than the whole capacity is refused before anything is read
    assert code_of(mm.load_future("huge__isvc-0000000000", mlp_folder(tmp_path, 9),
                                  disk_size_bytes=10 * GiB)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    hidden = 16384  # ~4.5 MB of weights each
    loaded: list[tuple[str, int]] = []
    refused = None
    for seed in range(10, 40):
        model_id = f"m{seed}__isvc-{seed:010d}"
        try:
            loaded.append((model_id, mm.load(model_id, mlp_folder(tmp_path, seed, hidden)).sizeInBytes))
        except grpc.RpcError as e:
            refused = (model_id, seed, e)
            break
    assert refused is not None, "the capacity never ran out"
    assert refused[2].code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused[2].details()
    assert loaded and sum(s for _, s in loaded) <= ready.capacityInBytes
    x = x_in(4)
    for model_id, _ in loaded:  # every model loaded before stays loaded: ModelMesh evicts, not ovfast
        seed = int(model_id[1:3])
        check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": model_id}), x, seed, hidden)
    # ModelMesh makes room by unloading (two models: the refused one's prediction may exceed one's size); then
    # the refused model loads
    assert len(loaded) >= 2
    mm.unload(loaded[0][0])
    mm.unload(loaded[1][0])
    model_id, seed, _ = refused
    assert mm.load(model_id, tmp_path / f"mlp{seed}").sizeInBytes > 0
    check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": model_id}), x, seed, hidden)
    mm.close()


def test_concurrent_loads_reserve_capacity_atomically(ovfast_server, tmp_path):
    """With maxLoadingConcurrency 4, loads sent together cannot all take the last free bytes: those that
    would not fit together are refused RESOURCE_EXHAUSTED, the rest load, and the total stays in capacity."""
    srv, mm = mm_server(ovfast_server, tmp_path, "--memory_budget", "96MiB",
                        "--modelmesh_loading_concurrency", "4")
    ready, _ = mm.wait_ready()
    assert ready.maxLoadingConcurrency == 4
    hidden = 16384
    folders = {f"c{seed}__isvc-{seed:010d}": mlp_folder(tmp_path, seed, hidden) for seed in range(40, 52)}
    key = {"disk_size_bytes": 30 * 2**20}
    with concurrent.futures.ThreadPoolExecutor(len(folders)) as pool:
        outcome = dict(zip(folders, pool.map(lambda kv: _try_load(mm, kv[0], kv[1], key), folders.items())))
    ok = [i for i, r in outcome.items() if r == "OK"]
    # each is predicted at >= 30 MiB until loaded (measured far smaller): without an atomic reservation all
    # twelve would pass the check together and load
    assert ok and len(ok) < len(folders), outcome
    assert all(r in ("OK", "RESOURCE_EXHAUSTED") for r in outcome.values()), outcome
    x = x_in(5)
    for model_id in ok:
        check_mlp(infer_kserve(srv, x, "x", {"mm-model-id": model_id}), x, int(model_id[1:3]), hidden)
    mm.close()


def _try_load(mm: ModelMesh, model_id: str, folder, key: dict) -> str:
    try:
        mm.load(model_id, folder, **key)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def test_environment_turns_modelmesh_on_with_a_tcp_endpoint(ovfast_server, tmp_path, monkeypatch):
    """The variables of a ModelMesh pod alone make ovfast a ModelMesh runtime: management port from
    INTERNAL_GRPC_PORT, capacity = CONTAINER_MEM_REQ_BYTES - MEM_BUFFER_BYTES, LOADING_CONCURRENCY, LOADTIME_TIMEOUT,
    and LIMIT_PER_MODEL_CONCURRENCY (limitModelConcurrency, each model's maxConcurrency)."""
    from conftest import free_ports

    (port,) = free_ports(1)
    monkeypatch.setenv("INTERNAL_GRPC_PORT", str(port))
    monkeypatch.setenv("CONTAINER_MEM_REQ_BYTES", str(3 * GiB))
    monkeypatch.setenv("MEM_BUFFER_BYTES", str(256 * 2**20))
    monkeypatch.setenv("LOADING_CONCURRENCY", "2")
    monkeypatch.setenv("LOADTIME_TIMEOUT", "45000")
    monkeypatch.setenv("LIMIT_PER_MODEL_CONCURRENCY", "4")
    srv = ovfast_server()
    mm = ModelMesh(f"127.0.0.1:{port}")
    ready, _ = mm.wait_ready()
    assert ready.capacityInBytes == 3 * GiB - 256 * 2**20
    assert (ready.maxLoadingConcurrency, ready.modelLoadingTimeoutMs) == (2, 45000)
    assert ready.limitModelConcurrency
    assert mm.load("env__isvc-0123456789", mlp_folder(tmp_path, 6)).maxConcurrency == 4
    x = x_in(6)
    check_mlp(infer_kserve(srv, x, "env__isvc-0123456789"), x, 6)
    # the management port serves the SPI only: inference there is UNIMPLEMENTED
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    inp = grpcclient.InferInput("x", [1, D.IN], "FP32")
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException) as e:
        client.infer("env__isvc-0123456789", [inp])
    assert "UNIMPLEMENTED" in str(e.value.status())
    client.close()
    mm.close()


def test_one_unix_socket_for_management_and_inference(ovfast_server, tmp_path):
    """ModelMesh prefers a Unix socket for the data endpoint and allows it to be the management endpoint too:
    one server then answers the SPI and inference; --port keeps serving inference beside it."""
    sock = tmp_path / "ovfast.sock"
    srv = ovfast_server("--modelmesh", "--memory_budget", "1GiB", "--modelmesh_endpoint", f"unix:{sock}",
                        "--modelmesh_data_endpoint", f"unix:{sock}")
    mm = ModelMesh(f"unix:{sock}")
    mm.wait_ready()
    mm.load("uds__isvc-0123456789", mlp_folder(tmp_path, 8))
    x = x_in(8)
    client = grpcclient.InferenceServerClient(f"unix:{sock}")
    inp = grpcclient.InferInput("x", [1, D.IN], "FP32")
    inp.set_data_from_numpy(x)
    check_mlp(client.infer("isvc", [inp], headers={"mm-model-id": "uds__isvc-0123456789"}).as_numpy("y"), x, 8)
    client.close()
    check_mlp(infer_kserve(srv, x, "uds__isvc-0123456789"), x, 8)
    mm.close()
