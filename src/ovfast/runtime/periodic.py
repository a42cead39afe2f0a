"""A step run every so often on the asyncio loop (the config watcher, the idle-sequence cleaner)."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable


class Periodic:
    """Awaits ``step()`` every ``interval_s`` seconds from :meth:`start` until :meth:`stop`. A step that raises
    is logged as ``what`` failing and the next one still runs."""

    def __init__(self, step: Callable[[], Awaitable[object]], log: logging.Logger, what: str) -> None:
        self._step = step
        self._log = log
        self._what = what
        self._task: asyncio.Task | None = None

    def start(self, interval_s: float) -> None:
        """Starts on the running loop; nothing when ``interval_s`` is 0 or it already runs."""
        if interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(interval_s))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad step must not end the loop
                self._log.exception("%s failed", self._what)
