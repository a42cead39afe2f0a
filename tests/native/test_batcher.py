"""The native dynamic batcher, driven through the binding with no transport.

Timing is deterministic: the servables here run on a ``ManualClock``; ``advance_us`` returns only
once the batcher has acted on the new time, so "not dispatched yet" and "dispatched now" are
checked at exact instants, never with sleeps. Every answer is checked row by row against the
model's formula (``tests/models.py: build_rows``: y = 2x + 1, s = row sums).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import models as M
from native_servable import completions as wait, servable
from ovfast import _native
from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb

BIG = 10**9  # a queue delay no test reaches
WIDTH_BYTES = 4 * 4  # one row of the rows model: 4 float32


@pytest.fixture(scope="module")
def rows_xml(tmp_path_factory):
    return str(M.build_rows(tmp_path_factory.mktemp("rows") / "rows", width=4) / "1" / "model.xml")


@pytest.fixture(scope="module")
def ragged_xml(tmp_path_factory):
    return str(M.build_rows(tmp_path_factory.mktemp("ragged") / "ragged") / "1" / "model.xml")


def make(xml, *, max_batch_size=4, delay_us=BIG, preferred=(), nireq=1, manual=True, **kw):
    """A batching servable on a ManualClock (``manual=False``: the steady clock)."""
    queue = _native.CompletionQueue()
    clock = _native.ManualClock() if manual else None
    s = servable(xml, queue, nireq=nireq, max_batch_size=max_batch_size, max_queue_delay_us=delay_us,
                 preferred_batch_sizes=list(preferred), clock=clock, **kw)
    return s, queue, clock


def submit(s, data: np.ndarray, tag) -> None:
    s.submit_tensors([("x", "FP32", list(data.shape), data)], None, tag)


def check(done: dict, inputs: dict) -> None:
    """Each completion holds exactly its own rows."""
    for tag, x in inputs.items():
        code, msg, payload = done[tag]
        assert code == 0, msg
        outs = {name: (dt, shape, arr) for name, dt, shape, arr in payload}
        assert outs["y"][1] == list(x.shape)
        np.testing.assert_allclose(outs["y"][2], 2 * x + 1, rtol=1e-5)
        assert outs["s"][1] == [x.shape[0]]
        np.testing.assert_allclose(outs["s"][2], x.sum(axis=1), rtol=1e-4, atol=1e-4)


def batches(s) -> dict[int, int]:
    """batch size -> how many batches of it were dispatched (from the native histogram)."""
    counts, _ = s.metrics()["batch_size"]
    bounds = list(_native.BATCH_SIZE_BOUNDS)
    return {bounds[i]: c for i, c in enumerate(counts[:-1]) if c}


def sample(rows: int, seed: int, width: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, width)).astype(np.float32)


def test_dispatch_waits_exactly_max_queue_delay(rows_xml):
    s, q, clock = make(rows_xml, max_batch_size=8, delay_us=1000)
    xs = {i: sample(1, i) for i in range(3)}
    for i, x in xs.items():
        submit(s, x, i)
    assert s.queued == 3
    clock.advance_us(999)
    assert s.queued == 3, "dispatched before the oldest request waited max_queue_delay_us"
    assert q.drain() == []
    clock.advance_us(1)
    assert s.queued == 0
    check(wait(q, 3), xs)
    assert batches(s) == {3: 1}
    counts, total_us = s.metrics()["batch_queue_delay_us"]
    assert sum(counts) == 3 and total_us == 3000  # each waited exactly 1000 µs of clock time


def test_deadline_runs_from_the_oldest_request(rows_xml):
    s, q, clock = make(rows_xml, max_batch_size=8, delay_us=1000)
    submit(s, sample(1, 0), "a")
    clock.advance_us(600)
    submit(s, sample(1, 1), "b")
    clock.advance_us(399)
    assert s.queued == 2
    clock.advance_us(1)  # "a" has waited 1000 µs: both go, "b" after 400 µs
    assert s.queued == 0
    wait(q, 2)
    _, total_us = s.metrics()["batch_queue_delay_us"]
    assert total_us == 1000 + 400


def test_full_batch_goes_at_once(rows_xml):
    s, q, _ = make(rows_xml, max_batch_size=4)
    xs = {i: sample(1, 10 + i) for i in range(4)}
    for i, x in xs.items():
        submit(s, x, i)
        assert s.queued == (0 if i == 3 else i + 1)
    check(wait(q, 4), xs)
    assert batches(s) == {4: 1}
    assert s.metrics()["batch_copied_bytes"] == 4 * WIDTH_BYTES  # each row copied once into the batch


def test_multi_row_requests_fill_the_batch_by_rows(rows_xml):
    s, q, _ = make(rows_xml, max_batch_size=6)
    xs = {"a": sample(2, 20), "b": sample(3, 21), "c": sample(1, 22)}
    for tag, x in xs.items():
        submit(s, x, tag)
    check(wait(q, 3), xs)
    assert batches(s) == {6: 1}


def test_preferred_size_dispatches_without_waiting(rows_xml):
    s, q, clock = make(rows_xml, max_batch_size=8, preferred=(2, 4))
    submit(s, sample(1, 30), 0)
    assert s.queued == 1
    submit(s, sample(1, 31), 1)
    assert s.queued == 0
    wait(q, 2)
    assert batches(s) == {2: 1}


def test_on_the_deadline_a_preferred_size_is_cut(rows_xml):
    # nireq 1: while one batch runs, the next forms; on its deadline it is cut at 4 (preferred), not 5.
    s, q, clock = make(rows_xml, max_batch_size=8, delay_us=100, preferred=(4,))
    xs = {i: sample(1, 40 + i) for i in range(5)}
    for i, x in xs.items():
        submit(s, x, i)
    assert s.queued == 1  # the first four went at once (preferred size reached)
    clock.advance_us(100)
    check(wait(q, 5), xs)
    assert batches(s) == {4: 1, 1: 1}


def test_delay_zero_takes_what_is_queued(rows_xml):
    s, q, _ = make(rows_xml, max_batch_size=8, delay_us=0)
    submit(s, sample(1, 50), 0)
    assert s.queued == 0  # alone, at once
    wait(q, 1)
    assert batches(s) == {1: 1}
    assert s.metrics()["batch_copied_bytes"] == 0  # a batch of one runs on the request's own memory


def test_request_of_max_rows_or_more_runs_alone(rows_xml):
    s, q, _ = make(rows_xml, max_batch_size=4)
    submit(s, sample(1, 60), "small")
    xs = {"big": sample(7, 61)}
    submit(s, xs["big"], "big")  # more rows than a batch holds: goes alone, at once
    done = wait(q, 1)
    check(done, xs)
    assert s.queued == 1
    s.drain()
    wait(q, 1)
    assert batches(s) == {1: 1, 7: 1}


def test_different_shapes_go_in_separate_batches(ragged_xml):
    s, q, clock = make(ragged_xml, max_batch_size=8, delay_us=100)
    xs = {"a3": sample(1, 70, 3), "b5": sample(1, 71, 5), "c3": sample(2, 72, 3), "d5": sample(1, 73, 5)}
    for tag, x in xs.items():
        submit(s, x, tag)
    clock.advance_us(100)
    check(wait(q, 4), xs)
    assert batches(s) == {3: 1, 2: 1}  # a3+c3 (3 rows), then b5+d5 (2 rows)


def test_bad_request_fails_alone(rows_xml):
    s, q, clock = make(rows_xml, max_batch_size=4, delay_us=100)
    good = {0: sample(1, 80), 2: sample(1, 82)}
    submit(s, good[0], 0)
    with pytest.raises(_native.InvalidArgumentError, match="Invalid input shape"):
        submit(s, sample(1, 81, width=5), 1)
    with pytest.raises(_native.InvalidArgumentError, match="precision"):
        s.submit_tensors([("x", "INT32", [1, 4], np.zeros((1, 4), np.int32))], None, 3)
    submit(s, good[2], 2)
    clock.advance_us(100)
    check(wait(q, 2), good)
    assert batches(s) == {2: 1}


def test_drain_flushes_the_queue(rows_xml):
    s, q, _ = make(rows_xml, max_batch_size=8)
    xs = {i: sample(1, 90 + i) for i in range(3)}
    for i, x in xs.items():
        submit(s, x, i)
    s.drain()  # does not wait out a queue delay of 1000 s
    check(wait(q, 3), xs)


def test_flush_starts_what_is_queued_and_what_comes_after(rows_xml):
    s, q, _ = make(rows_xml, max_batch_size=8)
    xs = {i: sample(1, 95 + i) for i in range(3)}
    submit(s, xs[0], 0)
    submit(s, xs[1], 1)
    s.flush()  # shutdown: no more waiting out the queue delay (1000 s here); does not block
    done = wait(q, 2)
    submit(s, xs[2], 2)
    done.update(wait(q, 1))
    check(done, xs)


def test_kserve_responses_are_sliced_from_the_batch(rows_xml):
    s, q, clock = make(rows_xml, max_batch_size=8, delay_us=100)
    xs = {i: sample(i + 1, 100 + i) for i in range(3)}
    keep = []
    for i, x in xs.items():
        req = pb.ModelInferRequest(model_name="rows", id=f"r{i}")
        t = req.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
        req.raw_input_contents.append(x.tobytes())
        parsed = _native.parse_kserve_request(req.SerializeToString())
        keep.append(parsed)
        s.submit_kserve(parsed, "1", i)
        del t
    clock.advance_us(100)
    done = wait(q, 3)
    assert batches(s) == {6: 1}
    for i, x in xs.items():
        code, msg, payload = done[i]
        assert code == 0, msg
        resp = pb.ModelInferResponse.FromString(payload)
        assert resp.id == f"r{i}"
        by_name = {o.name: (list(o.shape), raw) for o, raw in zip(resp.outputs, resp.raw_output_contents)}
        assert by_name["y"][0] == list(x.shape)
        np.testing.assert_allclose(np.frombuffer(by_name["y"][1], np.float32).reshape(x.shape), 2 * x + 1, rtol=1e-5)
        np.testing.assert_allclose(np.frombuffer(by_name["s"][1], np.float32), x.sum(axis=1), rtol=1e-4, atol=1e-4)


def test_hundreds_of_concurrent_requests_each_get_their_rows(rows_xml):
    # the steady clock, several submitting threads, batches forming under load
    s, q, _ = make(rows_xml, max_batch_size=8, delay_us=200, nireq=2, manual=False)
    xs = {i: sample(1 + i % 3, 1000 + i) for i in range(600)}

    def feed(tags):
        for t in tags:
            submit(s, xs[t], t)

    threads = [threading.Thread(target=feed, args=(list(range(k, 600, 6)),)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(wait(q, 600), xs)
    sizes = batches(s)
    assert sum(n * c for n, c in sizes.items()) <= sum(x.shape[0] for x in xs.values())
    assert max(sizes) > 1, f"no batch formed: {sizes}"


def test_model_whose_batch_cannot_vary_is_refused(tmp_path):
    static = str(M.build_add(tmp_path / "add") / "1" / "model.xml")
    q = _native.CompletionQueue()
    with pytest.raises(_native.FailedPreconditionError, match="dynamic_batching needs a model whose batch dimension"):
        servable(static, q, max_batch_size=4)
    with pytest.raises(_native.FailedPreconditionError, match="hold max_batch_size 4 rows"):
        servable(static, q, max_batch_size=4, batch_size=(1, 2))
    for batch_size in ((0, -1), (1, 4)):  # reshaped at load: batches
        s = servable(static, q, max_batch_size=4, batch_size=batch_size)
        assert s.max_batch_size == 4
    with pytest.raises(_native.InvalidArgumentError, match="preferred_batch_sizes"):
        servable(static, q, max_batch_size=4, batch_size=(0, -1), preferred_batch_sizes=[8])


def test_without_batching_nothing_is_batched(rows_xml):
    q = _native.CompletionQueue()
    s = servable(rows_xml, q, nireq=1)
    assert s.max_batch_size == 0
    xs = {i: sample(1, 200 + i) for i in range(5)}
    for i, x in xs.items():
        submit(s, x, i)
    check(wait(q, 5), xs)
    assert batches(s) == {}


# -- property: any interleaving of submits and clock moves --------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ops = st.lists(st.one_of(st.tuples(st.just("submit"), st.integers(0, 10), st.sampled_from([3, 5])),
                          st.tuples(st.just("advance"), st.integers(0, 300), st.just(0))), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops_=_ops, max_batch=st.integers(1, 6), delay=st.sampled_from([0, 50, 200]),
       preferred=st.lists(st.integers(1, 6), max_size=2, unique=True), nireq=st.integers(1, 2))
def test_any_interleaving_answers_every_row_once(ragged_xml, ops_, max_batch, delay, preferred, nireq):
    preferred = [p for p in preferred if p <= max_batch]
    s, q, clock = make(ragged_xml, max_batch_size=max_batch, delay_us=delay, preferred=preferred, nireq=nireq)
    xs = {}
    for i, (op, a, width) in enumerate(ops_):
        if op == "submit":
            xs[i] = sample(a, 5000 + i, width)  # 0 rows included: runs alone
            submit(s, xs[i], i)
        else:
            clock.advance_us(a)
    s.drain()
    done = wait(q, len(xs))
    check(done, xs)
    counts, total_rows = s.metrics()["batch_size"]
    assert total_rows == sum(x.shape[0] for x in xs.values())
    assert sum(counts) <= len(xs)
    # no batch is bigger than max_batch_size, or than a request that ran alone (as far as buckets tell)
    bounds = list(_native.BATCH_SIZE_BOUNDS)
    limit = max(max_batch, max((x.shape[0] for x in xs.values()), default=0))
    assert max((i for i, c in enumerate(counts) if c), default=0) <= next(i for i, b in enumerate(bounds) if b >= limit)
