"""repository.residency_rss: what RSS holds beyond the measured sizes counts against the budget, within
its two limits (at most half the budget; after an unload, at most half of what was unloaded more).
The guard reads this process's real RSS; the baseline is set far below it so that the growth is known
to within what this process allocates meanwhile (MiB, against tolerances of MiB)."""
from __future__ import annotations

import asyncio

from ovfast.repository.residency_rss import MAX_SLACK, RssGuard

MIB = 1 << 20
BUDGET = 400 * MIB


def _guard(growth: int) -> RssGuard:
    g = RssGuard(BUDGET)
    g.baseline = g.rss() - growth
    return g


def test_slack_is_rss_growth_beyond_what_is_counted():
    g = _guard(300 * MIB)
    assert abs(g.settle(250 * MIB) - 50 * MIB) < 4 * MIB
    assert g.settle(400 * MIB) == 0  # counted more than RSS grew: nothing beyond


def test_slack_never_takes_more_than_half_the_budget():
    g = _guard(1000 * MIB)
    assert g.settle(0) == int(BUDGET * MAX_SLACK)


def test_after_an_unload_the_slack_grows_by_half_of_it_at_most():
    g = _guard(300 * MIB)
    g.settle(250 * MIB)
    before = g.slack
    # 40 MiB unloaded, RSS did not fall: not all of it may move into the slack
    assert g.settle(210 * MIB, unloaded=40 * MIB) == before + 20 * MIB


def test_not_started_counts_nothing():
    g = RssGuard(BUDGET)
    assert g.growth() == 0 and g.settle(0) == 0 and not g.near(0)


def test_near_only_past_the_budget_and_what_is_counted():
    g = _guard(300 * MIB)
    assert not g.near(0)  # 300 MiB grown, within the 400 MiB budget
    g = _guard(500 * MIB)
    assert g.near(0) and not g.near(600 * MIB)
    asyncio.run(g.trim())  # returns free memory; the next trim waits
    assert not asyncio.run(_due(g))


async def _due(g: RssGuard) -> bool:
    return g.trim_due()
