"""A small KServe v2 gRPC load generator for servers perf_analyzer cannot drive.

perf_analyzer first asks for Triton's ModelConfig, which MLServer and KServe's Python server do
not implement. This generator needs only ModelInfer: ``concurrency`` coroutines on one
``tritonclient.grpc.aio`` channel, each sending its next request when the previous answer arrives
(closed loop, like perf_analyzer's concurrency mode). It reads lower than perf_analyzer (Python
client cost on the same cores), so the harness also runs it against ovfast: peers are compared
with ovfast through the same generator. ``run_calls`` puts any client-side sequence of calls in the same
loop (bench/ocr.py: a client doing a pipeline's steps itself, model by model).
"""
from __future__ import annotations

import asyncio
import time

import numpy as np

from bench.stats import percentile


async def _closed_loop(url: str, make_call, concurrency: int, seconds: float, warmup: float) -> dict:
    """``concurrency`` coroutines on one client, each awaiting ``call()`` again as soon as it returns."""
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        call = make_call(client)
        # first call outside the clock: connects, and fails loudly if the model is wrong
        await call()
        lat_ns: list[int] = []
        errors = [0]
        state = {"record": False, "stop": False}

        async def worker():
            while not state["stop"]:
                t = time.perf_counter_ns()
                try:
                    await call()
                except Exception:  # counted, not raised: a load generator keeps going
                    errors[0] += 1
                    continue
                if state["record"]:
                    lat_ns.append(time.perf_counter_ns() - t)

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        state["record"] = True
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        state["record"] = False
        elapsed = time.perf_counter() - t0
        n = len(lat_ns)
        state["stop"] = True
        await asyncio.gather(*tasks)
    finally:
        await client.close()
    lat_us = np.asarray(lat_ns[:n], dtype=np.float64) / 1e3
    return {"concurrency": concurrency, "infer_per_sec": n / elapsed, "p50_us": percentile(lat_us, 50),
            "p99_us": percentile(lat_us, 99), "count": n, "errors": errors[0]}


def _one_model(model: str, input_name: str, data: np.ndarray, datatype: str):
    def make_call(client):
        import tritonclient.grpc.aio as grpcclient

        inp = grpcclient.InferInput(input_name, list(data.shape), datatype)
        inp.set_data_from_numpy(data)
        inputs = [inp]
        return lambda: client.infer(model, inputs)

    return make_call


def run_point(url: str, model: str, input_name: str, data: np.ndarray, datatype: str, concurrency: int,
              seconds: float, warmup: float = 0.5) -> dict:
    """One closed-loop measurement at ``concurrency`` for ``seconds`` after ``warmup``."""
    try:
        return asyncio.run(_closed_loop(url, _one_model(model, input_name, data, datatype), concurrency, seconds,
                                        warmup))
    except Exception as exc:
        return {"concurrency": concurrency, "error": f"{type(exc).__name__}: {exc}"}


def run_calls(url: str, make_call, concurrency: int, seconds: float, warmup: float = 0.5) -> dict:
    """The same closed loop around any client-side work: ``make_call(client)`` (a ``tritonclient.grpc.aio``
    client) returns the coroutine function one request of the loop awaits (e.g. several calls in a row)."""
    try:
        return asyncio.run(_closed_loop(url, make_call, concurrency, seconds, warmup))
    except Exception as exc:
        return {"concurrency": concurrency, "error": f"{type(exc).__name__}: {exc}"}
