"""The completion path: native results -> asyncio futures.

OpenVINO threads push finished jobs onto the native CompletionQueue and signal
its eventfd; the event loop watches that fd and resolves futures in batches.
No OpenVINO thread ever takes the GIL.
"""
from __future__ import annotations

import asyncio
import logging

from ovfast import _native
from ovfast.errors import error_from_code

log = logging.getLogger("ovfast.completions")


class CompletionDispatcher:
    def __init__(self) -> None:
        self.queue = _native.CompletionQueue()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.queue.fileno(), self._on_ready)

    def detach(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.queue.fileno())
            self._on_ready()
            self._loop = None

    def _on_ready(self) -> None:
        for fut, code, message, payload, infer_us, wait_us in self.queue.drain():
            # NOTE: one result that cannot be delivered must not cost the others of this drain.
            try:
                if fut.done():  # the caller went away (cancelled RPC)
                    continue
                if code == 0:
                    fut.set_result((payload, infer_us, wait_us))
                else:
                    fut.set_exception(error_from_code(code, message))
            except Exception:  # noqa: BLE001 - logged; the loop goes on with the next result
                log.exception("Cannot deliver an inference result")
