"""Stateful models over the TF-Serving API (gRPC and REST), OVMS semantics (spec/ovms.md §5), on Silero VAD
made stateful (tests/stateful_model.py): a stream of speech windows through the server gives exactly the
probabilities of the in-process stateful loop; the special inputs and the sequence errors are OVMS's."""
from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from ovmsclient.tfs_compat.protos.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import predict_pb2

import models as M
import stateful_model as S
from kserve_util import rest
from ovfast import errors as E

START, END = 1, 2
PREDICT = "/tensorflow.serving.PredictionService/Predict"


@pytest.fixture(scope="module")
def server(ovfast_server_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("stateful_tfs")
    plain = M.build_add(root / "plain")  # no state variables, served as stateful
    config = S.stateful_config(root, ({"name": "plain", "base_path": str(plain), "stateful": True},))
    return ovfast_server_session("--config_path", str(config))


@pytest.fixture(scope="module")
def predict(server):
    channel = grpc.insecure_channel(server.grpc_url)
    call = channel.unary_unary(PREDICT, request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=predict_pb2.PredictResponse.FromString)
    yield lambda req: call(req, timeout=30)
    channel.close()


def shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def request(model: str, window: np.ndarray | None, seq_id: int | None = None, control: int | None = None,
            input_name: str = S.INPUT) -> predict_pb2.PredictRequest:
    """A Predict request as OVMS's stateful clients send it: the special inputs in uint64_val / uint32_val."""
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    if window is not None:
        req.inputs[input_name].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=shape(*window.shape), tensor_content=window.tobytes()))
    if seq_id is not None:
        req.inputs["sequence_id"].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_UINT64, tensor_shape=shape(1), uint64_val=[seq_id]))
    if control is not None:
        req.inputs["sequence_control_input"].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_UINT32, tensor_shape=shape(1), uint32_val=[control]))
    return req


def answer(resp: predict_pb2.PredictResponse, name: str = S.OUTPUT) -> tuple[float, int]:
    """(the probability, the sequence id) of a response."""
    out = resp.outputs[name]
    value = np.frombuffer(out.tensor_content, np.float32).reshape(-1)[0]
    seq = resp.outputs["sequence_id"]
    assert seq.dtype == types_pb2.DT_UINT64 and [d.size for d in seq.tensor_shape.dim] == [1]
    assert not seq.tensor_content and len(seq.uint64_val) == 1  # uint64_val, as OVMS sends it
    return float(value), seq.uint64_val[0]


def error(predict, req) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        predict(req)
    return info.value.code(), info.value.details()


@pytest.fixture(scope="module")
def stream():
    """One utterance as windows, and what the in-process stateful loop gives for it."""
    wins = S.windows(S.speech(1.5, seed=11))
    return wins, S.reference(S.compile_vad(), wins)


def test_grpc_stream_equals_the_in_process_loop(predict, stream):
    wins, expected = stream
    probs, ids = [], set()
    for i, w in enumerate(wins):
        control = START if i == 0 else END if i == len(wins) - 1 else 0
        p, seq = answer(predict(request("vad", w, 1001, control)))
        probs.append(p)
        ids.add(seq)
    assert ids == {1001}
    # same model, same compile settings (LATENCY hint, default threads) in both: bit-exact
    assert np.max(np.abs(np.array(probs, np.float32) - expected)) == 0.0
    assert expected.max() > 0.5 > expected.min()  # the synthetic speech does look like speech, with pauses
    assert error(predict, request("vad", wins[0], 1001, 0)) == (grpc.StatusCode.NOT_FOUND, E.SEQUENCE_MISSING)


def rest_predict(server, body: dict) -> tuple[int, dict]:
    r = rest(server.http_url, "POST", "/v1/models/vad:predict", json.dumps(body))
    return r.status, json.loads(r.body)


def test_rest_stream_equals_the_in_process_loop(server, stream):
    wins, expected = stream
    probs = []
    for i, w in enumerate(wins):
        inputs = {"input": w.tolist(), "sequence_id": [2002]}
        if i == 0:
            inputs["sequence_control_input"] = [START]
        status, doc = rest_predict(server, {"inputs": inputs})
        assert status == 200, doc
        assert doc["outputs"]["sequence_id"] == [2002]
        probs.append(doc["outputs"]["output"][0][0])
    assert np.max(np.abs(np.array(probs, np.float32) - expected)) == 0.0
    # row format too, and the end of the sequence
    status, doc = rest_predict(server, {"instances": [{"input": wins[0][0].tolist(), "sequence_id": 2002,
                                                       "sequence_control_input": END}]})
    assert status == 200, doc
    assert doc["predictions"][0]["sequence_id"] == 2002
    status, doc = rest_predict(server, {"inputs": {"input": wins[0].tolist(), "sequence_id": [2002]}})
    assert (status, doc) == (404, {"error": E.SEQUENCE_MISSING})


def test_start_without_id_gets_one_from_the_server(predict, stream):
    wins, expected = stream
    _, first = answer(predict(request("vad", wins[0], 0, START)))
    _, second = answer(predict(request("vad", wins[0], None, START)))  # no sequence_id at all: 0
    assert first > 0 and second > 0 and first != second
    p, seq = answer(predict(request("vad", wins[1], first, 0)))
    assert seq == first and p == expected[1]
    for s in (first, second):
        answer(predict(request("vad", wins[0], s, END)))


def test_sequence_errors(predict, stream):
    w = stream[0][0]
    assert error(predict, request("vad", w, 3003, 0)) == (grpc.StatusCode.NOT_FOUND, E.SEQUENCE_MISSING)
    assert error(predict, request("vad", w, 3003, END)) == (grpc.StatusCode.NOT_FOUND, E.SEQUENCE_MISSING)
    answer(predict(request("vad", w, 3003, START)))
    assert error(predict, request("vad", w, 3003, START)) == (grpc.StatusCode.ALREADY_EXISTS,
                                                               E.SEQUENCE_ALREADY_EXISTS)
    answer(predict(request("vad", w, 3003, END)))
    # vad_small serves 2 sequences at most
    answer(predict(request("vad_small", w, 1, START)))
    answer(predict(request("vad_small", w, 2, START)))
    assert error(predict, request("vad_small", w, 3, START)) == (grpc.StatusCode.UNAVAILABLE,
                                                                  E.MAX_SEQUENCE_NUMBER_REACHED)
    answer(predict(request("vad_small", w, 1, END)))
    answer(predict(request("vad_small", w, 3, START)))
    for s in (2, 3):
        answer(predict(request("vad_small", w, s, END)))


@pytest.mark.parametrize("which, tensor, message", [
    ("sequence_id", dict(dtype=types_pb2.DT_UINT64, uint64_val=[5]), E.SPECIAL_INPUT_NO_TENSOR_SHAPE),
    ("sequence_id", dict(dtype=types_pb2.DT_UINT64, tensor_shape=shape(1, 1), uint64_val=[5]),
     "Invalid number of shape dimensions - Required shape for sequence_id is: (1)"),
    ("sequence_id", dict(dtype=types_pb2.DT_UINT64, tensor_shape=shape(2), uint64_val=[5, 6]),
     "Invalid input shape - Required shape for sequence_id is: (1)"),
    ("sequence_id", dict(dtype=types_pb2.DT_UINT64, tensor_shape=shape(1),
                         tensor_content=np.array([5], np.uint64).tobytes()), E.SEQUENCE_ID_BAD_TYPE),
    ("sequence_control_input", dict(dtype=types_pb2.DT_UINT32, tensor_shape=shape(1), int_val=[1]),
     E.SEQUENCE_CONTROL_INPUT_BAD_TYPE),
    ("sequence_control_input", dict(dtype=types_pb2.DT_UINT32, tensor_shape=shape(1), uint32_val=[3]),
     E.INVALID_SEQUENCE_CONTROL_INPUT),
    ("sequence_control_input", dict(dtype=types_pb2.DT_UINT32, tensor_shape=shape(1), uint32_val=[0]),
     E.SEQUENCE_ID_NOT_PROVIDED),
])
def test_special_input_errors(predict, stream, which, tensor, message):
    req = request("vad", stream[0][0])
    req.inputs[which].CopyFrom(tensor_pb2.TensorProto(**tensor))
    assert error(predict, req) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_special_input_errors_over_rest(server, stream):
    w = stream[0][0].tolist()
    for inputs, message in (({"input": [w]}, E.SEQUENCE_ID_NOT_PROVIDED),
                            ({"input": [w], "sequence_id": [1], "sequence_control_input": [7]},
                             E.INVALID_SEQUENCE_CONTROL_INPUT),
                            ({"input": [w], "sequence_id": [[1]]},
                             "Invalid number of shape dimensions - Required shape for sequence_id is: (1)")):
        assert rest_predict(server, {"inputs": inputs}) == (400, {"error": message})


def test_a_model_without_state_variables_serves_sequences(predict):
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    resp = predict(request("plain", x, 77, START, input_name="b"))
    np.testing.assert_array_equal(np.frombuffer(resp.outputs["a"].tensor_content, np.float32), x.reshape(-1) + 1)
    assert list(resp.outputs["sequence_id"].uint64_val) == [77]
    assert error(predict, request("plain", x, None, None, input_name="b")) == (
        grpc.StatusCode.INVALID_ARGUMENT, E.SEQUENCE_ID_NOT_PROVIDED)
    predict(request("plain", x, 77, END, input_name="b"))
