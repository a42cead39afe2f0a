"""What residency counts, for the metrics (observability/metrics.py renders it)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ovfast.runtime.model import PARK_BUDGET, PARK_EXPLICIT, PARK_IDLE, PARK_LAZY

COLD_LOAD_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# unload reason label by park reason; a load taken back because it did not fit counts as "budget"
UNLOAD_REASONS = {PARK_BUDGET: "budget", PARK_IDLE: "idle", PARK_EXPLICIT: "explicit", PARK_LAZY: "budget"}


@dataclass
class ResidencyStats:
    """Counters for the metrics (observability/metrics.py renders them)."""

    loads: int = 0
    load_failures: int = 0
    unloads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("budget", "idle", "explicit"), 0))
    cold_load_counts: list[int] = field(default_factory=lambda: [0] * (len(COLD_LOAD_BUCKETS_S) + 1))
    cold_load_sum_s: float = 0.0

    def observe_load(self, seconds: float) -> None:
        i = next((i for i, b in enumerate(COLD_LOAD_BUCKETS_S) if seconds <= b), len(COLD_LOAD_BUCKETS_S))
        self.cold_load_counts[i] += 1
        self.cold_load_sum_s += seconds
