"""The OpenVINO side shared by every peer's model class (runs inside the peer's virtualenv).

Only numpy and openvino are imported here: this file is put on the peer's PYTHONPATH, not the harness.
``OVPool.infer`` is the asyncio form (a pool of infer requests, completions handed back to the loop),
``OVPool.infer_sync`` runs one request on the calling thread (for servers that call into Python from
their own threads, like PyTriton).
"""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import openvino as ov


class OVPool:
    def __init__(self, xml: str, hint: str = "THROUGHPUT", dynamic_batch: bool = False, nireq: int = 0) -> None:
        core = ov.Core()
        model = core.read_model(xml)
        if dynamic_batch:
            model.reshape({p.get_any_name(): ov.PartialShape([-1, *list(p.get_partial_shape())[1:]])
                           for p in model.inputs})
        self.compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint})
        n = nireq or int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.requests = [self.compiled.create_infer_request() for _ in range(max(1, n))]
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self._idle: asyncio.Queue | None = None
        self._local = threading.local()

    def _outputs(self, req) -> dict:
        return {name: np.array(req.get_output_tensor(i).data, copy=True) for i, name in enumerate(self.output_names)}

    async def infer(self, inputs: dict) -> dict:
        loop = asyncio.get_running_loop()
        if self._idle is None:
            self._idle = asyncio.Queue()
            for r in self.requests:
                self._idle.put_nowait(r)
        req = await self._idle.get()
        try:
            fut = loop.create_future()

            def done(_userdata, fut=fut):
                loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))

            req.set_callback(done, None)
            req.start_async(inputs)
            await fut
            return self._outputs(req)
        finally:
            self._idle.put_nowait(req)

    def infer_sync(self, inputs: dict) -> dict:
        req = getattr(self._local, "req", None)
        if req is None:
            req = self._local.req = self.compiled.create_infer_request()
        req.infer(inputs)
        return self._outputs(req)
