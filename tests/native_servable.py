"""Building a native Servable in tests: keyword knobs -> one ``_native.ModelOptions``."""
from __future__ import annotations

import select
import time

from ovfast import _native


def options(path: str, **knobs) -> _native.ModelOptions:
    """``knobs`` are ModelOptions attributes (device, nireq, shapes, batch_size=(min, max), max_batch_size, ...)."""
    o = _native.ModelOptions()
    o.model_path = str(path)
    for key, value in knobs.items():
        if not hasattr(o, key):
            raise TypeError(f"ModelOptions has no knob {key!r}")
        setattr(o, key, value)
    return o


def servable(path: str, queue: _native.CompletionQueue, *, core: _native.Core | None = None,
             clock: _native.ManualClock | None = None, **knobs) -> _native.Servable:
    return _native.Servable(core or _native.Core(), options(path, **knobs), queue, clock)


def completions(queue: _native.CompletionQueue, n: int, timeout_s: float = 60) -> dict:
    """The next ``n`` completions of ``queue``, by context: {context: (code, message, payload)}."""
    done: dict = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < n:
        assert time.monotonic() < deadline, f"only {len(done)} of {n} completions"
        select.select([queue.fileno()], [], [], 1)
        for ctx, code, msg, payload, _infer_us, _wait_us in queue.drain():
            assert ctx not in done
            done[ctx] = (code, msg, payload)
    return done
