"""The gRPC transport floors (bench/floors/): both replay canned answers to real KServe clients.

The canned answers here are messages built with Triton's protobuf classes and written the way
``bench.floors.canned.capture`` writes ovfast's; each floor is started as the bench starts it and
asked through ``tritonclient.grpc``. No timing is looked at.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICE = "/inference.GRPCInferenceService/"


@pytest.fixture()
def bench_path():
    sys.path.insert(0, str(REPO))
    yield
    sys.path.remove(str(REPO))


def _write_canned(directory: Path, out: np.ndarray) -> None:
    from tritonclient.grpc import service_pb2 as pb

    from bench.floors.canned import file_name

    infer = pb.ModelInferResponse(model_name="m", model_version="3")
    infer.outputs.add(name="y", datatype="FP32", shape=list(out.shape))
    infer.raw_output_contents.append(out.tobytes())
    answers = {"ServerLive": pb.ServerLiveResponse(live=True),
               "ModelReady": pb.ModelReadyResponse(ready=True),
               "ModelMetadata": pb.ModelMetadataResponse(name="m", versions=["1", "3"], platform="OpenVINO"),
               "ModelInfer": infer}
    directory.mkdir()
    for name, msg in answers.items():
        (directory / file_name(SERVICE + name)).write_bytes(msg.SerializeToString())


def _floor_answers(floor) -> None:
    import grpc
    import tritonclient.grpc as tg
    from tritonclient.utils import InferenceServerException

    client = tg.InferenceServerClient(floor.grpc_url)
    assert client.is_server_live() and client.is_model_ready("m")
    assert client.get_model_metadata("m").versions == ["1", "3"]
    x = tg.InferInput("x", [2, 3], "FP32")
    x.set_data_from_numpy(np.zeros((2, 3), np.float32))
    for _ in range(3):  # every call gets the same canned bytes, whatever it sent
        res = client.infer("m", [x])
        np.testing.assert_array_equal(res.as_numpy("y"), np.arange(6, dtype=np.float32).reshape(2, 3))
    # a method with no canned answer: UNIMPLEMENTED
    with pytest.raises(InferenceServerException) as err:
        client.is_server_ready()
    assert "UNIMPLEMENTED" in str(err.value.status())
    with grpc.insecure_channel(floor.grpc_url) as ch:
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary("/no.Such/Method")(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_canned_names_round_trip(bench_path, tmp_path):
    from bench.floors import canned

    _write_canned(tmp_path / "c", np.arange(6, dtype=np.float32).reshape(2, 3))
    loaded = canned.load(tmp_path / "c")
    assert set(loaded) == {SERVICE + n for n in ("ServerLive", "ModelReady", "ModelMetadata", "ModelInfer")}
    assert canned.model_version(tmp_path / "c") == "3"


def test_aio_floor_replays(bench_path, tmp_path):
    from bench import floors

    _write_canned(tmp_path / "c", np.arange(6, dtype=np.float32).reshape(2, 3))
    floor = floors.start_aio(tmp_path / "c", tmp_path / "logs")
    try:
        _floor_answers(floor)
    finally:
        floor.stop()
    assert floor.process.proc.returncode == 0  # SIGTERM is a clean stop


@pytest.mark.timeout(1200)  # the first build compiles against grpc++ (minutes on a loaded machine)
def test_grpcpp_floor_replays(bench_path, tmp_path):
    from bench import floors

    try:
        exe = floors.build_grpcpp(REPO / "bench" / ".cache", tmp_path / "build.log")
    except floors.FloorUnavailable as exc:
        pytest.skip(f"grpc++ floor not buildable here: {exc}")
    _write_canned(tmp_path / "c", np.arange(6, dtype=np.float32).reshape(2, 3))
    floor = floors.start_grpcpp(exe, tmp_path / "c", tmp_path / "logs")
    try:
        _floor_answers(floor)
    finally:
        floor.stop()
    assert floor.process.proc.returncode == 0


def test_floor_that_cannot_start_says_why(bench_path, tmp_path):
    from bench import floors
    from bench.servers import ServerError

    with pytest.raises(ServerError, match="exited"):
        floors.start_aio(tmp_path / "nope", tmp_path / "logs")


def test_grpcpp_floor_without_compiler_says_why(bench_path, tmp_path, monkeypatch):
    """No g++ on PATH (and nothing built in this cache): not available, with the reason, nothing raised
    beyond FloorUnavailable (the bench prints it as "floor grpc++: not available (...)")."""
    from bench import floors

    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    with pytest.raises(floors.FloorUnavailable, match="g\\+\\+ not found"):
        floors.build_grpcpp(tmp_path / "cache", tmp_path / "build.log")
    assert not (tmp_path / "cache").exists()
