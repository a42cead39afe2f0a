"""The idle-sequence cleaner (OVMS ``--sequence_cleaner_poll_wait_minutes``): every interval, one pass over
the served versions of the stateful models that have ``idle_sequence_cleanup`` on. A pass removes the
sequences the previous pass flagged idle and flags the others; any request of a sequence clears its flag,
so a sequence left alone goes after one to two intervals (the native side keeps the flags:
SequenceScheduler::sweep_idle)."""
from __future__ import annotations

import logging

from ovfast.repository.registry import ModelRegistry
from ovfast.runtime.model import VersionState
from ovfast.runtime.periodic import Periodic

log = logging.getLogger("ovfast.sequences")


class SequenceCleaner:
    def __init__(self, registry: ModelRegistry, interval_s: float) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self._periodic = Periodic(self._pass, log, "Sequence cleaner pass")

    def sweep(self) -> int:
        """One pass now; returns how many sequences were removed. Microseconds per model (GIL released)."""
        removed = 0
        for served in list(self.registry.models.values()):
            for h in list(served.versions.values()):
                if h.state == VersionState.AVAILABLE and h.stateful:
                    n = h.sweep_idle_sequences()
                    if n:
                        log.info("Sequence cleaner: removed %d idle sequence(s) of model %s version %d",
                                 n, h.name, h.version)
                    removed += n
        return removed

    async def _pass(self) -> None:
        self.sweep()

    def start(self) -> None:
        """Starts the periodic passes on the running loop (none when the interval is 0)."""
        self._periodic.start(self.interval_s)

    async def stop(self) -> None:
        await self._periodic.stop()
