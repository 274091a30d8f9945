"""Conformance tests of workflow tasks: claims, leases and fencing, atomic commits, timers,
children, continue-as-new, variables, messages to other runs."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ..._errors import (
    LeaseLostError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ...backends import (
    Backend,
    NewTimer,
    OutgoingSignal,
    RunClose,
    RunStatus,
    WorkflowCommit,
)
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    activity,
    batch,
    child_run,
    claim_for,
    claim_one,
    ev,
    full_commit,
    inbox_kinds,
    kinds,
    new_run,
    opened,
    run_to_close,
    schedule_activity,
    seqs,
    signal_event,
    start,
    started_event,
)

__all__ = ["WorkflowTaskTests"]


async def _assert_untouched(b: Backend, instance_id: str, inbox_len: int) -> None:
    info = await b.describe(instance_id)
    assert info.history_length == 0 and info.status is RunStatus.RUNNING
    assert await b.history(instance_id) == []
    assert await b.get_vars(instance_id) == {}
    assert await b.claim_activity_tasks(["default"], 30, 10) == []
    with pytest.raises(WorkflowNotFoundError):
        await b.describe("the-child")
    task = await claim_for(b, instance_id)
    assert len(task.inbox) == inbox_len
    await b.release_workflow_task(task)


def _big_commit(task: object, events: list[bytes], consumed: list[int]) -> WorkflowCommit:
    from ostinato.backends import WorkflowTask

    assert isinstance(task, WorkflowTask)
    return WorkflowCommit(
        new_events=events,
        consumed_inbox=consumed,
        activities=[activity(1)],
        timers=[NewTimer(2, T0, ev("timer_fired", id=2))],
        children=[child_run(task, 3, "the-child")],
        cancel_instances=[("other", ev("cancel_requested", reason="x"))],
        signals=[OutgoingSignal("other", signal_event("s"), 4)],
        vars={"progress": b"1"},
    )


class WorkflowTaskTests:
    """Claiming and committing workflow tasks: leases and fencing, atomicity, timers, children,
    continue-as-new, variables, messages to other runs."""

    # ---- claiming ----------------------------------------------------------------------------

    async def test_claim_gives_inbox_in_arrival_order(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            run = await start(b, "c1")
            await b.signal("c1", signal_event("a", 1))
            await b.signal("c1", signal_event("b", 2))
            task = await claim_one(b)
            assert (task.instance_id, task.run_id) == ("c1", run.run_id)
            assert task.workflow_name == "wf" and task.queue == "default"
            assert task.history_length == 0 and task.failed_attempts == 0
            int(task.lease_token, 16)  # random hex
            assert [item.event for item in task.inbox] == [
                run.started_event,
                signal_event("a", 1),
                signal_event("b", 2),
            ]
            ids = [item.id for item in task.inbox]
            assert ids == sorted(ids) and len(set(ids)) == 3

    async def test_claim_filters_queue_and_respects_max(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            for i in range(5):
                await start(b, f"a{i}", queue="qa")
            await start(b, "b0", queue="qb")
            assert await b.claim_workflow_tasks(["nothing"], 30, 10) == []
            assert await b.claim_workflow_tasks(["qa"], 30, 0) == []
            first = await b.claim_workflow_tasks(["qa"], 30, 3)
            assert len(first) == 3 and {t.queue for t in first} == {"qa"}
            rest = await b.claim_workflow_tasks(["qa"], 30, 10)
            assert len(rest) == 2
            assert {t.instance_id for t in first + rest} == {f"a{i}" for i in range(5)}
            both = await b.claim_workflow_tasks(["qa", "qb"], 30, 10)
            assert [t.instance_id for t in both] == ["b0"]

    async def test_claim_oldest_work_first(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            for i in range(3):
                await start(b, f"o{i}")
            tasks = await b.claim_workflow_tasks(["default"], 30, 3)
            assert [t.instance_id for t in tasks] == ["o0", "o1", "o2"]

    async def test_concurrent_claimers_never_share_a_run(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            for i in range(20):
                await start(b, f"r{i}")
            results = await asyncio.gather(
                *(b.claim_workflow_tasks(["default"], 30, 7) for _ in range(4))
            )
            claimed = [t.instance_id for tasks in results for t in tasks]
            assert len(claimed) == len(set(claimed)) == 20

    async def test_leased_run_is_not_claimed_until_lease_expires(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "lease")
            first = await claim_one(b, lease=10)
            await b.signal("lease", signal_event())
            clock.advance(9.9)
            assert await b.claim_workflow_tasks(["default"], 10, 10) == []
            clock.advance(0.1)
            second = await claim_one(b, lease=10)
            assert second.lease_token != first.lease_token
            assert inbox_kinds(second) == ["workflow_started", "signal_received"]
            with pytest.raises(LeaseLostError):
                await b.commit_workflow_task(first, full_commit(first))
            await b.commit_workflow_task(second, full_commit(second))
            assert seqs(await b.history("lease")) == [1, 2, 3]

    async def test_events_arriving_during_a_task_wait_for_the_next(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "busy")
            task = await claim_one(b)
            await b.signal("busy", signal_event("late"))
            await b.commit_workflow_task(task, full_commit(task))
            again = await claim_one(b)
            assert [i.event for i in again.inbox] == [signal_event("late")]
            assert again.history_length == 2

    async def test_extend_lease(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "ext")
            task = await claim_one(b, lease=10)
            clock.advance(8)
            await b.extend_workflow_lease(task, 10)
            clock.advance(8)
            assert await b.claim_workflow_tasks(["default"], 10, 10) == []
            await b.commit_workflow_task(task, full_commit(task))

    async def test_release_makes_task_claimable_again(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "rel")
            task = await claim_one(b)
            await b.release_workflow_task(task)
            again = await claim_one(b)
            assert again.lease_token != task.lease_token
            assert [i.id for i in again.inbox] == [i.id for i in task.inbox]
            await b.release_workflow_task(task)  # stale: ignored
            with pytest.raises(LeaseLostError):
                await b.commit_workflow_task(task, full_commit(task))
            await b.commit_workflow_task(again, full_commit(again))

    async def test_failed_task_backs_off_and_blocks(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "bad")
            task = await claim_one(b)
            await b.fail_workflow_task(task, "NonDeterminismError at seq 3", T0 + 5)
            info = await b.describe("bad")
            assert info.status is RunStatus.RUNNING
            assert info.blocked_reason == "NonDeterminismError at seq 3"
            assert info.history_length == 0
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            clock.advance(5)
            again = await claim_one(b)
            assert again.failed_attempts == 1
            assert [i.id for i in again.inbox] == [i.id for i in task.inbox]
            await b.fail_workflow_task(again, "still bad", T0 + 6)
            clock.advance(1)
            third = await claim_one(b)
            assert third.failed_attempts == 2
            await b.commit_workflow_task(third, full_commit(third))
            info = await b.describe("bad")
            assert info.blocked_reason is None
            await b.signal("bad", signal_event())
            assert (await claim_one(b)).failed_attempts == 0

    # ---- fencing and atomicity ---------------------------------------------------------------

    async def test_stale_token_writes_nothing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "other")
            await start(b, "fenced")
            task = await claim_for(b, "fenced")
            clock.advance(31)
            thief = await claim_for(b, "fenced")
            consumed = [i.id for i in task.inbox]
            with pytest.raises(LeaseLostError):
                await b.commit_workflow_task(task, _big_commit(task, batch(task), consumed))
            with pytest.raises(LeaseLostError):
                await b.fail_workflow_task(task, "x", T0)
            with pytest.raises(LeaseLostError):
                await b.extend_workflow_lease(task, 30)
            await b.release_workflow_task(thief)
            await _assert_untouched(b, "fenced", 1)
            other = await claim_for(b, "other")
            assert inbox_kinds(other) == ["workflow_started"]

    async def test_wrong_seq_is_lease_lost_and_writes_nothing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "other")
            await start(b, "seq")
            task = await claim_for(b, "seq")
            consumed = [i.id for i in task.inbox]
            events = [ev("task_started", seq=2, time=0)]
            with pytest.raises(LeaseLostError):
                await b.commit_workflow_task(task, _big_commit(task, events, consumed))
            # The lease is kept: the same worker may still commit correctly.
            await b.commit_workflow_task(task, full_commit(task))
            assert seqs(await b.history("seq")) == [1, 2]

    async def test_invalid_commit_writes_nothing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "other")
            await start(b, "inv")
            task = await claim_for(b, "inv")
            consumed = [i.id for i in task.inbox]
            bad_close = _big_commit(task, batch(task), consumed)
            bad_close.close = RunClose(RunStatus.RUNNING)
            with pytest.raises(ValueError):
                await b.commit_workflow_task(task, bad_close)
            not_json = _big_commit(task, [b"\x00not json"], consumed)
            with pytest.raises(ValueError):
                await b.commit_workflow_task(task, not_json)
            no_next = _big_commit(task, batch(task), consumed)
            no_next.close = RunClose(RunStatus.CONTINUED_AS_NEW)
            with pytest.raises(ValueError):
                await b.commit_workflow_task(task, no_next)
            await b.release_workflow_task(task)
            await _assert_untouched(b, "inv", 1)

    async def test_commit_after_lease_expiry_without_takeover(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        # The token, not the clock, fences: an expired lease nobody took over still commits.
        async with opened(make_backend, clock) as b:
            await start(b, "slow")
            task = await claim_one(b, lease=1)
            clock.advance(5)
            await b.commit_workflow_task(task, full_commit(task))
            assert (await b.describe("slow")).history_length == 2

    async def test_history_is_contiguous_across_tasks(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "hist")
            for n in range(4):
                if n:
                    await b.signal("hist", signal_event(str(n)))
                task = await claim_one(b)
                clock.advance(1)
                await b.commit_workflow_task(
                    task, full_commit(task, {"kind": "side_effect_recorded", "id": n + 1})
                )
            history = await b.history("hist")
            assert seqs(history) == list(range(1, len(history) + 1))
            assert kinds(history)[:3] == [
                "task_started",
                "workflow_started",
                "side_effect_recorded",
            ]
            info = await b.describe("hist")
            assert info.history_length == len(history) == 3 + 3 * 3
            assert info.updated_at == T0 + 4

    async def test_partial_consumption_keeps_the_rest(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "part")
            await b.signal("part", signal_event("keep"))
            task = await claim_one(b)
            first = task.inbox[0]
            await b.commit_workflow_task(
                task,
                WorkflowCommit(
                    new_events=[
                        ev("task_started", seq=1, time=0),
                        orjson.dumps({"seq": 2, **orjson.loads(first.event)}),
                    ],
                    consumed_inbox=[first.id],
                ),
            )
            again = await claim_one(b)
            assert [i.event for i in again.inbox] == [signal_event("keep")]

    async def test_consuming_another_runs_inbox_ids_is_harmless(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "mine")
            await start(b, "theirs")
            theirs = await claim_for(b, "theirs")
            await b.release_workflow_task(theirs)
            mine = await claim_for(b, "mine")
            commit = full_commit(mine)
            commit.consumed_inbox += [item.id for item in theirs.inbox] + [10**9]
            await b.commit_workflow_task(mine, commit)
            again = await claim_for(b, "theirs")
            assert [i.id for i in again.inbox] == [i.id for i in theirs.inbox]

    async def test_list_runs_accepts_status_strings(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "s")
            page, _ = await b.list_runs(status="running")  # type: ignore[arg-type]
            assert [r.instance_id for r in page] == ["s"]

    # ---- timers ------------------------------------------------------------------------------

    async def test_timers_fire_at_their_time_and_cancel(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "timer")
            task = await claim_one(b)
            fired1, fired2 = ev("timer_fired", id=1), ev("timer_fired", id=2)
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    {"kind": "timer_started", "id": 1, "fire_at": 1},
                    {"kind": "timer_started", "id": 2, "fire_at": 2},
                    timers=[NewTimer(1, T0 + 10, fired1), NewTimer(2, T0 + 20, fired2)],
                ),
            )
            clock.advance(9.99)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            clock.advance(0.01)
            task = await claim_one(b)
            assert [i.event for i in task.inbox] == [fired1]
            await b.commit_workflow_task(task, full_commit(task))
            # Cancel timer 2 from a signal-driven task before it fires.
            await b.signal("timer", signal_event())
            task = await claim_one(b)
            await b.commit_workflow_task(
                task, full_commit(task, {"kind": "timer_canceled", "id": 2}, cancel_timers=[2])
            )
            clock.advance(100)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []

    async def test_cancelling_a_fired_but_unconsumed_timer(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "t2")
            task = await claim_one(b)
            await b.commit_workflow_task(
                task, full_commit(task, timers=[NewTimer(1, T0 + 1, ev("timer_fired", id=1))])
            )
            await b.signal("t2", signal_event())
            task = await claim_one(b)
            assert inbox_kinds(task) == ["signal_received"]
            clock.advance(2)  # fires while the task runs; the task cancels it
            await b.commit_workflow_task(task, full_commit(task, cancel_timers=[1]))
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []

    # ---- children ----------------------------------------------------------------------------

    async def test_child_lifecycle_and_parent_notification(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "parent")
            task = await claim_one(b)
            kids = [child_run(task, n, f"kid-{n}") for n in range(1, 5)]
            await b.commit_workflow_task(task, full_commit(task, children=kids))
            info = await b.describe("kid-1")
            assert info.parent is not None
            assert (info.parent.instance_id, info.parent.run_id, info.parent.command_id) == (
                "parent",
                task.run_id,
                1,
            )
            result = b'{"nested": [1, "\\u0000", null]}'
            failure = b'{"type":"ValueError","message":"bad"}'
            await run_to_close(b, "kid-1", RunStatus.COMPLETED, result)
            await run_to_close(b, "kid-2", RunStatus.FAILED, failure)
            await run_to_close(b, "kid-3", RunStatus.CANCELED, b'{"type":"CancelledError"}')
            await run_to_close(b, "kid-4", RunStatus.TIMED_OUT, None)
            task = await claim_for(b, "parent")
            events = [orjson.loads(i.event) for i in task.inbox]
            assert [(e["kind"], e["id"]) for e in events] == [
                ("child_completed", 1),
                ("child_failed", 2),
                ("child_failed", 3),
                ("child_failed", 4),
            ]
            assert events[0]["result"] == orjson.loads(result)
            assert result in task.inbox[0].event  # spliced verbatim
            assert events[1]["failure"] == orjson.loads(failure)
            assert events[2]["failure"]["type"] == "WorkflowCancelledError"
            assert events[3]["failure"]["type"] == "WorkflowTimedOutError"

    async def test_duplicate_child_id_fails_the_child_not_the_commit(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            existing = await start(b, "taken")
            await start(b, "p")
            task = await claim_for(b, "p")
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    {"kind": "child_scheduled", "id": 7},
                    children=[child_run(task, 7, "taken")],
                ),
            )
            assert (await b.describe("p")).history_length == 3
            assert (await b.describe("taken")).run_id == existing.run_id
            assert (await b.describe("taken")).parent is None
            task = await claim_for(b, "p")
            [item] = task.inbox
            event = orjson.loads(item.event)
            assert (event["kind"], event["id"]) == ("child_failed", 7)
            assert event["failure"]["type"] == "WorkflowAlreadyStartedError"
            assert "taken" in event["failure"]["message"]

    async def test_child_continue_as_new_carries_parent(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "p")
            task = await claim_one(b)
            await b.commit_workflow_task(
                task, full_commit(task, children=[child_run(task, 1, "c")])
            )
            task = await claim_for(b, "c")
            first_run = task.run_id
            next_run = new_run("c", name="child")  # no parent given: the backend carries it over
            await b.commit_workflow_task(
                task, full_commit(task, close=RunClose(RunStatus.CONTINUED_AS_NEW, None, next_run))
            )
            assert await b.claim_workflow_tasks(["default"], 30, 10) != []  # only c's new run
            info = await b.describe("c")
            assert info.run_id == next_run.run_id and info.parent is not None
            assert info.parent.instance_id == "p" and info.parent.command_id == 1
            assert (await b.describe("c", first_run)).next_run_id == next_run.run_id
            clock.advance(31)
            await run_to_close(b, "c", RunStatus.COMPLETED, b"42")
            task = await claim_for(b, "p")
            assert [orjson.loads(i.event) for i in task.inbox] == [
                {"kind": "child_completed", "id": 1, "result": 42}
            ]

    # ---- continue-as-new, vars ---------------------------------------------------------------

    async def test_continue_as_new(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            first = await start(b, "loop")
            await b.signal("loop", signal_event("left over"))
            task = await claim_one(b)
            # Consume only the start: the unhandled signal moves on to the next run (a long-lived
            # entity must not lose operations sent while it continues as new).
            task.inbox = task.inbox[:1]
            nxt = new_run(
                "loop", started_event=started_event("wf", [2]), execution_deadline=T0 + 50
            )
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    {"kind": "workflow_continued_as_new"},
                    close=RunClose(RunStatus.CONTINUED_AS_NEW, None, nxt),
                    vars={"iteration": b"1"},
                ),
            )
            old = await b.describe("loop", first.run_id)
            assert old.status is RunStatus.CONTINUED_AS_NEW and old.next_run_id == nxt.run_id
            assert old.closed_at == T0
            assert kinds(await b.history("loop", first.run_id))[-1] == "workflow_continued_as_new"
            latest = await b.describe("loop")
            assert latest.run_id == nxt.run_id and latest.status is RunStatus.RUNNING
            assert await b.get_vars("loop") == {}
            page, _ = await b.list_runs()
            assert [(r.instance_id, r.run_id) for r in page] == [("loop", nxt.run_id)]
            task = await claim_one(b)
            assert task.run_id == nxt.run_id and task.history_length == 0
            assert [i.event for i in task.inbox] == [
                started_event("wf", [2]),
                signal_event("left over"),
            ]
            await b.commit_workflow_task(task, full_commit(task, vars={"iteration": b"2"}))
            assert await b.get_vars("loop") == {"iteration": b"2"}
            clock.advance(50)
            assert inbox_kinds(await claim_one(b)) == ["timed_out"]

    async def test_vars_upsert(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "v")
            task = await claim_one(b)
            await b.commit_workflow_task(
                task, full_commit(task, vars={"a": b"1", "b": b'{"x":[1,2]}'})
            )
            await b.signal("v", signal_event())
            task = await claim_one(b)
            await b.commit_workflow_task(task, full_commit(task, vars={"a": b'"two"'}))
            assert await b.get_vars("v") == {"a": b'"two"', "b": b'{"x":[1,2]}'}
            await b.signal("v", signal_event())
            task = await claim_one(b)
            await b.commit_workflow_task(
                task, full_commit(task, close=RunClose(RunStatus.COMPLETED, b"1"), vars={"c": b"3"})
            )
            assert (await b.get_vars("v"))["c"] == b"3"

    # ---- outgoing messages -------------------------------------------------------------------

    async def test_signal_external_and_cancel_instances(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "target")
            await start(b, "closed")
            await run_to_close(b, "closed")
            target_task = await claim_for(b, "target")
            await b.commit_workflow_task(target_task, full_commit(target_task))
            await start(b, "sender")
            task = await claim_for(b, "sender")
            sig = signal_event("hello", {"q": "'; DROP TABLE runs; --"})
            cancel = ev("cancel_requested", reason="from sender")
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    signals=[
                        OutgoingSignal("target", sig, 1),
                        OutgoingSignal("ghost", sig, 2),
                        OutgoingSignal("closed", sig, 3),
                    ],
                    cancel_instances=[("target", cancel), ("ghost", cancel), ("closed", cancel)],
                ),
            )
            task = await claim_for(b, "target")
            assert sorted(i.event for i in task.inbox) == sorted([sig, cancel])
            await b.release_workflow_task(task)
            task = await claim_for(b, "sender")
            events = [orjson.loads(i.event) for i in task.inbox]
            assert [(e["kind"], e["id"]) for e in events] == [
                ("signal_external_completed", 1),
                ("signal_external_completed", 2),
                ("signal_external_completed", 3),
            ]
            assert events[0]["failure"] is None
            assert events[1]["failure"]["type"] == "WorkflowNotFoundError"
            assert events[2]["failure"]["type"] == "WorkflowNotRunningError"
            assert (await b.describe("closed")).history_length == 3

    async def test_close_drops_inbox_and_queued_activities(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "c")
            await schedule_activity(b, "c", activity(1, queue="run"), activity(2, queue="wait"))
            [running] = await b.claim_activity_tasks(["run"], 60, 10)
            await b.signal("c", signal_event("one"))
            task = await claim_one(b)
            await b.signal("c", signal_event("two"))  # never consumed
            clock.advance(2)
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    {"kind": "workflow_completed", "result": 1},
                    close=RunClose(RunStatus.COMPLETED, b"1"),
                ),
            )
            info = await b.describe("c")
            assert (info.status, info.result, info.closed_at) == (RunStatus.COMPLETED, b"1", T0 + 2)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            assert await b.claim_activity_tasks(["wait"], 30, 10) == []
            assert await b.heartbeat_activity(running, b'"d"', 60) is True
            with pytest.raises(WorkflowNotRunningError):
                await b.signal("c", signal_event())
