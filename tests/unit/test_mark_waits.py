"""A wait given up by its caller (cancelled, as a page waiting on every view at once does)
leaves no waiter behind (found by a review: a forged position grew memory per request)."""

import asyncio

from api.waits import MarkWatcher
from projections.registry import PROJECTIONS


def test_a_cancelled_or_timed_out_wait_leaves_no_waiter() -> None:
    watcher = MarkWatcher("postgresql://unused", PROJECTIONS)  # never started: no database
    view = next(iter(PROJECTIONS))

    async def give_up() -> None:
        await asyncio.wait_for(asyncio.gather(*(watcher.wait(v, 10**12, 5.0) for v in PROJECTIONS)), 0.05)

    try:
        asyncio.run(give_up())
    except TimeoutError:
        pass
    assert all(not waiters for waiters in watcher._waiters.values())
    assert asyncio.run(watcher.wait(view, 10**12, 0.01)) is False
    assert not watcher._waiters[view]
