"""The in-memory backend's queue limits (docs/queues.md): the limits and the start log in
dicts guarded by the backend's lock, and the claim-time filter that applies them."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol, TypeVar

from ._queue_limits import (
    QueueLimits,
    QueueLimitStore,
    claim_budget,
    concurrency_key,
    held_by_limits,
)
from ._wakeups import Waiters

__all__ = ["MemoryQueueLimits"]


class _Task(Protocol):
    queue: str
    options: bytes

    def is_running(self, now: float) -> bool: ...


T = TypeVar("T", bound=_Task)


class MemoryQueueLimits(QueueLimitStore):
    """Queue limits of ``MemoryBackend``; its claim calls ``_within_limits``."""

    _lock: threading.RLock
    _waiters: Waiters
    _queue_limits: dict[str, QueueLimits]
    # queue -> start times of the attempts claimed on it (rate-limited queues only)
    _queue_starts: dict[str, list[float]]

    def _within_limits(
        self, candidates: list[T], tasks: Iterable[T], now: float, max_tasks: int
    ) -> list[T]:
        """The candidates the queues' limits let start now (in claim order); records their
        start on rate-limited queues. ``tasks``: every activity task (for those in flight).
        Called under the lock."""
        budgets: dict[str, int] = {}
        # (queue, concurrency key) -> attempts in flight, on queues with a per-key limit
        per_key: dict[tuple[str, str], int] = {}
        for queue in {t.queue for t in candidates}:
            limits = self._queue_limits.get(queue)
            if limits is None:
                continue
            running = [t for t in tasks if t.queue == queue and t.is_running(now)]
            started = self._recent_starts(queue, limits, now)
            budgets[queue] = claim_budget(limits, len(running), len(started))
            if limits.max_concurrent_per_key is not None:
                for task in running:
                    key = concurrency_key(task.options)
                    if key is not None:
                        per_key[queue, key] = per_key.get((queue, key), 0) + 1
        allowed: list[T] = []
        for task in candidates:
            if len(allowed) == max_tasks:
                break
            budget = budgets.get(task.queue)
            if budget is None:
                allowed.append(task)
                continue
            if budget <= 0:
                self.limited_claims += 1
                continue
            limits = self._queue_limits[task.queue]
            if limits.max_concurrent_per_key is not None:
                key = concurrency_key(task.options)
                if key is not None:
                    if per_key.get((task.queue, key), 0) >= limits.max_concurrent_per_key:
                        self.limited_claims += 1
                        continue
                    per_key[task.queue, key] = per_key.get((task.queue, key), 0) + 1
            budgets[task.queue] = budget - 1
            allowed.append(task)
            if limits.rate_count is not None:
                self._queue_starts.setdefault(task.queue, []).append(now)
        return allowed

    def _held_by_limits(
        self, ready: dict[str, list[T]], tasks: Iterable[T], now: float
    ) -> dict[str, int]:
        """Per limited queue, how many of its ``ready`` tasks (in claim order) a claim now
        would pass over (``stats``, and the wake-ups: held work is not work to wake for).
        Called under the lock."""
        held: dict[str, int] = {}
        all_tasks = list(tasks)
        for queue, waiting in ready.items():
            limits = self._queue_limits.get(queue)
            if limits is None or not waiting:
                continue

            def keys(found: list[T], limits: QueueLimits = limits) -> list[str | None]:
                if limits.max_concurrent_per_key is None:
                    return [None] * len(found)
                return [concurrency_key(t.options) for t in found]

            running = [t for t in all_tasks if t.queue == queue and t.is_running(now)]
            started = self._recent_starts(queue, limits, now)
            held[queue] = held_by_limits(limits, len(started), keys(running), keys(waiting))
        return held

    def _rate_frees_at(self, queue: str, now: float) -> float | None:
        """When the oldest start in the rate window of ``queue`` leaves it (a slot frees);
        None for a queue without a rate limit or starts. Called under the lock."""
        limits = self._queue_limits.get(queue)
        if limits is None or limits.rate_period is None:
            return None
        starts = self._recent_starts(queue, limits, now)
        return min(starts) + limits.rate_period if starts else None

    def _recent_starts(self, queue: str, limits: QueueLimits, now: float) -> list[float]:
        starts = self._queue_starts.get(queue, [])
        if limits.rate_period is not None:
            starts[:] = [s for s in starts if s > now - limits.rate_period]
        return starts

    async def set_queue_limits(self, queue: str, limits: QueueLimits | None) -> None:
        with self._lock:
            if limits is None or limits.is_empty:
                self._queue_limits.pop(queue, None)
                self._queue_starts.pop(queue, None)
            else:
                self._queue_limits[queue] = limits
        # A raised (or removed) limit may let waiting work start.
        self._waiters.notify([("activity", queue)])

    async def get_queue_limits(self, queue: str) -> QueueLimits | None:
        with self._lock:
            return self._queue_limits.get(queue)
