"""Conformance tests of queue limits (``QueueLimitStore``): stored limits, and claims that
never start more attempts than ``max_concurrent`` in flight or ``rate_count`` per
``rate_period`` (a sliding window) on a limited queue."""

from __future__ import annotations

import orjson
import pytest

from ..._backends._queue_limits import QueueLimits, QueueLimitStore
from ...backends import Backend, NewActivity
from ._support import BackendFactory, FakeClock, activity, opened, schedule_activity, start

__all__ = ["QueueLimitTests"]


def limits_of(backend: Backend) -> QueueLimitStore:
    if not isinstance(backend, QueueLimitStore):
        pytest.skip(f"{type(backend).__name__} does not implement QueueLimitStore")
    return backend


async def queued(backend: Backend, count: int, queue: str = "pay", instance: str = "q") -> None:
    """Start a run and schedule ``count`` activities on ``queue``."""
    await start(backend, instance)
    acts = [activity(i, queue=queue) for i in range(1, count + 1)]
    await schedule_activity(backend, instance, *acts)


class QueueLimitTests:
    """Queue limits: what ``Client.set_queue_limits`` needs of a backend."""

    async def test_queue_limits_are_stored_replaced_and_removed(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            store = limits_of(backend)
            assert await store.get_queue_limits("pay") is None
            await store.set_queue_limits("pay", QueueLimits(5, 50, 1.0))
            await store.set_queue_limits("other", QueueLimits(max_concurrent=2))
            assert await store.get_queue_limits("pay") == QueueLimits(5, 50, 1.0)
            await store.set_queue_limits("pay", QueueLimits(rate_count=3, rate_period=0.5))
            assert await store.get_queue_limits("pay") == QueueLimits(None, 3, 0.5)
            await store.set_queue_limits("pay", None)
            assert await store.get_queue_limits("pay") is None
            assert await store.get_queue_limits("other") == QueueLimits(2, None, None)
            await store.set_queue_limits("other", QueueLimits())  # empty: removed
            assert await store.get_queue_limits("other") is None

    async def test_queue_max_concurrent_counts_attempts_in_flight(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            store = limits_of(backend)
            await store.set_queue_limits("pay", QueueLimits(max_concurrent=2))
            await queued(backend, 5)
            first = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert [t.activity_id for t in first] == [1, 2]
            assert await backend.claim_activity_tasks(["pay"], 30, 10) == []
            # One finishes: one more may start.
            await backend.complete_activity(first[0], b'{"kind":"activity_completed"}')
            [third] = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert third.activity_id == 3
            # One given back for a later retry is no longer in flight.
            await backend.retry_activity(first[1], clock() + 100)
            [fourth] = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert fourth.activity_id == 4
            assert await backend.claim_activity_tasks(["pay"], 30, 10) == []
            # Leases that expired (their worker died) are not in flight: two of the three
            # claimable tasks (3 and 4 again, 5) start.
            clock.advance(31)
            again = {t.activity_id for t in await backend.claim_activity_tasks(["pay"], 30, 10)}
            assert len(again) == 2 and again < {3, 4, 5}
            # Raising the limit lets the last one start at once.
            await store.set_queue_limits("pay", QueueLimits(max_concurrent=3))
            last = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert {t.activity_id for t in last} == {3, 4, 5} - again

    async def test_queue_limits_apply_per_queue_and_within_max_tasks(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            store = limits_of(backend)
            await store.set_queue_limits("pay", QueueLimits(max_concurrent=1))
            await start(backend, "q")
            acts = [activity(1, queue="pay"), activity(2, queue="pay"), activity(3, queue="free")]
            acts += [activity(4, queue="free"), activity(5, queue="pay")]
            await schedule_activity(backend, "q", *acts)
            claimed = await backend.claim_activity_tasks(["pay", "free"], 30, 2)
            assert len(claimed) == 2
            assert sum(1 for t in claimed if t.queue == "pay") <= 1
            rest = await backend.claim_activity_tasks(["pay", "free"], 30, 10)
            everything = claimed + rest
            assert sorted(t.activity_id for t in everything if t.queue == "free") == [3, 4]
            assert sum(1 for t in everything if t.queue == "pay") == 1
            await store.set_queue_limits("pay", None)
            after = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert len(after) == 2

    async def test_queue_rate_limit_is_a_sliding_window(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            store = limits_of(backend)
            await store.set_queue_limits("pay", QueueLimits(rate_count=3, rate_period=10.0))
            await queued(backend, 8)
            got = await backend.claim_activity_tasks(["pay"], 1, 2)
            assert len(got) == 2
            clock.advance(4)
            for task in got:  # finishing does not give the start back
                await backend.complete_activity(task, b'{"kind":"activity_completed"}')
            assert len(await backend.claim_activity_tasks(["pay"], 1, 10)) == 1  # 3 in 10 s
            clock.advance(5.5)  # t = 9.5: all three starts still in the window
            assert await backend.claim_activity_tasks(["pay"], 1, 10) == []
            clock.advance(0.5)  # t = 10: the first two starts left it
            assert len(await backend.claim_activity_tasks(["pay"], 1, 10)) == 2
            clock.advance(3.9)  # t = 13.9: the start at 4 is still in
            assert await backend.claim_activity_tasks(["pay"], 1, 10) == []
            clock.advance(0.1)  # t = 14
            assert len(await backend.claim_activity_tasks(["pay"], 1, 10)) == 1

    async def test_queue_limits_combine_concurrency_and_rate(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            store = limits_of(backend)
            await store.set_queue_limits("pay", QueueLimits(2, 3, 60.0))
            await queued(backend, 6)
            first = await backend.claim_activity_tasks(["pay"], 300, 10)
            assert len(first) == 2  # the concurrency limit
            for task in first:
                await backend.complete_activity(task, b'{"kind":"activity_completed"}')
            assert len(await backend.claim_activity_tasks(["pay"], 300, 10)) == 1  # the rate
            clock.advance(60)
            assert len(await backend.claim_activity_tasks(["pay"], 300, 10)) == 1  # 1 in flight

    async def test_queue_max_concurrent_per_key_limits_each_key(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            store = limits_of(backend)
            await store.set_queue_limits("pay", QueueLimits(max_concurrent_per_key=2))
            assert await store.get_queue_limits("pay") == QueueLimits(None, None, None, 2)
            await start(backend, "q")

            def keyed(activity_id: int, key: str | None) -> NewActivity:
                options = {"retry": None} if key is None else {"concurrency_key": key}
                return NewActivity(activity_id, "act", "pay", b"[]", orjson.dumps(options))

            # Three of customer a first, then b, a key-less one, and a fourth of a.
            keys = ["a", "a", "a", "b", None, "a", "b", "b"]
            acts = [keyed(i, key) for i, key in enumerate(keys, start=1)]
            await schedule_activity(backend, "q", *acts)
            first = await backend.claim_activity_tasks(["pay"], 30, 10)
            # a's third and fourth wait; b's third waits; the key-less one is not limited.
            assert [t.activity_id for t in first] == [1, 2, 4, 5, 7]
            assert await backend.claim_activity_tasks(["pay"], 30, 10) == []
            await backend.complete_activity(first[0], b'{"kind":"activity_completed"}')
            # One of a finished: a's next starts, b stays at its limit.
            assert [t.activity_id for t in await backend.claim_activity_tasks(["pay"], 30, 10)] == [
                3
            ]
            # With max_concurrent too, the smaller budget wins.
            await store.set_queue_limits("pay", QueueLimits(5, None, None, 3))
            assert [
                t.activity_id for t in await backend.claim_activity_tasks(["pay"], 30, 10)
            ] == []
            await store.set_queue_limits("pay", QueueLimits(6, None, None, 3))
            got = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert len(got) == 1 and got[0].activity_id in (6, 8)

    async def test_queue_stats_report_work_held_by_limits_apart(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            store = limits_of(backend)

            def backlog(stats: object) -> dict[str, tuple[int, int]]:
                return {
                    q.queue: (q.activity_tasks, q.held_by_limits)
                    for q in stats.backlog  # type: ignore[attr-defined]
                    if q.activity_tasks or q.held_by_limits
                }

            await store.set_queue_limits("pay", QueueLimits(max_concurrent=2))
            await queued(backend, 5)
            await queued(backend, 2, queue="free", instance="f")
            assert backlog(await backend.stats()) == {"pay": (2, 3), "free": (2, 0)}
            taken = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert len(taken) == 2
            assert backlog(await backend.stats()) == {"pay": (0, 3), "free": (2, 0)}
            # A sliding rate window: 1 per 10 s on top; the window moves on, a slot frees.
            await store.set_queue_limits("pay", QueueLimits(3, 1, 10.0))
            [third] = await backend.claim_activity_tasks(["pay"], 30, 10)
            assert backlog(await backend.stats()) == {"pay": (0, 2), "free": (2, 0)}
            clock.advance(10.5)  # the leases (30 s) still run; the window freed one slot
            await store.set_queue_limits("pay", QueueLimits(4, 1, 10.0))
            assert backlog(await backend.stats()) == {"pay": (1, 1), "free": (2, 0)}
            # Per key: the ready tasks of a key at its limit are held, the others not.
            await store.set_queue_limits("keyed", QueueLimits(max_concurrent_per_key=1))
            await start(backend, "k")
            keyed = [
                NewActivity(i, "act", "keyed", b"[]", orjson.dumps({"concurrency_key": key}))
                for i, key in enumerate(["a", "a", "b", "a"], start=1)
            ]
            await schedule_activity(backend, "k", *keyed)
            assert backlog(await backend.stats())["keyed"] == (2, 2)
            await backend.claim_activity_tasks(["keyed"], 30, 10)
            assert backlog(await backend.stats())["keyed"] == (0, 2)  # a and b run: 2 a held
            del third
