"""Header routing's id injection (native/src/transport/model_id.cpp), checked with real protobuf parsers: a
forwarded request with the bytes appended names the metadata's model, everything else unchanged."""
from __future__ import annotations

import pytest
from tritonclient.grpc import service_pb2 as kserve
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from ovfast import _native

MODEL_ID = "mnist-svm__isvc-6b2eb0b8bf"


def test_model_infer_request_names_the_injected_id():
    req = kserve.ModelInferRequest(model_name="isvc-name", model_version="2", id="r1")
    req.inputs.add(name="x", datatype="FP32", shape=[1, 2])
    req.raw_input_contents.append(b"\0" * 8)
    data = req.SerializeToString() + _native.inject_model_id("/inference.GRPCInferenceService/ModelInfer", MODEL_ID)
    got = kserve.ModelInferRequest.FromString(data)
    assert got.model_name == MODEL_ID
    got.model_name = req.model_name
    assert got == req


@pytest.mark.parametrize("method, cls", [
    ("/tensorflow.serving.PredictionService/Predict", predict_pb2.PredictRequest),
    ("/tensorflow.serving.PredictionService/GetModelMetadata", get_model_metadata_pb2.GetModelMetadataRequest),
])
def test_tfs_requests_name_the_injected_id_in_model_spec(method, cls):
    req = cls()
    req.model_spec.name = "isvc-name"
    req.model_spec.signature_name = "serving_default"
    req.model_spec.version.value = 3
    got = cls.FromString(req.SerializeToString() + _native.inject_model_id(method, MODEL_ID))
    assert got.model_spec.name == MODEL_ID
    assert (got.model_spec.signature_name, got.model_spec.version.value) == ("serving_default", 3)
    empty = cls.FromString(_native.inject_model_id(method, MODEL_ID))  # a request without model_spec
    assert empty.model_spec.name == MODEL_ID


def test_methods_without_a_model_name_are_refused():
    with pytest.raises(ValueError, match="names no model"):
        _native.inject_model_id("/inference.GRPCInferenceService/ServerLive", MODEL_ID)
