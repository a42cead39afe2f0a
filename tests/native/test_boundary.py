"""Python <-> native boundary: zero-copy in and out, keep-alives, GIL release."""
from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time

import numpy as np
import pytest

from ovfast import _native
from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb
from ovfast.api.rest.tensors import parse_infer_body
from ovfast.runtime.completions import CompletionDispatcher
from models import build_add, build_dynamic, build_slow
from native_servable import servable


def _address(buf: bytes) -> int:
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data


def _infer_request(name: str, arrays: dict[str, np.ndarray]) -> bytes:
    req = pb.ModelInferRequest(model_name=name)
    for k, a in arrays.items():
        t = req.inputs.add(name=k, datatype="FP32", shape=list(a.shape))
        req.raw_input_contents.append(a.astype(np.float32).tobytes())
        del t
    return req.SerializeToString()


@pytest.fixture(scope="module")
def core():
    return _native.Core()


@pytest.fixture(scope="module")
def add_model(tmp_path_factory):
    return str(build_add(tmp_path_factory.mktemp("add")) / "1" / "model.xml")


@pytest.fixture(scope="module")
def slow_model_xml(tmp_path_factory):
    return str(build_slow(tmp_path_factory.mktemp("slow")) / "1" / "model.xml")


def test_raw_input_contents_are_views_into_the_request_bytes():
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    data = _infer_request("m", {"b": x})
    req = _native.parse_kserve_request(data)
    start = _address(data)
    assert req.buffer_address == start
    assert req.buffer_size == len(data)
    (addr,) = req.input_addresses
    # the tensor data lies inside the request buffer and holds the input bytes: no copy was made
    assert start <= addr and addr + x.nbytes <= start + len(data)
    offset = addr - start
    assert data[offset:offset + x.nbytes] == x.tobytes()


def test_request_keeps_its_buffer_alive():
    data = bytearray(_infer_request("m", {"b": np.ones((1, 10), np.float32)}))
    req = _native.parse_kserve_request(data)
    # a pinned buffer cannot be resized while the parsed request views it
    with pytest.raises(BufferError):
        data.extend(b"x")
    del req
    gc.collect()
    data.extend(b"x")


def test_rest_binary_inputs_are_slices_of_the_body():
    x = np.arange(10, dtype=np.float32)
    header = b'{"inputs":[{"name":"b","shape":[1,10],"datatype":"FP32","parameters":{"binary_data_size":40}}]}'
    body = header + x.tobytes()
    _, inputs, _, _, _ = parse_infer_body(body, str(len(header)))
    (_, _, _, view), = inputs
    assert isinstance(view, memoryview) and view.obj is body
    assert np.shares_memory(np.frombuffer(view, np.float32), np.frombuffer(body, np.uint8))


def _run(coro):
    return asyncio.run(coro)


async def _submit_tensors(servable, completions, inputs, outputs=None):
    fut = asyncio.get_running_loop().create_future()
    servable.submit_tensors(inputs, outputs, fut)
    return await fut


def test_outputs_are_native_backed_readonly_arrays(core, add_model):
    async def main():
        cd = CompletionDispatcher()
        cd.attach(asyncio.get_running_loop())
        s = servable(add_model, cd.queue, core=core)
        x = np.arange(10, dtype=np.float32).reshape(1, 10)
        outs, _, _ = await _submit_tensors(s, cd, [("b", "FP32", [1, 10], x)])
        cd.detach()
        return outs

    (name, datatype, shape, arr), = _run(main())
    assert (name, datatype, shape) == ("a", "FP32", [1, 10])
    np.testing.assert_array_equal(arr, np.arange(10, dtype=np.float32).reshape(1, 10) + 1)
    assert not arr.flags.owndata and not arr.flags.writeable
    assert type(arr.base).__name__ == "PyCapsule"  # owned by the native tensor, not a copy
    assert np.shares_memory(np.asarray(arr), arr)


def test_input_buffers_are_released_after_completion(core, add_model):
    async def main():
        cd = CompletionDispatcher()
        cd.attach(asyncio.get_running_loop())
        s = servable(add_model, cd.queue, core=core)
        x = np.ones((1, 10), np.float32)
        before = sys.getrefcount(x)
        await _submit_tensors(s, cd, [("b", "FP32", [1, 10], x)])
        gc.collect()
        after = sys.getrefcount(x)
        cd.detach()
        return before, after

    before, after = _run(main())
    assert after == before


def test_kserve_request_released_after_completion(core, add_model):
    async def main():
        cd = CompletionDispatcher()
        cd.attach(asyncio.get_running_loop())
        s = servable(add_model, cd.queue, core=core)
        data = _infer_request("add", {"b": np.ones((1, 10), np.float32)})
        req = _native.parse_kserve_request(data)
        before = sys.getrefcount(req)
        fut = asyncio.get_running_loop().create_future()
        s.submit_kserve(req, "1", fut)
        assert sys.getrefcount(req) == before + 1  # the job holds the request (and its buffer)
        payload, _, _ = await fut
        assert sys.getrefcount(req) == before
        cd.detach()
        return payload

    resp = pb.ModelInferResponse.FromString(_run(main()))
    assert resp.model_name == "add" and resp.model_version == "1"
    np.testing.assert_array_equal(np.frombuffer(resp.raw_output_contents[0], np.float32), np.full(10, 2.0))


def test_gil_is_free_while_inference_runs(core, slow_model_xml):
    """A Python thread keeps running while a long inference is in flight, and while drain() blocks."""
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    async def main():
        cd = CompletionDispatcher()
        cd.attach(asyncio.get_running_loop())
        s = servable(slow_model_xml, cd.queue, core=core, nireq=1)
        x = np.ones((1, 1024), np.float32)
        fut = asyncio.get_running_loop().create_future()
        t = threading.Thread(target=spin)
        t.start()
        try:
            s.submit_tensors([("x", "FP32", [1, 1024], x)], None, fut)
            c0 = counter[0]
            s.drain()  # blocking native wait: must release the GIL
            during_drain = counter[0] - c0
            outs, infer_us, _ = await fut
        finally:
            stop.set()
            t.join()
        cd.detach()
        return during_drain, infer_us, outs

    during_drain, infer_us, outs = _run(main())
    assert infer_us > 0
    assert during_drain > 1000, "the spinning thread made no progress while native code waited"
    np.testing.assert_allclose(outs[0][3], np.full((1, 1024), 2.0, np.float32), rtol=1e-2)


def test_validation_errors_raise_typed_exceptions(core, add_model):
    async def main():
        cd = CompletionDispatcher()
        cd.attach(asyncio.get_running_loop())
        s = servable(add_model, cd.queue, core=core)
        loop = asyncio.get_running_loop()
        with pytest.raises(_native.InvalidArgumentError, match=r"Invalid input shape - Expected: \(1,10\); Actual: \(1,11\); input name: b"):
            s.submit_tensors([("b", "FP32", [1, 11], np.ones((1, 11), np.float32))], None, loop.create_future())
        with pytest.raises(_native.InvalidArgumentError, match="Invalid input precision - Expected: FP32; Actual: INT32"):
            s.submit_tensors([("b", "INT32", [1, 10], np.ones((1, 10), np.int32))], None, loop.create_future())
        with pytest.raises(_native.InvalidArgumentError, match="Invalid content size of tensor proto - Expected: 40 bytes; Actual: 36 bytes"):
            s.submit_tensors([("b", "FP32", [1, 10], np.ones((1, 9), np.float32))], None, loop.create_future())
        cd.detach()

    _run(main())


def test_dynamic_shapes_accept_any_allowed_shape(core, tmp_path):
    xml = str(build_dynamic(tmp_path) / "1" / "model.xml")

    async def main():
        cd = CompletionDispatcher()
        cd.attach(asyncio.get_running_loop())
        s = servable(xml, cd.queue, core=core)
        results = []
        for shape in [(1, 1), (3, 7), (16, 2)]:
            x = np.random.rand(*shape).astype(np.float32)
            outs, _, _ = await _submit_tensors(s, cd, [("x", "FP32", list(shape), x)])
            results.append((x, outs[0][3]))
        cd.detach()
        return results

    for x, y in _run(main()):
        np.testing.assert_allclose(y, x * 2, rtol=1e-6)
