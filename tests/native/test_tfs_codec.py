"""The native TF-Serving PredictRequest parser and PredictResponse encoder, from Python.

- tensor_content is wrapped in place (addresses inside the request buffer);
- typed value lists (half_val, int_val, ...) are converted into owned storage;
- any bytes -> a parsed request or InvalidArgumentError (hypothesis; libFuzzer target in native/fuzz/);
- the encoder's output is a valid PredictResponse for an independent protobuf implementation (ovmsclient's).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovfast import _native
from ovmsclient.tfs_compat.protos.tensorflow.core.framework import tensor_pb2, types_pb2
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import predict_pb2


def _request(**inputs: tensor_pb2.TensorProto) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "m"
    req.model_spec.version.value = 3
    req.model_spec.signature_name = "serving_default"
    for name, t in inputs.items():
        req.inputs[name].CopyFrom(t)
    return req


def _tensor(dtype: int, shape, **fields) -> tensor_pb2.TensorProto:
    t = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for d in shape:
        t.tensor_shape.dim.add(size=d)
    return t


def _valid_request() -> bytes:
    x = np.arange(8, dtype=np.float32)
    req = _request(
        a=_tensor(types_pb2.DT_FLOAT, [2, 4], tensor_content=x.tobytes()),
        h=_tensor(types_pb2.DT_HALF, [3], half_val=[int(v) for v in np.array([1, 2, 3], np.float16).view(np.uint16)]),
        s=_tensor(types_pb2.DT_STRING, [2], string_val=[b"ab", b""]),
        u=_tensor(types_pb2.DT_UINT16, [2], int_val=[1, 65535]),
    )
    req.output_filter.append("o")
    return req.SerializeToString()


VALID = _valid_request()


def test_model_spec_and_inputs():
    r = _native.parse_tfs_predict_request(VALID)
    assert (r.model_name, r.model_version, r.has_model_spec, r.signature_name) == ("m", 3, True, "serving_default")
    assert sorted(r.input_names) == ["a", "h", "s", "u"]


def test_missing_model_spec_and_version():
    r = _native.parse_tfs_predict_request(predict_pb2.PredictRequest().SerializeToString())
    assert (r.model_name, r.model_version, r.has_model_spec) == ("", 0, False)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "x"
    r = _native.parse_tfs_predict_request(req.SerializeToString())
    assert (r.model_name, r.model_version, r.has_model_spec) == ("x", 0, True)


def test_tensor_content_is_zero_copy():
    """The input's data pointer lies inside the request bytes, exactly where tensor_content is."""
    payload = np.arange(1000, dtype=np.float32)
    data = _request(a=_tensor(types_pb2.DT_FLOAT, [1, 1000], tensor_content=payload.tobytes())).SerializeToString()
    r = _native.parse_tfs_predict_request(data)
    (addr,) = r.input_addresses
    start = r.buffer_address
    assert start <= addr and addr + payload.nbytes <= start + r.buffer_size
    assert addr - start == data.find(payload.tobytes())


def test_typed_values_are_owned_copies():
    r = _native.parse_tfs_predict_request(VALID)
    addrs = dict(zip(r.input_names, r.input_addresses))
    lo, hi = r.buffer_address, r.buffer_address + r.buffer_size
    assert lo <= addrs["a"] < hi
    for name in ("h", "u"):  # converted from packed varints
        assert not lo <= addrs[name] < hi
    assert addrs["s"] == 0  # strings live in their own storage


def test_repeated_map_key_last_wins():
    first = predict_pb2.PredictRequest()
    first.inputs["a"].CopyFrom(_tensor(types_pb2.DT_FLOAT, [1], tensor_content=b"\0\0\0\0"))
    second = predict_pb2.PredictRequest()
    second.inputs["a"].CopyFrom(_tensor(types_pb2.DT_FLOAT, [2], tensor_content=b"\1" * 8))
    data = first.SerializeToString() + second.SerializeToString()  # concatenation = merge
    r = _native.parse_tfs_predict_request(data)
    assert r.input_names == ["a"]
    assert r.input_addresses[0] - r.buffer_address == data.rfind(b"\1" * 8)


@pytest.mark.parametrize("data", [b"\x0a", b"\x12\x05abc", b"\x0a\x02\x12\xff", b"\x07", b"\x12\x03\x12\x01\xff"])
def test_malformed_raises_invalid_argument(data):
    with pytest.raises(_native.InvalidArgumentError, match="Malformed PredictRequest"):
        _native.parse_tfs_predict_request(data)


def _parse(data: bytes) -> None:
    try:
        _native.parse_tfs_predict_request(data)
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


def test_encode_response_roundtrip():
    a = np.arange(6, dtype=np.float16).reshape(2, 3)
    z = np.zeros((0, 4), np.int64)
    data = _native.encode_tfs_response("m", "7", [
        ("a", "FP16", [2, 3], a), ("s", "BYTES", [2], [b"x", b"\xff\x00"]), ("z", "INT64", [0, 4], z)])
    resp = predict_pb2.PredictResponse.FromString(data)
    assert resp.model_spec.name == "m" and resp.model_spec.version.value == 7
    t = resp.outputs["a"]
    assert t.dtype == types_pb2.DT_HALF and [d.size for d in t.tensor_shape.dim] == [2, 3]
    np.testing.assert_array_equal(np.frombuffer(t.tensor_content, np.float16).reshape(2, 3), a)
    s = resp.outputs["s"]
    assert s.dtype == types_pb2.DT_STRING and list(s.string_val) == [b"x", b"\xff\x00"]
    zt = resp.outputs["z"]
    assert [d.size for d in zt.tensor_shape.dim] == [0, 4] and zt.tensor_content == b""


def test_non_utf8_strings_are_invalid_argument():
    # proto3 strings must be UTF-8; a raw 0x80 byte in the model name or an input name is rejected cleanly
    good = _valid_request()
    req = predict_pb2.PredictRequest.FromString(good)
    name = req.model_spec.name.encode()
    bad_name = good.replace(name, b"\x80" + name[1:], 1)
    with pytest.raises(_native.InvalidArgumentError, match="UTF-8"):
        _native.parse_tfs_predict_request(bad_name)
    key = next(iter(req.inputs)).encode()
    bad_key = good.replace(key, b"\xff" + key[1:], 1)
    with pytest.raises(_native.InvalidArgumentError, match="UTF-8"):
        _native.parse_tfs_predict_request(bad_key)


def test_error_message_quoting_a_non_utf8_name_is_still_invalid_argument():
    # found by test_mutated_valid_request in CI: a truncated tensor under the input key b"\x80" produced
    # an error message quoting the key, and turning that message into a Python str raised UnicodeDecodeError
    data = (b"\n\x18\n\x01m\x12\x02\x08\x03\x1a\x0fserving_default\x12\x13\n\x01s\x12\x0e\x08\x07\x12\x04\x12"
            b"\x02\x08\x02B\x02abB\x00\x12\x13\n\x01\x80\x12\x0e\x08\x11\x12\x04\x12\x02\x08\x02:\x04\x01\xff\xff\x80")
    with pytest.raises(_native.InvalidArgumentError) as e:
        _native.parse_tfs_predict_request(data)
    assert "\\x80" in str(e.value)  # the bad byte is shown escaped
