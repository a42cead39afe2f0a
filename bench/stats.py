"""Small numeric helpers shared by the measuring modules."""
from __future__ import annotations

import threading
import time

import numpy as np


def percentile(values, q: float) -> float | None:
    """The q-th percentile of ``values`` (None when empty)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return None
    return float(np.percentile(arr, q))


def run_threads(count: int, target, seconds: float) -> float:
    """Runs ``target(k, ready, deadline)`` on ``count`` threads: each prepares (connects, warms up), calls
    ``ready()``, then works while ``time.perf_counter() < deadline()``. The clock starts once all are ready and
    stops when the last has finished; returns those seconds."""
    start = threading.Barrier(count + 1)
    stop_at = [time.perf_counter() + 3600]
    threads = [threading.Thread(target=target, args=(k, start.wait, lambda: stop_at[0])) for k in range(count)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    for t in threads:
        t.join()
    return time.perf_counter() - t0
