"""What a backend stores for queue limits (docs/queues.md): one row per limited queue, and a
log of the activity attempts started on rate-limited queues.

The backend enforces the limits in ``claim_activity_tasks``: on a queue with limits it claims
at most ``claim_budget(...)`` tasks, counted under the same lock as the claim (SQLite's write
lock, PostgreSQL's row lock on the queue's limits row, the memory backend's lock), so workers
claiming at once, in any process, can never exceed them together.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

__all__ = [
    "PRIORITY_AGING",
    "QueueLimitStore",
    "QueueLimits",
    "claim_budget",
    "claim_rank",
    "concurrency_key",
    "held_by_limits",
]

# Priority (docs/queues.md): one priority level is worth this many seconds of waiting. Ready
# work is claimed in the order of ``claim_rank``: a task of priority p that became ready at t
# ranks as if it had become ready p * PRIORITY_AGING seconds earlier, so higher priorities go
# first, yet a task that has waited long enough outranks new work of any priority (it is never
# starved). The SQL backends write the same rule in their claims and index it: the literal
# 60 in queries.sql and the migrations is this constant.
PRIORITY_AGING = 60.0


def claim_rank(visible_at: float, priority: int) -> float:
    """The claim order of ready work (lowest first): its ready time, moved earlier by its
    priority."""
    return visible_at - priority * PRIORITY_AGING


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """The limits of one queue (``Client.get_queue_limits``); None means no such limit.

    ``max_concurrent``: activity attempts in flight on the queue at once (claimed, with a
    lease not yet expired). ``rate_count`` / ``rate_period`` (seconds): at most
    ``rate_count`` attempts started in any sliding window of ``rate_period`` seconds.
    ``max_concurrent_per_key``: attempts in flight at once among those scheduled with the
    same ``concurrency_key`` (attempts without a key are not limited by it).
    """

    max_concurrent: int | None = None
    rate_count: int | None = None
    rate_period: float | None = None
    max_concurrent_per_key: int | None = None

    @property
    def is_empty(self) -> bool:
        return (
            self.max_concurrent is None
            and self.rate_count is None
            and self.max_concurrent_per_key is None
        )


def concurrency_key(options: bytes) -> str | None:
    """The ``concurrency_key`` member of an activity task's options (the one member of them
    a backend reads, and only on a queue with ``max_concurrent_per_key``)."""
    try:
        key = orjson.loads(options).get("concurrency_key")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def claim_budget(limits: QueueLimits, in_flight: int, started_in_window: int) -> int:
    """How many more attempts the queue may start now, given the attempts in flight on it
    and those started in the last ``rate_period`` seconds (never negative)."""
    budget: int | None = None
    if limits.max_concurrent is not None:
        budget = limits.max_concurrent - in_flight
    if limits.rate_count is not None:
        rate = limits.rate_count - started_in_window
        budget = rate if budget is None else min(budget, rate)
    return 1_000_000_000 if budget is None else max(0, budget)


def held_by_limits(
    limits: QueueLimits,
    started_in_window: int,
    running_keys: Sequence[str | None],
    ready_keys: Sequence[str | None],
) -> int:
    """How many of a queue's ready tasks a claim made now would pass over because of the
    queue's limits (``Backend.stats``): the claim rule applied without claiming.
    ``running_keys``: the concurrency keys of the attempts in flight; ``ready_keys``: those
    of the ready tasks, in claim order (None: no key)."""
    budget = claim_budget(limits, len(running_keys), started_in_window)
    per_key = limits.max_concurrent_per_key
    if per_key is None:
        return max(0, len(ready_keys) - budget)
    running: dict[str, int] = {}
    for key in running_keys:
        if key is not None:
            running[key] = running.get(key, 0) + 1
    held = 0
    for key in ready_keys:
        if budget <= 0:
            held += 1
            continue
        if key is not None:
            if running.get(key, 0) >= per_key:
                held += 1
                continue
            running[key] = running.get(key, 0) + 1
        budget -= 1
    return held


class QueueLimitStore(abc.ABC):
    """The queue-limit methods of a backend."""

    # Claims of this backend object that found a limited queue at its limit (work may have
    # been left for later). Workers read it to back off instead of claiming again at once.
    limited_claims: int = 0

    @abc.abstractmethod
    async def set_queue_limits(self, queue: str, limits: QueueLimits | None) -> None:
        """Store ``limits`` for ``queue``, replacing any before; None (or empty limits)
        removes them. Claims made after this returns obey the new limits."""

    @abc.abstractmethod
    async def get_queue_limits(self, queue: str) -> QueueLimits | None:
        """The stored limits of ``queue``; None when it has none."""
