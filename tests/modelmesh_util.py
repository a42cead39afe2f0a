"""A ModelMesh stand-in for the tests: the calls ModelMesh's ``mm`` container makes on a runtime's management
endpoint (mmesh.ModelRuntime, through ovfast's own generated stubs) and the inference calls it forwards to the
data endpoint (metadata ``mm-model-id``), as spec/modelmesh.md §3 describes them."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import grpc
import numpy as np

import density_models as D
from ovfast._gen.mmesh import model_runtime_pb2 as pb
from ovfast._gen.mmesh import model_runtime_pb2_grpc as pb_grpc

STATUS_POLL_S = 0.2  # ModelMesh polls every 2 s; the tests need not wait that long
READY_WAIT_S = 120.0
LOAD_DEADLINE_S = 120.0


class ModelMesh:
    """The management calls, each with ModelMesh's deadlines where it has one."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.ModelRuntimeStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def status(self) -> pb.RuntimeStatusResponse:
        return self.stub.runtimeStatus(pb.RuntimeStatusRequest(), timeout=10)

    def wait_ready(self) -> tuple[pb.RuntimeStatusResponse, list[str]]:
        """Polls runtimeStatus until READY, as ModelMesh does at start: (the READY answer, every status seen)."""
        seen: list[str] = []
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline:
            try:
                r = self.status()
            except grpc.RpcError as e:  # not listening yet
                seen.append(e.code().name)
                time.sleep(STATUS_POLL_S)
                continue
            seen.append(pb.RuntimeStatusResponse.Status.Name(r.status))
            if r.status == pb.RuntimeStatusResponse.READY:
                return r, seen
            time.sleep(STATUS_POLL_S)
        raise AssertionError(f"runtimeStatus never READY: {seen[-10:]}")

    def load(self, model_id: str, path: str | Path, fmt: str | None = "openvino_ir", **key) -> pb.LoadModelResponse:
        return self.load_future(model_id, path, fmt, **key).result()

    def load_future(self, model_id: str, path: str | Path, fmt: str | None = "openvino_ir", **key):
        if fmt is not None:
            key["model_type"] = {"name": fmt}
        req = pb.LoadModelRequest(modelId=model_id, modelType=f"mt:{fmt or 'unknown'}", modelPath=str(path),
                                  modelKey=json.dumps(key))
        return self.stub.loadModel.future(req, timeout=LOAD_DEADLINE_S)

    def unload(self, model_id: str) -> None:
        self.stub.unloadModel(pb.UnloadModelRequest(modelId=model_id), timeout=LOAD_DEADLINE_S)

    def predict_size(self, model_id: str, path: str | Path, fmt: str = "openvino_ir", **key) -> int:
        key["model_type"] = {"name": fmt}
        req = pb.PredictModelSizeRequest(modelId=model_id, modelPath=str(path), modelKey=json.dumps(key))
        # ModelMesh allows 500 ms; a test must not fail on a busy machine, so the deadline is longer here
        return self.stub.predictModelSize(req, timeout=10).sizeInBytes

    def size(self, model_id: str) -> int:
        return self.stub.modelSize(pb.ModelSizeRequest(modelId=model_id), timeout=30).sizeInBytes


def code_of(call) -> grpc.StatusCode:
    """The status code a call (a callable or a future) failed with; AssertionError if it succeeded."""
    try:
        call() if callable(call) else call.result()
    except grpc.RpcError as e:
        return e.code()
    raise AssertionError("the call succeeded")


def mlp_folder(root: Path, seed: int, hidden: int = 256) -> Path:
    """An IR model as ModelMesh's puller leaves it: ``<root>/mlp<seed>/model.xml`` (+ .bin), no version folder."""
    base = D.build_mlp(root / f"src{seed}", seed, hidden)
    folder = root / f"mlp{seed}"
    (base / "1").rename(folder)
    return folder


def x_in(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(1000 + seed).standard_normal((1, D.IN), dtype=np.float32)


def check_mlp(y: np.ndarray, x: np.ndarray, seed: int, hidden: int = 256) -> None:
    """The answer of the MLP built with ``seed`` (bf16 tolerance, style.md)."""
    np.testing.assert_allclose(y, D.expected(x, seed, hidden), rtol=3e-2, atol=3e-2)


def native_calls(log: str) -> int:
    """Calls served natively, from the gRPC front-ends' shutdown lines (summed over both endpoints)."""
    return sum(int(n) for n in re.findall(r"gRPC calls: (\d+) served natively", log))
