"""Property tests for the native ModelInferRequest decoder: any bytes -> a parsed request or
InvalidArgumentError, never a crash or another error. (The libFuzzer target is native/fuzz/.)"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovfast import _native
from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb


def _valid_request() -> bytes:
    req = pb.ModelInferRequest(model_name="m", model_version="1", id="x")
    req.inputs.add(name="a", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend([1, 2, 3, 4])
    req.inputs.add(name="s", datatype="BYTES", shape=[2]).contents.bytes_contents.extend([b"ab", b""])
    req.inputs.add(name="i", datatype="INT8", shape=[3]).contents.int_contents.extend([-1, 2, 127])
    req.outputs.add(name="o")
    req.parameters["p"].int64_param = 3
    return req.SerializeToString()


VALID = _valid_request()


def _parse(data: bytes) -> None:
    try:
        _native.parse_kserve_request(data)
    except _native.InvalidArgumentError:
        pass


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes(data):
    _parse(data)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(VALID)))
def test_mutated_valid_request(mutations, cut):
    buf = bytearray(VALID)
    for pos, val in mutations:
        buf[pos] = val
    _parse(bytes(buf[:cut]))


def test_valid_request_decodes():
    req = _native.parse_kserve_request(VALID)
    assert (req.model_name, req.model_version, req.id) == ("m", "1", "x")


def test_raw_bytes_length_prefix_overflow_is_rejected():
    req = pb.ModelInferRequest(model_name="m")
    req.inputs.add(name="s", datatype="BYTES", shape=[1])
    req.raw_input_contents.append((0xFFFFFFFF).to_bytes(4, "little") + b"abc")
    try:
        _native.parse_kserve_request(req.SerializeToString())
        raise AssertionError("accepted a BYTES element longer than its buffer")
    except _native.InvalidArgumentError as exc:
        assert "exceeds the buffer" in str(exc)


def test_huge_shape_does_not_overflow():
    req = pb.ModelInferRequest(model_name="m")
    req.inputs.add(name="a", datatype="FP32", shape=[2**62, 2**62])
    req.raw_input_contents.append(np.zeros(4, np.float32).tobytes())
    _native.parse_kserve_request(req.SerializeToString())  # shape/size checks happen against the model
