"""Many concurrent clients each get their own answer; SIGTERM drains in-flight requests."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

import models as M

pytestmark = pytest.mark.timeout(240)


def add_input(seed: int) -> np.ndarray:
    """Distinct [1,10] data per request: exact in FP32 so b + 1 compares exactly."""
    return (np.arange(10, dtype=np.float32) + seed * 16.0).reshape(1, 10)


def _grpc_worker(url: str, worker: int, n: int) -> list[int]:
    client = grpcclient.InferenceServerClient(url)
    bad = []
    try:
        for i in range(n):
            seed = worker * 1000 + i
            x = add_input(seed)
            inp = grpcclient.InferInput("b", [1, 10], "FP32")
            inp.set_data_from_numpy(x)
            res = client.infer("add", [inp], request_id=str(seed))
            if res.get_response().id != str(seed) or not np.array_equal(res.as_numpy("a"), x + 1):
                bad.append(seed)
    finally:
        client.close()
    return bad


def _http_worker(url: str, worker: int, n: int) -> list[int]:
    client = httpclient.InferenceServerClient(url)
    bad = []
    try:
        for i in range(n):
            seed = 500_000 + worker * 1000 + i
            x = add_input(seed)
            inp = httpclient.InferInput("b", [1, 10], "FP32")
            inp.set_data_from_numpy(x, binary_data=(i % 2 == 0))
            out = httpclient.InferRequestedOutput("a", binary_data=(i % 3 == 0))
            res = client.infer("add", [inp], outputs=[out], request_id=str(seed))
            if res.get_response()["id"] != str(seed) or not np.array_equal(res.as_numpy("a"), x + 1):
                bad.append(seed)
    finally:
        client.close()
    return bad


def test_threads_grpc_and_http_clients(main_server):
    """16 threads, each with its own client, 320 requests in total, mixed transports."""
    workers, per_worker = 8, 20
    with ThreadPoolExecutor(2 * workers) as ex:
        futs = [ex.submit(_grpc_worker, main_server.grpc_url, w, per_worker) for w in range(workers)]
        futs += [ex.submit(_http_worker, main_server.http_url, w, per_worker) for w in range(workers)]
        bad = [s for f in futs for s in f.result()]
    assert bad == []


def test_grpc_aio_concurrent(main_server):
    import tritonclient.grpc.aio as aiogrpc

    async def run():
        clients = [aiogrpc.InferenceServerClient(main_server.grpc_url) for _ in range(4)]
        try:

            async def one(seed):
                x = add_input(seed)
                inp = aiogrpc.InferInput("b", [1, 10], "FP32")
                inp.set_data_from_numpy(x)
                res = await clients[seed % len(clients)].infer("add", [inp], request_id=f"aio-{seed}")
                return res.get_response().id == f"aio-{seed}" and np.array_equal(res.as_numpy("a"), x + 1)

            return await asyncio.gather(*(one(s) for s in range(300)))
        finally:
            for c in clients:
                await c.close()

    results = asyncio.run(run())
    assert all(results), [i for i, ok in enumerate(results) if not ok]


def test_http_aio_concurrent(main_server):
    import tritonclient.http.aio as aiohttpclient

    async def run():
        client = aiohttpclient.InferenceServerClient(main_server.http_url, conn_limit=64)
        try:

            async def one(seed):
                x = add_input(seed)
                inp = aiohttpclient.InferInput("b", [1, 10], "FP32")
                inp.set_data_from_numpy(x, binary_data=bool(seed % 2))
                res = await client.infer("add", [inp], request_id=f"h-{seed}")
                return res.get_response()["id"] == f"h-{seed}" and np.array_equal(res.as_numpy("a"), x + 1)

            return await asyncio.gather(*(one(s) for s in range(300)))
        finally:
            await client.close()

    results = asyncio.run(run())
    assert all(results), [i for i, ok in enumerate(results) if not ok]


def test_concurrent_mixed_models(main_server):
    """Concurrent requests to different models (and shapes) do not get each other's answers."""

    def dyn(seed):
        c = grpcclient.InferenceServerClient(main_server.grpc_url)
        try:
            rows = 1 + seed % 5
            x = np.full((rows, 3), float(seed), np.float32)
            i = grpcclient.InferInput("x", [rows, 3], "FP32")
            i.set_data_from_numpy(x)
            return np.array_equal(c.infer("dynamic", [i]).as_numpy("y"), x * 2)
        finally:
            c.close()

    def two(seed):
        c = httpclient.InferenceServerClient(main_server.http_url)
        try:
            x = np.full((1, 4), float(seed), np.float32)
            y = np.arange(4, dtype=np.float32).reshape(1, 4)
            ins = []
            for n, v in (("x", x), ("y", y)):
                i = httpclient.InferInput(n, [1, 4], "FP32")
                i.set_data_from_numpy(v)
                ins.append(i)
            res = c.infer("two_io", ins, outputs=[httpclient.InferRequestedOutput("prod")])
            return np.array_equal(res.as_numpy("prod"), x * y)
        finally:
            c.close()

    with ThreadPoolExecutor(16) as ex:
        futs = [ex.submit(dyn if s % 2 else two, s) for s in range(120)]
        assert all(f.result() for f in futs)


# -- graceful shutdown ---------------------------------------------------------------------


@pytest.fixture
def slow_server(ovfast_server, slow_model):
    return ovfast_server("--model_name", "slow", "--model_path", str(slow_model))


def _slow_x(seed: int) -> np.ndarray:
    return (np.arange(M.SLOW_WIDTH, dtype=np.float32) % 97 + seed).reshape(1, M.SLOW_WIDTH)


def test_sigterm_drains_in_flight_requests(slow_server):
    """SIGTERM while requests are queued/running: every accepted request completes correctly,
    then the process exits 0."""
    n_grpc, n_http = 8, 4
    n = n_grpc + n_http
    connected = threading.Barrier(n + 1)
    first_done = threading.Event()
    results: dict[str, object] = {}

    def run(key, make_client, infer, x):
        # each thread owns its client (geventhttpclient clients are thread-bound) and connects
        # before any request is sent, so SIGTERM cannot race a TCP connect
        client = make_client()
        try:
            assert client.is_server_live()
            connected.wait(60)
            try:
                y = infer(client, x)
                results[key] = np.allclose(y, x + 1, rtol=1e-3, atol=1e-2) or f"wrong answer {y[0, :4]}"
            except Exception as e:  # noqa: BLE001 - reported below
                results[key] = repr(e)
            first_done.set()
        finally:
            client.close()

    def grpc_infer(client, x):
        i = grpcclient.InferInput("x", [1, M.SLOW_WIDTH], "FP32")
        i.set_data_from_numpy(x)
        return client.infer("slow", [i], client_timeout=120).as_numpy("y")

    def http_infer(client, x):
        i = httpclient.InferInput("x", [1, M.SLOW_WIDTH], "FP32")
        i.set_data_from_numpy(x)
        return client.infer("slow", [i]).as_numpy("y")

    threads = [
        threading.Thread(
            target=run,
            args=(f"g{k}", lambda: grpcclient.InferenceServerClient(slow_server.grpc_url), grpc_infer, _slow_x(k)),
        )
        for k in range(n_grpc)
    ]
    threads += [
        threading.Thread(
            target=run,
            args=(
                f"h{k}",
                lambda: httpclient.InferenceServerClient(slow_server.http_url, network_timeout=120),
                http_infer,
                _slow_x(100 + k),
            ),
        )
        for k in range(n_http)
    ]
    for t in threads:
        t.start()
    connected.wait(60)
    # once one request has come back the server is busy with the rest, all sent on open connections
    assert first_done.wait(120), slow_server.log()
    in_flight = n - len(results)
    slow_server.terminate()
    for t in threads:
        t.join(150)
    rc = slow_server.wait(60)
    failures = {k: v for k, v in results.items() if v is not True}
    assert len(results) == n, f"{sorted(results)}\n{slow_server.log()}"
    assert failures == {}, f"{failures}\n{slow_server.log()}"
    assert rc == 0, slow_server.log()
    if in_flight == 0:
        pytest.skip("inconclusive: all requests finished before SIGTERM (machine too fast for the slow model)")


def test_sigterm_idle_exits_zero(ovfast_server, model_repo):
    srv = ovfast_server("--model_name", "add", "--model_path", str(model_repo.paths["add"]))
    assert srv.stop() == 0, srv.log()
