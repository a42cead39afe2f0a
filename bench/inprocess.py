"""The limit: the model run in this process by OpenVINO, no server in between.

- throughput: an ``openvino.AsyncInferQueue`` with the server's nireq, compiled with the server's
  PERFORMANCE_HINT and NUM_STREAMS, kept full for ``seconds`` (what ``benchmark_app`` measures);
- latency: one request at a time (``InferRequest.infer``), compiled with the LATENCY hint.
"""
from __future__ import annotations

import time

import numpy as np
import openvino as ov

from bench.stats import percentile


def _compile(core: ov.Core, xml: str, config: dict, input_name: str, shape) -> ov.CompiledModel:
    model = core.read_model(xml)
    if not model.inputs[0].get_partial_shape().is_static:
        model.reshape({input_name: ov.PartialShape(list(shape))})
    return core.compile_model(model, "CPU", config)


def async_throughput(xml: str, input_name: str, data: np.ndarray, config: dict, nireq: int,
                     seconds: float, warmup: float = 0.5) -> dict:
    """Keep ``nireq`` requests in flight for ``seconds``; returns infer/s and latency percentiles (µs).

    ``nireq`` 0 takes the compiled model's OPTIMAL_NUMBER_OF_INFER_REQUESTS. ``rows_per_sec`` is
    infer/s times the rows (first dimension) of ``data``.
    """
    core = ov.Core()
    compiled = _compile(core, xml, config, input_name, data.shape)
    if nireq <= 0:
        nireq = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, nireq)
    lat_ns: list[int] = []
    record = [False]

    def on_done(_request, start_ns):
        if record[0]:
            lat_ns.append(time.perf_counter_ns() - start_ns)

    queue.set_callback(on_done)
    for i in range(len(queue)):  # inputs bound once per request, as a server binds request memory
        queue[i].set_tensor(input_name, ov.Tensor(data))
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        queue.start_async(None, time.perf_counter_ns())
    queue.wait_all()
    record[0] = True
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        queue.start_async(None, time.perf_counter_ns())
    queue.wait_all()
    summary = _summary(lat_ns, time.perf_counter() - t0)
    rows = int(data.shape[0]) if data.ndim else 1
    return {
        **summary,
        "batch": rows,
        "rows_per_sec": summary["infer_per_sec"] * rows,
        "nireq": nireq,
        "config": {k: str(v) for k, v in config.items()},
        "compiled_streams": int(compiled.get_property("NUM_STREAMS")),
        "inference_precision": compiled.get_property("INFERENCE_PRECISION_HINT").to_string(),
    }


def _summary(lat_ns: list[int], elapsed: float) -> dict:
    """Throughput and latency percentiles (µs) of one measured window."""
    lat_us = np.asarray(lat_ns, dtype=np.float64) / 1e3
    return {"infer_per_sec": len(lat_ns) / elapsed, "p50_us": percentile(lat_us, 50),
            "p99_us": percentile(lat_us, 99), "count": len(lat_ns)}


def sync_latency(xml: str, input_name: str, data: np.ndarray, seconds: float, warmup: int = 5) -> dict:
    """One request at a time with the LATENCY hint; returns p50/p99 (µs) and the resulting infer/s."""
    core = ov.Core()
    compiled = _compile(core, xml, {"PERFORMANCE_HINT": "LATENCY"}, input_name, data.shape)
    req = compiled.create_infer_request()
    req.set_tensor(input_name, ov.Tensor(data))
    for _ in range(warmup):
        req.infer()
    lat_ns: list[int] = []
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        s = time.perf_counter_ns()
        req.infer()
        lat_ns.append(time.perf_counter_ns() - s)
        if time.perf_counter() >= end:
            break
    return {
        **_summary(lat_ns, time.perf_counter() - t0),
        "config": {"PERFORMANCE_HINT": "LATENCY"},
    }
