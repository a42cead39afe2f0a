"""Dynamic batching end to end: a real server with ``dynamic_batching`` in config.json, real clients
(tritonclient gRPC and HTTP, ovmsclient gRPC and HTTP), hundreds of concurrent requests with distinct
inputs, every answer checked row by row; bad requests mixed in fail alone; PNG inputs are batched;
the batch-size histogram on /metrics shows that batches formed and counts every row.

Timing (which request lands in which batch) is not asserted here: tests/native/test_batching.py
checks the batcher's decisions on a manual clock.
"""
from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openvino as ov
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from openvino import opset13 as ops
from ovmsclient import make_grpc_client, make_http_client
from tritonclient.utils import InferenceServerException

import models as M
from kserve_util import rest

PIL = pytest.importorskip("PIL.Image")

pytestmark = pytest.mark.timeout(300)

WIDTH = 4
IMG = 8  # the image model takes 8x8 RGB images
WIDE = 64 * 1024  # the "wide" model's rows: 256 KB each


def build_image_means(base):
    """Input ``img`` FP32 [-1,8,8,3] (NHWC) -> output ``m`` [-1,3]: each image's mean per channel."""
    img = M._name(ops.parameter(ov.PartialShape([-1, IMG, IMG, 3]), ov.Type.f32, name="img"), "img")
    m = M._name(ops.reduce_mean(img, ops.constant(np.array([1, 2], np.int64)), False), "m")
    return M._save(ov.Model([ops.result(m)], [img], "image_means"), base)


def png(rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    PIL.new("RGB", (IMG, IMG), rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(ovfast_server_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("batching")
    batching = {"max_batch_size": 8, "max_queue_delay_us": 50_000}
    cfg = {"model_config_list": [
        {"config": {"name": "rows", "base_path": str(M.build_rows(root / "rows", width=WIDTH)),
                    "dynamic_batching": batching}},
        {"config": {"name": "images", "base_path": str(build_image_means(root / "images")),
                    "dynamic_batching": batching}},
        {"config": {"name": "wide", "base_path": str(M.build_rows(root / "wide", width=WIDE)),
                    "dynamic_batching": {"max_batch_size": 8, "max_queue_delay_us": 2000}}},
    ], "monitoring": {"metrics": {"enable": True}}}
    path = root / "config.json"
    path.write_text(json.dumps(cfg))
    return ovfast_server_session("--config_path", str(path), "--file_system_poll_wait_seconds", "0")


def sample(i: int) -> np.ndarray:
    """Request i: 1 to 3 rows of distinct values."""
    return np.random.default_rng(i).standard_normal((1 + i % 3, WIDTH)).astype(np.float32)


def check_rows(x: np.ndarray, y: np.ndarray, s: np.ndarray) -> None:
    np.testing.assert_allclose(y, 2 * x + 1, rtol=1e-5)
    np.testing.assert_allclose(s, x.sum(axis=1), rtol=1e-4, atol=1e-4)


def histogram(server, family: str, model: str) -> tuple[float, float]:
    """(count, sum) of a histogram family's series for `model` on /metrics."""
    text = rest(server.http_url, "GET", "/metrics").body.decode()
    count = total = 0.0
    for line in text.splitlines():
        if f'name="{model}"' not in line:
            continue
        if line.startswith(family + "_count"):
            count += float(line.rsplit(" ", 1)[1])
        elif line.startswith(family + "_sum"):
            total += float(line.rsplit(" ", 1)[1])
    return count, total


def triton_inputs(mod, x: np.ndarray):
    inp = mod.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return [inp]


def test_hundreds_of_concurrent_requests_over_every_api(server):
    rows_before, sum_before = histogram(server, "ovfast_batch_size", "rows")
    g = grpcclient.InferenceServerClient(server.grpc_url)
    stats_before = g.get_inference_statistics("rows").model_stats[0]
    tfs_g = make_grpc_client(server.grpc_url)
    local = threading.local()  # the HTTP clients are not thread-safe: one per thread

    def one(i: int) -> int:
        x = sample(i)
        api = i % 4
        if api == 0:
            r = g.infer("rows", triton_inputs(grpcclient, x))
            check_rows(x, r.as_numpy("y"), r.as_numpy("s"))
        elif api == 1:
            if not hasattr(local, "h"):
                local.h = httpclient.InferenceServerClient(server.http_url)
            r = local.h.infer("rows", triton_inputs(httpclient, x))
            check_rows(x, r.as_numpy("y"), r.as_numpy("s"))
        else:
            if api == 3 and not hasattr(local, "tfs_h"):
                local.tfs_h = make_http_client(server.http_url)
            out = (tfs_g if api == 2 else local.tfs_h).predict({"x": x}, "rows")
            check_rows(x, out["y"], out["s"])
        return x.shape[0]

    n = 400
    with ThreadPoolExecutor(32) as pool:
        rows = sum(pool.map(one, range(n)))
    batches, total_rows = histogram(server, "ovfast_batch_size", "rows")
    assert total_rows - sum_before == rows  # every row went through the batcher exactly once
    assert 0 < batches - rows_before < n, "no two requests ever shared an inference"
    # Triton's statistics (what perf_analyzer reports): rows inferred, and batches executed
    stats = g.get_inference_statistics("rows").model_stats[0]
    assert stats.inference_count - stats_before.inference_count == rows
    assert stats.execution_count - stats_before.execution_count == batches - rows_before
    rest_stats = rest(server.http_url, "GET", "/v2/models/rows/stats").json()["model_stats"][0]
    assert (rest_stats["inference_count"], rest_stats["execution_count"]) == (
        stats.inference_count, stats.execution_count)
    g.close()


def test_bad_requests_fail_alone(server):
    g = grpcclient.InferenceServerClient(server.grpc_url)

    def one(i: int):
        if i % 5 == 4:  # wrong width, or wrong type: rejected, the rest of its batch is unaffected
            bad = np.zeros((1, WIDTH + 1), np.float32) if i % 10 == 4 else np.zeros((1, WIDTH), np.float64)
            inp = grpcclient.InferInput("x", list(bad.shape), "FP32" if bad.dtype == np.float32 else "FP64")
            inp.set_data_from_numpy(bad)
            with pytest.raises(InferenceServerException) as e:
                g.infer("rows", [inp])
            assert "INVALID_ARGUMENT" in str(e.value.status())
            return False
        x = sample(1000 + i)
        r = g.infer("rows", triton_inputs(grpcclient, x))
        check_rows(x, r.as_numpy("y"), r.as_numpy("s"))
        return True

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(one, range(200)))
    assert results.count(False) == 40
    g.close()


def test_png_inputs_are_batched(server):
    before, _ = histogram(server, "ovfast_batch_size", "images")
    colours = [((7 * i) % 256, (13 * i + 50) % 256, (29 * i + 100) % 256) for i in range(96)]
    g = grpcclient.InferenceServerClient(server.grpc_url)
    tfs = make_grpc_client(server.grpc_url)

    def one(i: int):
        r, gr, b = colours[i]
        if i % 2:
            inp = grpcclient.InferInput("img", [1], "BYTES")
            inp.set_data_from_numpy(np.array([png(colours[i])], dtype=np.object_))
            m = g.infer("images", [inp]).as_numpy("m")
        else:
            m = tfs.predict({"img": [png(colours[i])]}, "images")
        np.testing.assert_allclose(np.asarray(m).reshape(3), [b, gr, r], atol=1e-3)  # decoded as BGR (OVMS)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(len(colours))))
    g.close()
    batches, _ = histogram(server, "ovfast_batch_size", "images")
    assert 0 < batches - before < len(colours)


def test_queue_delay_histogram_counts_every_request(server):
    g = grpcclient.InferenceServerClient(server.grpc_url)
    before, _ = histogram(server, "ovfast_batch_queue_delay_us", "rows")
    for i in range(5):
        x = sample(2000 + i)
        r = g.infer("rows", triton_inputs(grpcclient, x))
        check_rows(x, r.as_numpy("y"), r.as_numpy("s"))
    after, waited_us = histogram(server, "ovfast_batch_queue_delay_us", "rows")
    assert after - before == 5
    assert waited_us > 0  # a lone request waits out max_queue_delay_us
    g.close()


def test_batched_requests_do_not_leak(server):
    """Hundreds of batched 256 KB requests (in and out), some rejected, leave RSS where it was:
    a leaked request buffer, gathered batch or response would add ~100 MB per 400 requests."""
    g = grpcclient.InferenceServerClient(server.grpc_url)
    x = np.full((1, WIDE), 0.5, np.float32)

    def one(i: int) -> None:
        if i % 4 == 3:  # rejected: wrong width
            inp = grpcclient.InferInput("x", [1, WIDE + 1], "FP32")
            inp.set_data_from_numpy(np.zeros((1, WIDE + 1), np.float32))
            with pytest.raises(InferenceServerException):
                g.infer("wide", [inp])
            return
        r = g.infer("wide", triton_inputs(grpcclient, x))
        assert r.as_numpy("s")[0] == pytest.approx(0.5 * WIDE)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(100)))  # warm up allocator pools
        before = server.rss_mb()
        list(pool.map(one, range(400)))
        after = server.rss_mb()
    g.close()
    assert after - before < 48, f"RSS grew from {before:.0f} MB to {after:.0f} MB"


def test_sigterm_flushes_the_batch_queue(ovfast_server, tmp_path):
    """Requests waiting in the batcher when SIGTERM arrives are run at once and answered (the queue
    delay here is an hour), then the process exits 0."""
    srv = ovfast_server("--model_name", "rows", "--model_path", str(M.build_rows(tmp_path / "rows", width=WIDTH)),
                        "--max_batch_size", "64", "--max_queue_delay_us", "3600000000", "--metrics_enable")
    n = 6
    results: dict[int, object] = {}
    clients = [grpcclient.InferenceServerClient(srv.grpc_url) for _ in range(n)]
    for c in clients:
        assert c.is_server_live()  # connected before anything is sent

    def run(i: int) -> None:
        x = sample(3000 + i)
        try:
            r = clients[i].infer("rows", triton_inputs(grpcclient, x), client_timeout=120)
            check_rows(x, r.as_numpy("y"), r.as_numpy("s"))
            results[i] = True
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(600):  # until all n wait in the queue (ovms_current_requests)
        text = rest(srv.http_url, "GET", "/metrics").body.decode()
        current = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("ovms_current_requests{"))
        if current == n:
            break
        threading.Event().wait(0.05)
    assert current == n and not results, (current, results)
    srv.terminate()
    for t in threads:
        t.join(150)
    rc = srv.wait(60)
    for c in clients:
        c.close()
    assert results == {i: True for i in range(n)}, f"{results}\n{srv.log()}"
    assert rc == 0, srv.log()
