"""Conformance tests of priority (docs/queues.md): claims take ready work of higher priority
first, in arrival order at equal priority, and aged: a level is worth ``PRIORITY_AGING``
seconds of waiting, so work that waited long enough goes before newer work of any priority."""

from __future__ import annotations

import orjson

from ..._backends._queue_limits import PRIORITY_AGING, QueueLimits
from ...backends import Backend, NewActivity, RunClose, RunStatus
from ._queue_limits import limits_of
from ._support import (
    BackendFactory,
    FakeClock,
    child_run,
    claim_for,
    claim_one,
    full_commit,
    new_run,
    opened,
    schedule_activity,
    signal_event,
    start,
)

__all__ = ["PriorityTests"]

DONE = b'{"kind":"activity_completed"}'


def prioritised(
    activity_id: int, priority: int, queue: str = "default", key: str | None = None
) -> NewActivity:
    """An activity task of that priority (in its options too, as workflow code puts it)."""
    options: dict[str, object] = {"retry": None}
    if priority:
        options["priority"] = priority
    if key is not None:
        options["concurrency_key"] = key
    return NewActivity(activity_id, "act", queue, b"[]", orjson.dumps(options), priority=priority)


async def activities_in_claim_order(backend: Backend, queue: str = "default") -> list[int]:
    """The activity ids of the ready tasks, in the order claims take them (one per claim)."""
    order: list[int] = []
    while tasks := await backend.claim_activity_tasks([queue], 300, 1):
        order.append(tasks[0].activity_id)
    return order


async def runs_in_claim_order(backend: Backend, queue: str = "default") -> list[str]:
    """The instance ids of the runs with workflow work, in the order claims take them."""
    order: list[str] = []
    while tasks := await backend.claim_workflow_tasks([queue], 300, 1):
        order.append(tasks[0].instance_id)
    return order


async def scheduled_alone(b: Backend, instance_id: str, act: NewActivity) -> None:
    """A run of its own scheduling ``act`` now."""
    await start(b, instance_id)
    await schedule_activity(b, instance_id, act)


class PriorityTests:
    """Priority of workflow and activity tasks: what ``priority=`` needs of a backend."""

    async def test_higher_priority_activities_are_claimed_first_equal_ones_in_order(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "p")
            priorities = [0, 5, 0, 10, 5, 1]
            acts = [prioritised(i, p) for i, p in enumerate(priorities, start=1)]
            await schedule_activity(b, "p", *acts)
            assert await activities_in_claim_order(b) == [4, 2, 5, 6, 1, 3]

    async def test_equal_priority_activities_go_oldest_first_and_keep_it_on_retry(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            for activity_id in (1, 2, 3):
                await scheduled_alone(b, f"r{activity_id}", prioritised(activity_id, 7))
                clock.advance(1)
            await scheduled_alone(b, "plain", prioritised(4, 0))
            [first] = await b.claim_activity_tasks(["default"], 300, 1)
            assert first.activity_id == 1
            # Retried 30 s from now, it still ranks above the unprioritised task.
            await b.retry_activity(first, clock() + 30)
            clock.advance(30)
            assert await activities_in_claim_order(b) == [2, 3, 1, 4]

    async def test_an_activity_that_waited_long_enough_outranks_new_high_priority_work(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            # Ten levels are worth ten times PRIORITY_AGING seconds of waiting: a task of
            # priority 0 that waited a little more than that goes before a new one of 10,
            # one that waited a little less does not.
            await scheduled_alone(b, "old-1", prioritised(1, 0, queue="q1"))
            await scheduled_alone(b, "old-2", prioritised(2, 0, queue="q2"))
            clock.advance(10 * PRIORITY_AGING - 1)
            await scheduled_alone(b, "new-2", prioritised(3, 10, queue="q2"))
            clock.advance(2)
            await scheduled_alone(b, "new-1", prioritised(4, 10, queue="q1"))
            assert await activities_in_claim_order(b, "q1") == [1, 4]
            assert await activities_in_claim_order(b, "q2") == [3, 2]

    async def test_priority_orders_claims_within_queue_limits(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await limits_of(b).set_queue_limits("pay", QueueLimits(max_concurrent=1))
            await start(b, "p")
            acts = [prioritised(i, p, queue="pay") for i, p in enumerate([0, 7, 3], start=1)]
            await schedule_activity(b, "p", *acts)
            order = []
            while tasks := await b.claim_activity_tasks(["pay"], 300, 10):
                assert len(tasks) == 1  # the limit
                order.append(tasks[0].activity_id)
                await b.complete_activity(tasks[0], DONE)
            assert order == [2, 3, 1]

    async def test_priority_orders_claims_within_per_key_limits(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await limits_of(b).set_queue_limits("pay", QueueLimits(max_concurrent_per_key=1))
            await start(b, "p")
            acts = [
                prioritised(1, 0, "pay", key="a"),
                prioritised(2, 9, "pay", key="a"),
                prioritised(3, 5, "pay", key="b"),
                prioritised(4, 2, "pay"),
                prioritised(5, 8, "pay", key="b"),
            ]
            await schedule_activity(b, "p", *acts)
            # The highest of each key starts (a's 2, b's 5), and the key-less one; then a and
            # b are at their limit.
            claimed = []
            while tasks := await b.claim_activity_tasks(["pay"], 300, 1):
                claimed.append(tasks[0])
            assert [t.activity_id for t in claimed] == [2, 5, 4]
            await b.complete_activity(claimed[0], DONE)
            assert await activities_in_claim_order(b, "pay") == [1]

    async def test_higher_priority_runs_get_their_workflow_tasks_first(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            for instance_id, priority in (("low", 0), ("mid", 5), ("high", 10), ("low2", 0)):
                await start(b, instance_id, priority=priority)
                assert (await b.describe(instance_id)).priority == priority
            assert await runs_in_claim_order(b) == ["high", "mid", "low", "low2"]

    async def test_a_run_that_waited_long_enough_outranks_new_high_priority_runs(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "old-1", queue="q1")
            await start(b, "old-2", queue="q2")
            clock.advance(10 * PRIORITY_AGING - 1)
            await start(b, "new-2", queue="q2", priority=10)
            clock.advance(2)
            await start(b, "new-1", queue="q1", priority=10)
            assert await runs_in_claim_order(b, "q1") == ["old-1", "new-1"]
            assert await runs_in_claim_order(b, "q2") == ["new-2", "old-2"]

    async def test_priority_is_carried_over_by_continue_as_new_and_children_have_their_own(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "loop", priority=7)
            task = await claim_one(b)
            child = child_run(task, 1, "kid", priority=3)
            plain = child_run(task, 2, "plain-kid")
            await b.commit_workflow_task(task, full_commit(task, children=[child, plain]))
            assert (await b.describe("kid")).priority == 3
            assert (await b.describe("plain-kid")).priority == 0
            await b.signal("loop", signal_event())
            task = await claim_for(b, "loop")
            nxt = new_run("loop")  # continue_as_new gives no priority: the run's goes on
            close = RunClose(RunStatus.CONTINUED_AS_NEW, None, nxt)
            await b.commit_workflow_task(task, full_commit(task, close=close))
            info = await b.describe("loop")
            assert info.run_id == nxt.run_id and info.priority == 7
            listed, _ = await b.list_runs()
            assert {r.instance_id: r.priority for r in listed} == {
                "loop": 7,
                "kid": 3,
                "plain-kid": 0,
            }
