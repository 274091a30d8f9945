"""Conformance tests of activity tasks: claims and attempts, heartbeats, completion exactly
once, retries, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from ..._errors import (
    LeaseLostError,
)
from ...backends import (
    ActivityState,
    NewActivity,
)
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    activity,
    claim_one,
    ev,
    full_commit,
    inbox_kinds,
    opened,
    schedule_activity,
    signal_event,
    start,
)

__all__ = ["ActivityTaskTests"]


class ActivityTaskTests:
    """Activity tasks: claims and attempts, heartbeats, completion exactly once, retries,
    cancellation."""

    # ---- activities --------------------------------------------------------------------------

    async def test_activity_claim_and_complete(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            run = await start(b, "act")
            task = await claim_one(b)
            clock.advance(1)
            act = NewActivity(1, "charge", "acts", b'["o-1", 100]', b'{"retry":{"max":3}}', T0 + 99)
            await b.commit_workflow_task(task, full_commit(task, activities=[act]))
            assert await b.claim_activity_tasks(["default"], 30, 10) == []
            [claimed] = await b.claim_activity_tasks(["acts"], 30, 10)
            assert (claimed.instance_id, claimed.run_id, claimed.activity_id) == (
                "act",
                run.run_id,
                1,
            )
            assert (claimed.name, claimed.queue) == ("charge", "acts")
            assert (claimed.input, claimed.options) == (act.input, act.options)
            assert (claimed.attempt, claimed.scheduled_at, claimed.deadline) == (1, T0 + 1, T0 + 99)
            assert claimed.heartbeat_details is None
            assert await b.claim_activity_tasks(["acts"], 30, 10) == []
            done = ev("activity_completed", id=1, result="receipt", attempt=1)
            await b.complete_activity(claimed, done)
            task = await claim_one(b)
            assert [i.event for i in task.inbox] == [done]
            with pytest.raises(LeaseLostError):
                await b.complete_activity(claimed, done)
            with pytest.raises(LeaseLostError):
                await b.heartbeat_activity(claimed, None, 30)
            with pytest.raises(LeaseLostError):
                await b.retry_activity(claimed, T0)

    async def test_activity_claim_limits_and_concurrency(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "many")
            await schedule_activity(b, "many", *(activity(i) for i in range(1, 21)))
            assert await b.claim_activity_tasks(["default"], 30, 0) == []
            results = await asyncio.gather(
                *(b.claim_activity_tasks(["default"], 30, 6) for _ in range(5))
            )
            ids = [t.activity_id for tasks in results for t in tasks]
            assert sorted(ids) == list(range(1, 21))
            assert len({t.task_id for tasks in results for t in tasks}) == 20

    async def test_activity_heartbeat_and_cancel(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "hb")
            await schedule_activity(b, "hb", activity(1, queue="run"), activity(2, queue="wait"))
            [task] = await b.claim_activity_tasks(["run"], 10, 10)
            clock.advance(8)
            assert await b.heartbeat_activity(task, b'{"step":1}', 10) is False
            clock.advance(8)  # within the extended lease
            assert await b.claim_activity_tasks(["run"], 10, 10) == []
            await b.signal("hb", signal_event())
            wf = await claim_one(b)
            await b.commit_workflow_task(
                wf,
                full_commit(
                    wf,
                    {"kind": "activity_cancel_requested", "id": 1},
                    {"kind": "activity_cancel_requested", "id": 2},
                    cancel_activities=[1, 2],
                ),
            )
            assert await b.heartbeat_activity(task, None, 10) is True
            assert await b.claim_activity_tasks(["wait"], 10, 10) == []  # queued one deleted
            # The worker reports the cancellation; it reaches the open run once.
            failed = ev("activity_failed", id=1, failure={"type": "CancelledError"}, attempt=1)
            await b.complete_activity(task, failed)
            wf = await claim_one(b)
            assert [i.event for i in wf.inbox] == [failed]

    async def test_cancelled_activity_is_not_run_again_after_lease_loss(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "gone")
            await schedule_activity(b, "gone", activity(1))
            [task] = await b.claim_activity_tasks(["default"], 10, 10)
            await b.signal("gone", signal_event())
            wf = await claim_one(b)
            await b.commit_workflow_task(wf, full_commit(wf, cancel_activities=[1]))
            clock.advance(11)
            assert await b.claim_activity_tasks(["default"], 10, 10) == []
            with pytest.raises(LeaseLostError):
                await b.complete_activity(task, ev("activity_completed", id=1, result=1, attempt=1))

    async def test_activity_retry(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "retry")
            await schedule_activity(b, "retry", activity(1))
            [first] = await b.claim_activity_tasks(["default"], 30, 10)
            await b.heartbeat_activity(first, b'{"done":5}', 30)
            await b.retry_activity(first, T0 + 10)
            with pytest.raises(LeaseLostError):
                await b.complete_activity(
                    first, ev("activity_completed", id=1, result=1, attempt=1)
                )
            clock.advance(9.9)
            assert await b.claim_activity_tasks(["default"], 30, 10) == []
            clock.advance(0.1)
            [second] = await b.claim_activity_tasks(["default"], 30, 10)
            assert second.task_id == first.task_id and second.attempt == 2
            assert second.heartbeat_details == b'{"done":5}'
            assert second.lease_token != first.lease_token
            done = ev("activity_completed", id=1, result=2, attempt=2)
            await b.complete_activity(second, done)
            wf = await claim_one(b)
            assert [i.event for i in wf.inbox] == [done]

    async def test_claims_say_since_when_the_task_was_ready(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        """``ready_at`` of a workflow task and of an activity attempt (time in queue): the
        earliest visible event, the end of a start delay or back-off, the retry time, the
        expiry of a lost lease."""
        async with opened(make_backend, clock) as b:
            await start(b, "r")
            clock.advance(5)
            await b.signal("r", signal_event())
            clock.advance(1)
            task = await claim_one(b)
            assert task.ready_at == T0  # its workflow_started, visible since the start
            await b.commit_workflow_task(task, full_commit(task))
            await b.signal("r", signal_event())  # at T0 + 6
            clock.advance(2)
            task = await claim_one(b)
            assert task.ready_at == T0 + 6
            await b.fail_workflow_task(task, "boom", T0 + 20)
            clock.advance(20)
            task = await claim_one(b)
            assert task.ready_at == T0 + 20  # the back-off's end, later than the signal
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    {"kind": "activity_scheduled", "id": 1, "name": "act"},
                    activities=[activity(1)],
                ),
            )
            await start(b, "later", visible_at=T0 + 40)
            clock.advance(22)  # T0 + 50
            task = await claim_one(b)
            assert task.instance_id == "later" and task.ready_at == T0 + 40

            [first] = await b.claim_activity_tasks(["default"], 30, 10)
            assert first.ready_at == T0 + 28  # scheduled by the commit at T0 + 28
            await b.retry_activity(first, T0 + 60)
            clock.advance(15)  # T0 + 65
            [second] = await b.claim_activity_tasks(["default"], 5, 10)
            assert second.attempt == 2 and second.ready_at == T0 + 60
            clock.advance(10)  # the lease ran out at T0 + 70: its worker vanished
            [third] = await b.claim_activity_tasks(["default"], 30, 10)
            assert third.attempt == 3 and third.ready_at == T0 + 70

    async def test_activity_takeover_after_lost_lease_completes_once(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "twice")
            await schedule_activity(b, "twice", activity(1))
            [slow] = await b.claim_activity_tasks(["default"], 10, 10)
            clock.advance(10)
            [fast] = await b.claim_activity_tasks(["default"], 10, 10)
            assert (slow.attempt, fast.attempt) == (1, 2)
            with pytest.raises(LeaseLostError):
                await b.heartbeat_activity(slow, None, 10)
            done = ev("activity_completed", id=1, result="fast", attempt=2)
            await b.complete_activity(fast, done)
            with pytest.raises(LeaseLostError):
                await b.complete_activity(
                    slow, ev("activity_completed", id=1, result="slow", attempt=1)
                )
            with pytest.raises(LeaseLostError):
                await b.retry_activity(slow, T0)
            wf = await claim_one(b)
            assert [i.event for i in wf.inbox] == [done]
            clock.advance(100)
            assert await b.claim_activity_tasks(["default"], 10, 10) == []

    async def test_activity_of_a_closed_run_delivers_nothing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            first = await start(b, "old")
            await schedule_activity(b, "old", activity(1))
            [act] = await b.claim_activity_tasks(["default"], 30, 10)
            assert act.run_id == first.run_id
            await b.terminate("old", "x")
            await start(b, "old")  # a new run of the same id must not get the old result
            await b.complete_activity(act, ev("activity_completed", id=1, result=1, attempt=1))
            task = await claim_one(b)
            assert inbox_kinds(task) == ["workflow_started"]

    async def test_activity_states_follow_attempts(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            run = await start(b, "states")
            assert await b.activity_states("states", run.run_id) == []
            assert await b.activity_states("nobody", "no-run") == []
            await schedule_activity(
                b, "states", activity(2, name="second", queue="b"), activity(1, name="first")
            )

            def by_id(states: list[ActivityState]) -> dict[int, ActivityState]:
                return {state.activity_id: state for state in states}

            [first, second] = await b.activity_states("states", run.run_id)
            assert (first.activity_id, first.name, second.activity_id, second.name) == (
                1,
                "first",
                2,
                "second",
            )
            assert (first.attempt, first.running, first.last_failure) == (0, False, None)
            assert first.scheduled_at == first.visible_at == T0

            [claimed] = await b.claim_activity_tasks(["default"], 30, 5)
            assert await b.heartbeat_activity(claimed, b'{"done": 3}', 30) is False
            state = by_id(await b.activity_states("states", run.run_id))[1]
            assert (state.attempt, state.running, state.heartbeat_details) == (
                1,
                True,
                b'{"done": 3}',
            )
            assert by_id(await b.activity_states("states", run.run_id))[2].running is False

            failure = b'{"type":"ValueError","message":"card declined"}'
            await b.retry_activity(claimed, T0 + 10, failure)
            state = by_id(await b.activity_states("states", run.run_id))[1]
            assert (state.attempt, state.running, state.visible_at) == (1, False, T0 + 10)
            assert state.last_failure == failure

            # An attempt given back unfinished (shutdown) keeps the failure recorded before.
            clock.advance(10)
            [claimed] = await b.claim_activity_tasks(["default"], 30, 5)
            await b.retry_activity(claimed, clock.now)
            assert by_id(await b.activity_states("states", run.run_id))[1].last_failure == failure

            # A lease that ran out is not running any more.
            [claimed] = await b.claim_activity_tasks(["default"], 30, 5)
            clock.advance(31)
            state = by_id(await b.activity_states("states", run.run_id))[1]
            assert (state.attempt, state.running) == (3, False)

            # Completed activities leave the list.
            [claimed] = await b.claim_activity_tasks(["default"], 30, 5)
            await b.complete_activity(claimed, ev("activity_completed", id=1, result=1, attempt=4))
            assert [s.activity_id for s in await b.activity_states("states", run.run_id)] == [2]
