"""What the SQLite backend's queue limits hold back right now (docs/queues.md): the ready
activity tasks of each limited queue that a claim made now would pass over, and when a rate
window frees a slot. ``stats()`` reports them apart from the claimable backlog, and the
wake-ups (``wait_for_work``, ``next_visible_time``) do not count them as work to wake for."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ._queue_limits import QueueLimits, concurrency_key, held_by_limits
from ._sqlite_sql import QUERIES as Q

__all__ = ["LIMITED_RECHECK", "LimitedQueue", "limits_state"]

# How often a worker waiting while its queues' work is held back looks again (seconds): an
# attempt ending in another process frees a slot without waking this one.
LIMITED_RECHECK = 0.05


@dataclass(frozen=True, slots=True)
class LimitedQueue:
    # Ready activity tasks (what a claim would consider), and how many of them its limits
    # hold back now.
    ready: int
    held: int
    # When the oldest start in the rate window leaves it (None: no rate limit, no start).
    rate_frees_at: float | None


def limits_state(
    conn: sqlite3.Connection, now: float, queues: Sequence[str] | None
) -> dict[str, LimitedQueue]:
    """Per limited queue among ``queues`` (None: every limited queue)."""
    if queues is None:
        rows = conn.execute(Q["all_queue_limits"]).fetchall()
    else:
        rows = conn.execute(Q.for_queues("queue_limits_of", len(queues)), list(queues)).fetchall()
    found: dict[str, LimitedQueue] = {}
    for queue, *values in rows:
        limits = QueueLimits(*values)
        started, frees_at = 0, None
        if limits.rate_period is not None:
            horizon = now - limits.rate_period
            started, oldest = conn.execute(Q["queue_starts_since"], (queue, horizon)).fetchone()
            frees_at = None if oldest is None else oldest + limits.rate_period
        if limits.max_concurrent_per_key is None:
            (ready,) = conn.execute(Q["ready_activity_count"], (queue, now)).fetchone()
            (running,) = conn.execute(Q["activities_in_flight"], (queue, now)).fetchone()
            held = held_by_limits(limits, started, [None] * running, [None] * ready)
        else:
            keys = [
                concurrency_key(options)
                for (options,) in conn.execute(Q["ready_activity_options"], (queue, now))
            ]
            in_flight = [
                concurrency_key(options)
                for (options,) in conn.execute(Q["options_in_flight"], (queue, now))
            ]
            ready = len(keys)
            held = held_by_limits(limits, started, in_flight, keys)
        found[queue] = LimitedQueue(ready, held, frees_at)
    return found
