"""ServableMetrics through the binding: what submit/on_done count natively, route -1 counts nothing,
and Servable.count() for requests that never reach submit. No server, no transport."""

from __future__ import annotations

import select
import time

import numpy as np
import pytest

import models as M
from native_servable import servable as make_servable
from ovfast import _native
from ovfast.observability.metrics import ROUTE_ID, ROUTE_KSERVE_REST_INFER, ROUTES

DATA = np.ones((1, 10), np.float32)


@pytest.fixture(scope="module")
def servable(tmp_path_factory):
    base = M.build_add(tmp_path_factory.mktemp("sm") / "add")
    queue = _native.CompletionQueue()
    s = make_servable(str(base / "1" / "model.xml"), queue, device="CPU", nireq=2)
    return s, queue


def run(s, queue, n: int, route: int, shape=(1, 10)) -> list:
    """Submits n jobs and waits for their n completions."""
    data = np.ones(shape, np.float32)
    for i in range(n):
        s.submit_tensors([(M.ADD_INPUT, "FP32", list(shape), data)], None, i, route, time.monotonic_ns())
    done: list = []
    while len(done) < n:
        select.select([queue.fileno()], [], [], 30)
        done += queue.drain()
    return done


def test_submit_counts_successes_failures_and_histograms(servable):
    s, q = servable
    before = s.metrics()
    results = run(s, q, 6, ROUTE_KSERVE_REST_INFER)
    assert all(code == 0 for _, code, *_ in results)
    with pytest.raises(_native.InvalidArgumentError):
        s.submit_tensors([(M.ADD_INPUT, "FP32", [1, 3], np.ones((1, 3), np.float32))], None, 0,
                         ROUTE_KSERVE_REST_INFER)
    after = s.metrics()
    r = ROUTE_KSERVE_REST_INFER
    assert after["success"][r] - before["success"][r] == 6
    assert after["fail"][r] - before["fail"][r] == 1
    assert sum(after["inference_us"][0]) - sum(before["inference_us"][0]) == 6
    assert sum(after["wait_us"][0]) - sum(before["wait_us"][0]) == 6
    grpc_hist, rest_hist = after["request_us"]
    assert sum(rest_hist[0]) - sum(before["request_us"][1][0]) == 6  # REST route -> REST histogram
    assert sum(grpc_hist[0]) == sum(before["request_us"][0][0])
    assert len(after["inference_us"][0]) == len(_native.HISTOGRAM_BOUNDS_US) + 1  # + Inf
    # decremented before the completion is queued, so it is exact once every completion arrived
    # (Servable.active is not: the slot is handed back after the push)
    assert after["current_requests"] == 0


def test_no_route_counts_nothing(servable):
    s, q = servable
    before = s.metrics()
    run(s, q, 3, -1)
    with pytest.raises(_native.InvalidArgumentError):
        s.submit_tensors([(M.ADD_INPUT, "FP32", [1, 3], np.ones((1, 3), np.float32))], None, 0, -1)
    assert s.metrics() == before


def test_count_for_requests_outside_submit(servable):
    s, _ = servable
    route = ROUTE_ID[("KServe", "gRPC", "ModelMetadata")]
    before = s.metrics()
    s.count(route, True)
    s.count(route, False)
    after = s.metrics()
    assert after["success"][route] == before["success"][route] + 1
    assert after["fail"][route] == before["fail"][route] + 1
    assert after["request_us"] == before["request_us"]  # only inference routes feed request time
    with pytest.raises(ValueError):
        s.count(len(ROUTES), True)


def test_bucket_bounds_are_ovms():
    assert list(_native.HISTOGRAM_BOUNDS_US) == [int(10 * 1.8**i) for i in range(33)]
