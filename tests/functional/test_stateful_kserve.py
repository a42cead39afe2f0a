"""Stateful models over KServe v2 (beyond OVMS): the request parameters of Triton's sequence API
(``sequence_id`` number or string, ``sequence_start``, ``sequence_end``) over gRPC and REST, sent by
tritonclient's own ``infer(..., sequence_id=, sequence_start=, sequence_end=)``; the response carries the id
as a parameter. Speech windows streamed through the server equal the in-process stateful loop exactly, and
32 sequences interleaved from 8 clients at once each equal their own in-process run."""
from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import service_pb2_grpc
from tritonclient.utils import InferenceServerException

import stateful_model as S
from kserve_util import grpc_error, grpc_input, make_infer_request, output_array
from ovfast import errors as E


@pytest.fixture(scope="module")
def server(ovfast_server_session, tmp_path_factory):
    return ovfast_server_session("--config_path", str(S.stateful_config(tmp_path_factory.mktemp("stateful_kserve"))))


@pytest.fixture(scope="module")
def compiled():
    return S.compile_vad()


def infer(client, module, window: np.ndarray, **sequence) -> tuple[float, object]:
    """One window through tritonclient (``module``: tritonclient.grpc or .http); (probability, answered id)."""
    inp = module.InferInput(S.INPUT, list(window.shape), "FP32")
    if module is httpclient:
        inp.set_data_from_numpy(window, binary_data=True)
        result = client.infer("vad", [inp], **sequence)
        seq_id = result.get_response()["parameters"]["sequence_id"]
    else:
        inp.set_data_from_numpy(window)
        result = client.infer("vad", [inp], **sequence)
        p = result.get_response().parameters["sequence_id"]
        seq_id = p.string_param if p.WhichOneof("parameter_choice") == "string_param" else p.int64_param
    return float(result.as_numpy(S.OUTPUT).reshape(-1)[0]), seq_id


def stream(client, module, wins, seq_id) -> list[float]:
    probs = []
    for i, w in enumerate(wins):
        p, answered = infer(client, module, w, sequence_id=seq_id, sequence_start=i == 0,
                            sequence_end=i == len(wins) - 1)
        assert answered == seq_id
        probs.append(p)
    return probs


@pytest.mark.parametrize("module", [grpcclient, httpclient], ids=["grpc", "rest"])
@pytest.mark.parametrize("seq_id", [4242, "utterance-7"], ids=["number", "string"])
def test_stream_equals_the_in_process_loop(server, compiled, module, seq_id):
    wins = S.windows(S.speech(1.0, seed=21))
    expected = S.reference(compiled, wins)
    url = server.grpc_url if module is grpcclient else server.http_url
    client = module.InferenceServerClient(url)
    try:
        probs = stream(client, module, wins, seq_id)
        assert np.max(np.abs(np.array(probs, np.float32) - expected)) == 0.0
        with pytest.raises(InferenceServerException, match=E.SEQUENCE_MISSING):
            infer(client, module, wins[0], sequence_id=seq_id)
    finally:
        client.close()


def test_32_sequences_from_8_clients_each_equal_their_own_run(server, compiled):
    """8 clients (4 gRPC, 4 REST) at once, each interleaving 4 sequences window by window."""
    audio = {k: S.windows(S.speech(0.6, seed=100 + k)) for k in range(32)}
    expected = {k: S.reference(compiled, w) for k, w in audio.items()}
    got: dict[int, list[float]] = {k: [] for k in audio}
    failures: list[BaseException] = []

    def client_run(c: int) -> None:
        module = grpcclient if c % 2 else httpclient
        client = module.InferenceServerClient(server.grpc_url if module is grpcclient else server.http_url)
        mine = [c * 4 + j for j in range(4)]
        try:
            for i in range(len(audio[mine[0]])):
                for k in mine:
                    wins = audio[k]
                    p, answered = infer(client, module, wins[i], sequence_id=5000 + k, sequence_start=i == 0,
                                        sequence_end=i == len(wins) - 1)
                    assert answered == 5000 + k
                    got[k].append(p)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=client_run, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures
    for k in audio:
        assert np.max(np.abs(np.array(got[k], np.float32) - expected[k])) == 0.0, k


def test_server_assigned_ids_and_parameter_errors(server):
    """A start without an id (tritonclient never sends one: raw requests) gets one; bad parameters are refused."""
    w = S.windows(S.speech(0.2, seed=3))[0]
    channel = grpc.insecure_channel(server.grpc_url)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    try:
        req = make_infer_request("vad", [grpc_input(S.INPUT, "FP32", [1, 576], w)])
        req.parameters["sequence_start"].bool_param = True
        resp = stub.ModelInfer(req, timeout=30)
        assigned = resp.parameters["sequence_id"].int64_param
        assert assigned > 0 and output_array(resp, S.OUTPUT).shape == (1, 1)
        assert [o.name for o in resp.outputs] == [S.OUTPUT]  # the id is a parameter, not an output
        req.parameters["sequence_start"].bool_param = False
        req.parameters["sequence_end"].bool_param = True
        req.parameters["sequence_id"].int64_param = assigned
        stub.ModelInfer(req, timeout=30)
        req.parameters["sequence_id"].double_param = 1.5
        code, details = grpc_error(stub.ModelInfer, req)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "sequence_id" in details
    finally:
        channel.close()


def test_sequence_errors(server):
    w = S.windows(S.speech(0.2, seed=3))[0]
    with grpcclient.InferenceServerClient(server.grpc_url) as g:
        with pytest.raises(InferenceServerException, match=E.SEQUENCE_ID_NOT_PROVIDED) as info:
            infer(g, grpcclient, w)  # a stateful model needs a sequence
        assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
        infer(g, grpcclient, w, sequence_id=77, sequence_start=True)
        with pytest.raises(InferenceServerException, match=E.SEQUENCE_ALREADY_EXISTS) as info:
            infer(g, grpcclient, w, sequence_id=77, sequence_start=True)
        assert info.value.status() == "StatusCode.ALREADY_EXISTS"
        infer(g, grpcclient, w, sequence_id=77, sequence_end=True)
    h = httpclient.InferenceServerClient(server.http_url)
    try:
        with pytest.raises(InferenceServerException, match=E.SEQUENCE_MISSING) as info:
            infer(h, httpclient, w, sequence_id=78)
        assert info.value.status() == "404"
    finally:
        h.close()


def test_model_config_says_sequences(server):
    with grpcclient.InferenceServerClient(server.grpc_url) as g:
        assert g.get_model_config("vad", as_json=True)["config"]["sequence_batching"] == {}
    h = httpclient.InferenceServerClient(server.http_url)
    try:
        assert "sequence_batching" in h.get_model_config("vad")
    finally:
        h.close()
