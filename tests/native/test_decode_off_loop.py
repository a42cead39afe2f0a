"""JPEG/PNG inputs are decoded on the native WorkerPool, never on the thread that submits (the asyncio
loop): submit returns before decoding, a broken image fails through the completion queue instead of
raising at submit, and however many image requests come, no thread is created per request."""
from __future__ import annotations

import io
import os
import threading

import numpy as np
import openvino as ov
import pytest
from openvino import opset13 as ops

from native_servable import completions, servable
from ovfast import _native

PIL = pytest.importorskip("PIL.Image")


def _image_model(base) -> str:
    x = ops.parameter([-1, 8, 8, 3], ov.Type.u8, name="image")
    y = ops.reduce_mean(ops.convert(x, ov.Type.f32), ops.constant(np.array([1, 2, 3], np.int64)), keep_dims=False)
    y.output(0).get_tensor().set_names({"mean"})
    path = base / "model.xml"
    ov.save_model(ov.Model([y], [x], "img"), str(path))
    return str(path)


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    PIL.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def image_servable(tmp_path_factory):
    q = _native.CompletionQueue()
    return servable(_image_model(tmp_path_factory.mktemp("img")), q, nireq=2), q


def test_broken_image_fails_through_the_queue_not_at_submit(image_servable):
    s, q = image_servable
    # Were decoding done in submit, this call would raise InvalidArgumentError here.
    s.submit_tensors([("image", "BYTES", [1], [b"\x89PNG but not really"])], None, "broken")
    s.submit_tensors([("image", "BYTES", [2], [_png(10), _png(20)])], None, "good")
    done = completions(q, 2)
    code, msg, _ = done["broken"]
    assert code == _native.InvalidArgumentError.code and "image" in msg.lower()
    code, _, payload = done["good"]
    assert code == 0
    (name, _dt, shape, data), = payload
    assert name == "mean" and shape == [2]
    np.testing.assert_allclose(data, [10.0, 20.0])
    assert s.statistics()["fail_count"] >= 1


def test_image_requests_create_no_thread_per_request(image_servable):
    """Every thread that exists while 60 batches of 4 large images decode existed before them: the
    decoders are reused pool threads (a thread per request would show up as new thread ids)."""
    s, q = image_servable
    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    PIL.fromarray(rng.integers(0, 256, (384, 384, 3), dtype=np.uint8)).save(buf, format="PNG")
    big = buf.getvalue()  # milliseconds to decode, then resized to 8x8
    s.submit_tensors([("image", "BYTES", [4], [big] * 4)], None, "warm")
    completions(q, 1)
    before = set(os.listdir("/proc/self/task"))
    seen: set = set()
    stop = threading.Event()
    watcher_tid: list = []

    def watch():
        watcher_tid.append(str(threading.get_native_id()))
        while not stop.is_set():
            seen.update(os.listdir("/proc/self/task"))

    t = threading.Thread(target=watch)
    t.start()
    n = 60
    for i in range(n):
        s.submit_tensors([("image", "BYTES", [4], [big] * 4)], None, i)
    done = completions(q, n)
    stop.set()
    t.join()
    assert all(done[i][0] == 0 for i in range(n))
    assert seen - before - set(watcher_tid) == set()
