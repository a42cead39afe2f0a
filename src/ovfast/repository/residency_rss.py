"""Residency's bound on the process's RSS (issue 16 point 3: RSS stays under the budget plus the
server's own fixed overhead).

``Residency.pressure`` counts the measured sizes of the loaded versions, or the growth of the
allocator's bytes in use when that is larger. Neither sees what RSS holds beyond them: free memory
inside malloc's arenas that is not returned (fragmentation from loads and unloads spread over many
threads' arenas), thread stacks, the runtime's generated code. Under churn that grew RSS ~1.7 MB/s
past budget + overhead here (bench --density, 48 MiB budget, ~15 loads and evictions/s).

The guard turns that into a number residency counts, the *slack*: RSS growth since start, after a
trim (memory the allocator can return is returned first and never counted), less what pressure
already counts. Loads make room for pressure + slack; the budget watch unloads least recently used
idle versions while it is over. Two limits keep it from unloading what does not help (an earlier
RSS-based admission unloaded every version because freed memory stayed in RSS):
- the slack is at most ``MAX_SLACK`` of the budget: at least the rest always holds models;
- it only grows when unloading helps: after an unload and a trim, the slack is not allowed to grow
  by more than half of what was unloaded (memory that unloading does not give back is not the models'
  and unloading more for it would only empty the server).
Nothing is refused on RSS alone: a load that does not fit by measured sizes is refused as before.
"""
from __future__ import annotations

import asyncio
import logging

from ovfast import _native

log = logging.getLogger("ovfast.residency")

MAX_SLACK = 0.5  # of the budget: RSS beyond the measured sizes never takes more than this from the models
TRIM_EVERY_S = 1.0  # at most this often the budget watch trims when RSS is near the limit
NEAR = 15 / 16  # of the budget: RSS growth from which the budget watch trims and settles the slack


class RssGuard:
    """RSS growth since start, after a trim, less what ``pressure`` counts (see the module docstring)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.baseline: int | None = None  # RSS at start, after a trim (None: not started)
        self.slack = 0
        self._last_trim = 0.0

    @staticmethod
    def rss() -> int:
        return _native.resident_bytes()  # no allocator lock: read every budget check

    def start(self) -> None:
        _native.release_free_memory()
        self.baseline = self.rss()

    def growth(self) -> int:
        return 0 if self.baseline is None else self.rss() - self.baseline

    def near(self, base: int) -> bool:
        """Whether RSS growth (untrimmed) is past what base + slack counts and near the budget: a trim and a
        new slack may be due."""
        return self.baseline is not None and self.growth() > max(base + self.slack, int(self.budget * NEAR))

    async def trim(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_trim = loop.time()
        await loop.run_in_executor(None, _native.release_free_memory)

    async def refresh(self, base: int, unloaded: int = 0) -> int:
        """Trims (free memory goes back to the system first), then settles the slack (see ``settle``)."""
        await self.trim()
        return self.settle(base, unloaded)

    def trim_due(self) -> bool:
        return asyncio.get_running_loop().time() - self._last_trim >= TRIM_EVERY_S

    def settle(self, base: int, unloaded: int = 0) -> int:
        """After a trim: the slack is RSS growth less ``base`` (what pressure counts without the slack),
        within [0, MAX_SLACK * budget]; after an unload of ``unloaded`` measured bytes it grows by at most
        half of them. Returns the new slack."""
        if self.baseline is None:
            return 0
        slack = min(max(0, self.growth() - base), int(self.budget * MAX_SLACK))
        if unloaded:
            slack = min(slack, self.slack + unloaded // 2)
        if abs(slack - self.slack) >= 1 << 20:
            log.info("RSS grew %d bytes since start; %d of them beyond the models' measured memory %d are "
                     "counted against the budget", self.growth(), slack, base)
        self.slack = slack
        return slack
