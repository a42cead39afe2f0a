"""A small KServe v2 gRPC load generator for servers perf_analyzer cannot drive.

perf_analyzer first asks for Triton's ModelConfig, which MLServer and KServe's Python server do
not implement. This generator needs only ModelInfer: ``concurrency`` coroutines on one
``tritonclient.grpc.aio`` channel, each sending its next request when the previous answer arrives
(closed loop, like perf_analyzer's concurrency mode). It reads lower than perf_analyzer (Python
client cost on the same cores), so the harness also runs it against ovfast: peers are compared
with ovfast through the same generator.
"""
from __future__ import annotations

import asyncio
import time

import numpy as np

from bench.stats import percentile


async def _run(url: str, model: str, input_name: str, data: np.ndarray, datatype: str, concurrency: int,
               seconds: float, warmup: float) -> dict:
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        inp = grpcclient.InferInput(input_name, list(data.shape), datatype)
        inp.set_data_from_numpy(data)
        inputs = [inp]
        # first call outside the clock: connects, and fails loudly if the model is wrong
        await client.infer(model, inputs)
        lat_ns: list[int] = []
        errors = [0]
        state = {"record": False, "stop": False}

        async def worker():
            while not state["stop"]:
                t = time.perf_counter_ns()
                try:
                    await client.infer(model, inputs)
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


def run_point(url: str, model: str, input_name: str, data: np.ndarray, datatype: str, concurrency: int,
              seconds: float, warmup: float = 0.5) -> dict:
    """One closed-loop measurement at ``concurrency`` for ``seconds`` after ``warmup``."""
    try:
        return asyncio.run(_run(url, model, input_name, data, datatype, concurrency, seconds, warmup))
    except Exception as exc:
        return {"concurrency": concurrency, "error": f"{type(exc).__name__}: {exc}"}
