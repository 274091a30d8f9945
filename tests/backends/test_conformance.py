"""The storage contract, run against every backend (memory, SQLite, PostgreSQL).

Every test takes ``backend_url`` (tests/conftest.py) and a ``FakeClock``: time only moves
when a test says so, so leases, timers and back-off are exact and nothing sleeps for real
except the wake-up tests (a few milliseconds).
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from ostinato._backend import (
    ActivityState,
    Backend,
    NewActivity,
    NewTimer,
    OutgoingSignal,
    RunClose,
    RunStatus,
    WorkflowCommit,
)
from ostinato._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)

from .helpers import (
    T0,
    FakeClock,
    batch,
    child_run,
    claim_for,
    claim_one,
    ev,
    full_commit,
    inbox_kinds,
    kinds,
    new_run,
    open_backend,
    run_to_close,
    seqs,
    signal_event,
    start,
    started_event,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def activity(
    activity_id: int = 1, name: str = "act", queue: str = "default", payload: bytes = b'["x"]'
) -> NewActivity:
    return NewActivity(activity_id, name, queue, payload, b'{"retry":null}')


async def schedule_activity(b: Backend, instance_id: str, *acts: NewActivity) -> None:
    task = await claim_for(b, instance_id)
    commands = [{"kind": "activity_scheduled", "id": a.activity_id, "name": a.name} for a in acts]
    await b.commit_workflow_task(task, full_commit(task, *commands, activities=list(acts)))


# ---- create ---------------------------------------------------------------------------------


async def test_create_and_describe(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        run = await start(b, "order-1", name="orders.process", queue="q1")
        info = await b.describe("order-1")
        assert (info.instance_id, info.run_id) == ("order-1", run.run_id)
        assert info.workflow_name == "orders.process"
        assert info.queue == "q1"
        assert info.status is RunStatus.RUNNING
        assert info.created_at == info.updated_at == T0
        assert info.closed_at is None
        assert info.history_length == 0
        assert info.result is None and info.blocked_reason is None and info.parent is None
        assert info.next_run_id is None
        assert await b.describe("order-1", run.run_id) == info
        assert await b.history("order-1") == []


async def test_duplicate_open_run_is_refused(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "dup")
        with pytest.raises(WorkflowAlreadyStartedError) as err:
            await start(b, "dup")
        assert err.value.instance_id == "dup"
        page, _ = await b.list_runs()
        assert len(page) == 1


async def test_id_reuse_allowed_after_close(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        first = await start(b, "reuse")
        await run_to_close(b, "reuse")
        second = await start(b, "reuse")
        assert (await b.describe("reuse")).run_id == second.run_id
        old = await b.describe("reuse", first.run_id)
        assert old.status is RunStatus.COMPLETED
        assert len(await b.history("reuse", first.run_id)) == 3
        assert await b.history("reuse") == []


async def test_id_reuse_refused(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "once")
        await run_to_close(b, "once", RunStatus.FAILED, b'{"type":"X","message":"m"}')
        with pytest.raises(WorkflowAlreadyStartedError):
            await start(b, "once", id_reuse="refuse")
        # "refuse" only matters when an earlier run exists.
        await start(b, "fresh", id_reuse="refuse")


async def test_id_conflict_fail_is_the_default(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        first = await start(b, "conflict")
        with pytest.raises(WorkflowAlreadyStartedError):
            await start(b, "conflict", id_conflict="fail")
        assert (await b.describe("conflict")).run_id == first.run_id


async def test_id_conflict_use_existing(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        first = await start(b, "conflict")
        await b.create_run(new_run("conflict", id_conflict="use_existing"))
        info = await b.describe("conflict")
        assert info.run_id == first.run_id and info.status is RunStatus.RUNNING
        task = await claim_one(b)
        assert inbox_kinds(task) == ["workflow_started"]  # no second start was queued
        await b.release_workflow_task(task)
        await run_to_close(b, "conflict")
        # Once the run is closed, a start with use_existing starts a new run as usual.
        second = await start(b, "conflict", id_conflict="use_existing")
        assert (await b.describe("conflict")).run_id == second.run_id
        page, _ = await b.list_runs()
        assert len(page) == 1


async def test_id_conflict_terminate_existing(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        first = await start(b, "conflict")
        parent = await claim_one(b)
        child = child_run(parent, 1, "conflict-child")
        await b.commit_workflow_task(
            parent,
            full_commit(parent, {"kind": "child_scheduled", "id": 1}, children=[child]),
        )
        second = await start(b, "conflict", id_conflict="terminate_existing")
        old = await b.describe("conflict", first.run_id)
        assert old.status is RunStatus.TERMINATED
        assert b"id_conflict" in (old.result or b"")
        assert kinds(await b.history("conflict", first.run_id))[-1] == "workflow_terminated"
        # Its open child is terminated with it, as terminate() does.
        assert (await b.describe("conflict-child")).status is RunStatus.TERMINATED
        new = await b.describe("conflict")
        assert new.run_id == second.run_id and new.status is RunStatus.RUNNING
        task = await claim_for(b, "conflict")
        assert task.run_id == second.run_id and inbox_kinds(task) == ["workflow_started"]
        # Nothing to terminate: a plain start.
        await start(b, "conflict-fresh", id_conflict="terminate_existing")


async def test_id_conflict_is_validated(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "conflict")
        with pytest.raises(ValueError, match="id_conflict"):
            await b.create_run(new_run("conflict", id_conflict="replace"))
        with pytest.raises(ValueError, match="id_conflict"):
            await b.create_run(
                new_run("conflict", id_conflict="terminate_existing", id_reuse="refuse")
            )
        assert (await b.describe("conflict")).status is RunStatus.RUNNING


async def test_start_delay(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "later", visible_at=T0 + 60)
        assert await b.claim_workflow_tasks(["default"], 30, 10) == []
        # A signal does not make a delayed run claimable before its start time.
        await b.signal("later", signal_event("early"))
        clock.advance(59.9)
        assert await b.claim_workflow_tasks(["default"], 30, 10) == []
        clock.advance(0.1)
        task = await claim_one(b)
        assert inbox_kinds(task) == ["workflow_started", "signal_received"]


async def test_execution_deadline_delivers_timed_out(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "deadline", execution_deadline=T0 + 100)
        task = await claim_one(b)
        assert inbox_kinds(task) == ["workflow_started"]
        await b.commit_workflow_task(task, full_commit(task))
        clock.advance(99)
        assert await b.claim_workflow_tasks(["default"], 30, 10) == []
        clock.advance(1)
        task = await claim_one(b)
        assert [item.event for item in task.inbox] == [b'{"kind":"timed_out"}']


async def test_unknown_instance_and_run(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        with pytest.raises(WorkflowNotFoundError):
            await b.describe("nope")
        with pytest.raises(WorkflowNotFoundError):
            await b.history("nope")
        with pytest.raises(WorkflowNotFoundError):
            await b.get_vars("nope")
        await start(b, "known")
        with pytest.raises(WorkflowNotFoundError):
            await b.describe("known", "no-such-run")
        with pytest.raises(WorkflowNotFoundError):
            await b.history("known", "no-such-run")
        with pytest.raises(WorkflowNotFoundError):
            await b.wait_closed("nope", "r", 0.01)


async def test_invalid_inputs_are_value_errors(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        with pytest.raises(ValueError):
            await b.create_run(new_run("x", id_reuse="sometimes"))
        with pytest.raises(ValueError):
            await b.list_runs(limit=0)
        with pytest.raises(ValueError):
            await b.list_runs(cursor="garbage")
        with pytest.raises(ValueError):
            await b.wait_for_work("something", ["default"], 0.01)
        assert (await b.list_runs())[0] == []


# ---- claiming -----------------------------------------------------------------------------


async def test_claim_gives_inbox_in_arrival_order(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_claim_filters_queue_and_respects_max(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_claim_oldest_work_first(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        for i in range(3):
            await start(b, f"o{i}")
        tasks = await b.claim_workflow_tasks(["default"], 30, 3)
        assert [t.instance_id for t in tasks] == ["o0", "o1", "o2"]


async def test_concurrent_claimers_never_share_a_run(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        for i in range(20):
            await start(b, f"r{i}")
        results = await asyncio.gather(
            *(b.claim_workflow_tasks(["default"], 30, 7) for _ in range(4))
        )
        claimed = [t.instance_id for tasks in results for t in tasks]
        assert len(claimed) == len(set(claimed)) == 20


async def test_leased_run_is_not_claimed_until_lease_expires(
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
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
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "busy")
        task = await claim_one(b)
        await b.signal("busy", signal_event("late"))
        await b.commit_workflow_task(task, full_commit(task))
        again = await claim_one(b)
        assert [i.event for i in again.inbox] == [signal_event("late")]
        assert again.history_length == 2


async def test_extend_lease(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "ext")
        task = await claim_one(b, lease=10)
        clock.advance(8)
        await b.extend_workflow_lease(task, 10)
        clock.advance(8)
        assert await b.claim_workflow_tasks(["default"], 10, 10) == []
        await b.commit_workflow_task(task, full_commit(task))


async def test_release_makes_task_claimable_again(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_failed_task_backs_off_and_blocks(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


# ---- fencing and atomicity ------------------------------------------------------------------


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
    from ostinato._backend import WorkflowTask

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


async def test_stale_token_writes_nothing(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_invalid_commit_writes_nothing(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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
    backend_url: str, clock: FakeClock
) -> None:
    # The token, not the clock, fences: an expired lease nobody took over still commits.
    async with open_backend(backend_url, clock) as b:
        await start(b, "slow")
        task = await claim_one(b, lease=1)
        clock.advance(5)
        await b.commit_workflow_task(task, full_commit(task))
        assert (await b.describe("slow")).history_length == 2


async def test_history_is_contiguous_across_tasks(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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
        assert kinds(history)[:3] == ["task_started", "workflow_started", "side_effect_recorded"]
        info = await b.describe("hist")
        assert info.history_length == len(history) == 3 + 3 * 3
        assert info.updated_at == T0 + 4


async def test_partial_consumption_keeps_the_rest(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_list_runs_accepts_status_strings(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "s")
        page, _ = await b.list_runs(status="running")  # type: ignore[arg-type]
        assert [r.instance_id for r in page] == ["s"]


# ---- timers -------------------------------------------------------------------------------


async def test_timers_fire_at_their_time_and_cancel(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_cancelling_a_fired_but_unconsumed_timer(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


# ---- signals, cancel, terminate -------------------------------------------------------------


async def test_signal_and_cancel_errors(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        cancel = ev("cancel_requested", reason="user")
        with pytest.raises(WorkflowNotFoundError):
            await b.signal("ghost", signal_event())
        with pytest.raises(WorkflowNotFoundError):
            await b.request_cancel("ghost", cancel)
        await start(b, "done")
        await run_to_close(b, "done")
        with pytest.raises(WorkflowNotRunningError) as err:
            await b.signal("done", signal_event())
        assert err.value.status == "completed"
        with pytest.raises(WorkflowNotRunningError):
            await b.request_cancel("done", cancel)


async def test_request_cancel_reaches_inbox(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "cxl")
        cancel = ev("cancel_requested", reason="user asked")
        await b.request_cancel("cxl", cancel)
        task = await claim_one(b)
        assert [i.event for i in task.inbox][-1] == cancel


async def test_terminate(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "term")
        await schedule_activity(
            b, "term", activity(1, "running"), activity(2, "queued", queue="slow")
        )
        [running] = await b.claim_activity_tasks(["default"], 60, 10)
        await b.signal("term", signal_event())
        task = await claim_one(b)
        clock.advance(3)
        await b.terminate("term", "operator said so")
        info = await b.describe("term")
        assert info.status is RunStatus.TERMINATED
        assert info.closed_at == T0 + 3
        assert info.history_length == 5
        failure = orjson.loads(info.result or b"null")
        assert failure["type"] == "WorkflowTerminatedError"
        assert "operator said so" in failure["message"]
        history = await b.history("term")
        assert orjson.loads(history[-1]) == {
            "kind": "workflow_terminated",
            "seq": 5,
            "reason": "operator said so",
        }
        with pytest.raises(LeaseLostError):
            await b.commit_workflow_task(task, full_commit(task))
        assert await b.heartbeat_activity(running, None, 60) is True
        assert await b.claim_activity_tasks(["slow"], 60, 10) == []
        assert await b.claim_workflow_tasks(["default"], 30, 10) == []
        with pytest.raises(WorkflowNotRunningError):
            await b.terminate("term", "again")
        with pytest.raises(WorkflowNotFoundError):
            await b.terminate("ghost", "x")
        # The activity's late result is accepted (fenced) but goes nowhere.
        await b.complete_activity(running, ev("activity_completed", id=1, result=1, attempt=1))
        assert (await b.describe("term")).history_length == 5


async def test_terminate_is_recursive_and_reports_to_parent(
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "root")
        task = await claim_one(b)
        await b.commit_workflow_task(task, full_commit(task, children=[child_run(task, 1, "mid")]))
        task = await claim_for(b, "mid")
        await b.commit_workflow_task(task, full_commit(task, children=[child_run(task, 1, "leaf")]))
        task = await claim_for(b, "leaf")
        await b.commit_workflow_task(task, full_commit(task))
        assert await b.claim_workflow_tasks(["default"], 30, 10) == []

        await b.terminate("mid", "stop")
        assert (await b.describe("mid")).status is RunStatus.TERMINATED
        assert (await b.describe("leaf")).status is RunStatus.TERMINATED
        assert (await b.describe("root")).status is RunStatus.RUNNING
        task = await claim_for(b, "root")
        [item] = task.inbox
        event = orjson.loads(item.event)
        assert event["kind"] == "child_failed" and event["id"] == 1
        assert event["failure"]["type"] == "WorkflowTerminatedError"
        assert "stop" in event["failure"]["message"]
        assert await b.claim_workflow_tasks(["default"], 30, 10) == []


# ---- children -----------------------------------------------------------------------------


async def test_child_lifecycle_and_parent_notification(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        existing = await start(b, "taken")
        await start(b, "p")
        task = await claim_for(b, "p")
        await b.commit_workflow_task(
            task,
            full_commit(
                task, {"kind": "child_scheduled", "id": 7}, children=[child_run(task, 7, "taken")]
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


async def test_child_continue_as_new_carries_parent(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "p")
        task = await claim_one(b)
        await b.commit_workflow_task(task, full_commit(task, children=[child_run(task, 1, "c")]))
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


# ---- continue-as-new, vars ------------------------------------------------------------------


async def test_continue_as_new(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        first = await start(b, "loop")
        await b.signal("loop", signal_event("left over"))
        task = await claim_one(b)
        # Consume only the start: the unhandled signal moves on to the next run (a long-lived
        # entity must not lose operations sent while it continues as new).
        task.inbox = task.inbox[:1]
        nxt = new_run("loop", started_event=started_event("wf", [2]), execution_deadline=T0 + 50)
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


async def test_vars_upsert(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "v")
        task = await claim_one(b)
        await b.commit_workflow_task(task, full_commit(task, vars={"a": b"1", "b": b'{"x":[1,2]}'}))
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


# ---- outgoing messages ----------------------------------------------------------------------


async def test_signal_external_and_cancel_instances(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_close_drops_inbox_and_queued_activities(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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


# ---- activities ---------------------------------------------------------------------------


async def test_activity_claim_and_complete(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        run = await start(b, "act")
        task = await claim_one(b)
        clock.advance(1)
        act = NewActivity(1, "charge", "acts", b'["o-1", 100]', b'{"retry":{"max":3}}', T0 + 99)
        await b.commit_workflow_task(task, full_commit(task, activities=[act]))
        assert await b.claim_activity_tasks(["default"], 30, 10) == []
        [claimed] = await b.claim_activity_tasks(["acts"], 30, 10)
        assert (claimed.instance_id, claimed.run_id, claimed.activity_id) == ("act", run.run_id, 1)
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


async def test_activity_claim_limits_and_concurrency(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "many")
        await schedule_activity(b, "many", *(activity(i) for i in range(1, 21)))
        assert await b.claim_activity_tasks(["default"], 30, 0) == []
        results = await asyncio.gather(
            *(b.claim_activity_tasks(["default"], 30, 6) for _ in range(5))
        )
        ids = [t.activity_id for tasks in results for t in tasks]
        assert sorted(ids) == list(range(1, 21))
        assert len({t.task_id for tasks in results for t in tasks}) == 20


async def test_activity_heartbeat_and_cancel(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
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


async def test_activity_retry(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "retry")
        await schedule_activity(b, "retry", activity(1))
        [first] = await b.claim_activity_tasks(["default"], 30, 10)
        await b.heartbeat_activity(first, b'{"done":5}', 30)
        await b.retry_activity(first, T0 + 10)
        with pytest.raises(LeaseLostError):
            await b.complete_activity(first, ev("activity_completed", id=1, result=1, attempt=1))
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


async def test_activity_takeover_after_lost_lease_completes_once(
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
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
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        first = await start(b, "old")
        await schedule_activity(b, "old", activity(1))
        [act] = await b.claim_activity_tasks(["default"], 30, 10)
        assert act.run_id == first.run_id
        await b.terminate("old", "x")
        await start(b, "old")  # a new run of the same id must not get the old result
        await b.complete_activity(act, ev("activity_completed", id=1, result=1, attempt=1))
        task = await claim_one(b)
        assert inbox_kinds(task) == ["workflow_started"]


async def test_activity_states_follow_attempts(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
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
        assert (state.attempt, state.running, state.heartbeat_details) == (1, True, b'{"done": 3}')
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


# ---- listing, deleting ----------------------------------------------------------------------


async def test_list_runs_latest_per_instance_newest_first(
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "a", name="alpha")
        clock.advance(1)
        await start(b, "b", name="beta")
        clock.advance(1)
        await start(b, "c", name="alpha")
        await run_to_close(b, "a")
        second_a = await start(b, "a", name="alpha")
        page, cursor = await b.list_runs()
        assert cursor is None
        assert (page[0].instance_id, page[0].run_id) == ("a", second_a.run_id)
        assert [r.instance_id for r in page] == ["a", "c", "b"]
        alpha, _ = await b.list_runs(workflow_name="alpha")
        assert [r.instance_id for r in alpha] == ["a", "c"]
        await run_to_close(b, "c", RunStatus.FAILED, b"{}")
        failed, _ = await b.list_runs(status=RunStatus.FAILED)
        assert [r.instance_id for r in failed] == ["c"]
        running_alpha, _ = await b.list_runs(status=RunStatus.RUNNING, workflow_name="alpha")
        assert [r.instance_id for r in running_alpha] == ["a"]
        assert (await b.list_runs(status=RunStatus.COMPLETED))[0] == []


async def test_list_runs_pagination_is_stable_under_inserts(
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        for i in range(23):
            await start(b, f"p{i:02d}", name="even" if i % 2 == 0 else "odd")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page, cursor = await b.list_runs(limit=5, cursor=cursor)
            seen.extend(r.instance_id for r in page)
            pages += 1
            await start(b, f"new-{pages}")  # newer runs appear before the cursor
            if cursor is None:
                break
        assert pages == 5
        assert seen == [f"p{i:02d}" for i in reversed(range(23))]
        evens: list[str] = []
        cursor = None
        while True:
            page, cursor = await b.list_runs(workflow_name="even", limit=4, cursor=cursor)
            evens.extend(r.instance_id for r in page)
            if cursor is None:
                break
        assert evens == [f"p{i:02d}" for i in reversed(range(0, 23, 2))]
        exact, cursor = await b.list_runs(workflow_name="even", limit=12)
        assert len(exact) == 12 and cursor is None


async def test_stats_counts_latest_runs_and_claimable_work_per_queue(
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        empty = await b.stats()
        assert (empty.now, empty.runs, empty.backlog) == (T0, [], [])
        await start(b, "a", name="alpha")
        clock.advance(1)
        await start(b, "b", name="alpha", queue="slow")
        clock.advance(1)
        await start(b, "c", name="beta")
        await start(b, "later", name="beta", visible_at=T0 + 60)
        await run_to_close(b, "c", RunStatus.FAILED, b"{}")
        await run_to_close(b, "a")
        await start(b, "a", name="alpha")  # a second run: only the latest one counts
        clock.advance(3)
        # "a" gets an activity and is then blocked (claimed and failed: in back-off).
        task = await claim_for(b, "a")
        await b.commit_workflow_task(task, full_commit(task, activities=[activity(queue="io")]))
        await b.signal("a", signal_event())
        task = await claim_for(b, "a")
        await b.fail_workflow_task(task, "NonDeterminismError at seq 4", T0 + 100)

        stats = await b.stats()
        assert stats.now == T0 + 5
        counts = {(r.workflow_name, r.status, r.blocked): r.count for r in stats.runs}
        assert counts == {
            ("alpha", RunStatus.RUNNING, True): 1,
            ("alpha", RunStatus.RUNNING, False): 1,
            ("beta", RunStatus.FAILED, False): 1,
            ("beta", RunStatus.RUNNING, False): 1,
        }
        backlog = {q.queue: q for q in stats.backlog}
        # "b" waits on "slow" since T0 + 1, the activity on "io" since T0 + 5;
        # "a" is in back-off and "later" not visible yet: neither is claimable.
        assert set(backlog) == {"slow", "io"}
        assert (backlog["slow"].workflow_tasks, backlog["slow"].activity_tasks) == (1, 0)
        assert backlog["slow"].oldest_ready_at == T0 + 1
        assert (backlog["io"].workflow_tasks, backlog["io"].activity_tasks) == (0, 1)
        assert backlog["io"].oldest_ready_at == T0 + 5

        # A leased task is not backlog; an expired lease makes it claimable again.
        (leased,) = await b.claim_activity_tasks(["io"], 10.0, 1)
        await claim_for(b, "b", queue="slow")
        assert (await b.stats()).backlog == []
        clock.advance(100)
        backlog = {q.queue: q for q in (await b.stats()).backlog}
        assert backlog["io"].activity_tasks == 1
        assert backlog["io"].oldest_ready_at == T0 + 15
        assert backlog["default"].workflow_tasks == 2  # "later" is visible, "a" out of back-off
        assert backlog["slow"].workflow_tasks == 1
        del leased


async def test_delete(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "del")
        with pytest.raises(WorkflowAlreadyStartedError):
            await b.delete("del")
        task = await claim_one(b)
        await b.commit_workflow_task(
            task,
            full_commit(task, vars={"pii": b'"secret"'}, close=RunClose(RunStatus.COMPLETED, b"1")),
        )
        await start(b, "del")
        await run_to_close(b, "del")
        await start(b, "keep")
        await b.delete("del")
        for call in (b.describe, b.history, b.get_vars, b.delete):
            with pytest.raises(WorkflowNotFoundError):
                await call("del")
        page, _ = await b.list_runs()
        assert [r.instance_id for r in page] == ["keep"]
        await start(b, "del", id_reuse="refuse")  # no trace left


# ---- wake-ups -------------------------------------------------------------------------------


async def test_wait_closed_wakes_on_commit(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        run = await start(b, "w")
        waiter = asyncio.create_task(b.wait_closed("w", run.run_id, 10))
        await asyncio.sleep(0.005)
        assert not waiter.done()
        started = time.monotonic()
        await run_to_close(b, "w")
        info = await asyncio.wait_for(waiter, 5)
        assert info.status is RunStatus.COMPLETED and info.result == b'"done"'
        assert time.monotonic() - started < 1.0
        # Already closed: returns at once.
        assert (await b.wait_closed("w", run.run_id, None)).status is RunStatus.COMPLETED


async def test_wait_closed_times_out_with_open_info(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        run = await start(b, "open")
        info = await b.wait_closed("open", run.run_id, 0.01)
        assert info.status is RunStatus.RUNNING
        assert (await b.wait_closed("open", run.run_id, 0)).status is RunStatus.RUNNING


async def test_wait_for_work_wakes_on_new_work(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        waiter = asyncio.create_task(b.wait_for_work("workflow", ["default"], 10))
        await asyncio.sleep(0.005)
        assert not waiter.done()
        await start(b, "ww")
        await asyncio.wait_for(waiter, 1)
        # Work already there: returns at once.
        await asyncio.wait_for(b.wait_for_work("workflow", ["default"], 10), 1)
        task = await claim_one(b)
        activity_waiter = asyncio.create_task(b.wait_for_work("activity", ["default"], 10))
        await asyncio.sleep(0.005)
        assert not activity_waiter.done()
        await b.commit_workflow_task(task, full_commit(task, activities=[activity(1)]))
        await asyncio.wait_for(activity_waiter, 1)
        [act] = await b.claim_activity_tasks(["default"], 30, 1)
        waiter = asyncio.create_task(b.wait_for_work("workflow", ["default"], 10))
        await asyncio.sleep(0.005)
        await b.complete_activity(act, ev("activity_completed", id=1, result=1, attempt=1))
        await asyncio.wait_for(waiter, 1)


async def test_wait_for_work_times_out(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "other-queue", queue="elsewhere")
        started = time.monotonic()
        await b.wait_for_work("workflow", ["default"], 0.02)
        await b.wait_for_work("activity", ["default"], 0.02)
        assert time.monotonic() - started < 2


async def test_wait_for_work_wakes_for_a_timer(backend_url: str) -> None:
    # Real time here: the wait must end when the timer becomes visible.
    async with open_backend(backend_url, time.time) as b:
        await start(b, "tick")
        task = await claim_one(b)
        fire_at = time.time() + 0.03
        await b.commit_workflow_task(
            task, full_commit(task, timers=[NewTimer(1, fire_at, ev("timer_fired", id=1))])
        )
        await b.wait_for_work("workflow", ["default"], 5)
        assert time.time() >= fire_at - 0.005
        assert time.time() < fire_at + 1


# ---- sticky runs: the next task is left to the worker that has the run cached --------------


async def sticky_to(b: Backend, instance_id: str, worker: str) -> None:
    """Start ``instance_id`` and commit its first task as kept cached by ``worker``."""
    await start(b, instance_id)
    task = await claim_for(b, instance_id)
    await b.commit_workflow_task(task, full_commit(task, sticky_worker=worker))


async def test_sticky_run_is_left_to_its_worker(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await sticky_to(b, "st", "worker-a")
        # No pending work: nobody claims anything.
        assert await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a") == []
        await b.signal("st", signal_event("go"))
        claim_b = b.claim_workflow_tasks
        assert await claim_b(["default"], 30, 10, worker="worker-b", sticky_wait=5) == []
        [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a")
        assert inbox_kinds(task) == ["signal_received"]
        await b.commit_workflow_task(task, full_commit(task, sticky_worker="worker-a"))

        # The owner may be gone: once the work waited sticky_wait, any worker takes it.
        await b.signal("st", signal_event("again"))
        clock.advance(4.9)
        assert await claim_b(["default"], 30, 10, worker="worker-b", sticky_wait=5) == []
        clock.advance(0.1)
        [task] = await claim_b(["default"], 30, 10, worker="worker-b", sticky_wait=5)
        assert inbox_kinds(task) == ["signal_received"]
        # The taker keeps it cached now: the former owner has to wait in its turn.
        await b.commit_workflow_task(task, full_commit(task, sticky_worker="worker-b"))
        await b.signal("st", signal_event("third"))
        assert (
            await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a", sticky_wait=5)
            == []
        )
        # A claim without a worker (no cache, no patience) takes it at once, as before.
        [task] = await b.claim_workflow_tasks(["default"], 30, 10)
        assert task.instance_id == "st"


async def test_sticky_runs_do_not_hide_other_work(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await start(b, "free")
        await sticky_to(b, "mine", "worker-b")
        await sticky_to(b, "owned", "worker-a")
        await b.signal("owned", signal_event())
        await b.signal("mine", signal_event())
        tasks = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b", sticky_wait=5)
        assert sorted(t.instance_id for t in tasks) == ["free", "mine"]


async def test_commit_without_sticky_worker_frees_the_run(
    backend_url: str, clock: FakeClock
) -> None:
    async with open_backend(backend_url, clock) as b:
        await sticky_to(b, "evicted", "worker-a")
        await b.signal("evicted", signal_event())
        [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a")
        await b.commit_workflow_task(task, full_commit(task))  # not kept cached
        await b.signal("evicted", signal_event())
        [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b", sticky_wait=5)
        assert task.instance_id == "evicted"


async def test_failed_or_released_task_frees_the_run(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await sticky_to(b, "failing", "worker-a")
        await b.signal("failing", signal_event())
        [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a")
        # The worker that failed the task disposed of its copy: the retry goes to anyone.
        await b.fail_workflow_task(task, "boom", clock.now + 1)
        clock.advance(1)
        [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b", sticky_wait=5)
        await b.commit_workflow_task(task, full_commit(task, sticky_worker="worker-b"))
        await b.signal("failing", signal_event())
        [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b")
        await b.release_workflow_task(task)
        [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a", sticky_wait=5)
        assert task.instance_id == "failing"


async def test_release_sticky_hands_runs_over(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        await sticky_to(b, "leaving-1", "worker-a")
        await sticky_to(b, "leaving-2", "worker-a")
        await sticky_to(b, "staying", "worker-c")
        for instance_id in ("leaving-1", "staying"):
            await b.signal(instance_id, signal_event())
        await b.release_sticky("worker-a", ["default"])
        # Also runs with no work pending at the time.
        await b.signal("leaving-2", signal_event())
        tasks = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b", sticky_wait=5)
        assert sorted(t.instance_id for t in tasks) == ["leaving-1", "leaving-2"]
        # Only the given queues: another queue's runs stay with the worker.
        await b.release_sticky("worker-c", ["elsewhere"])
        assert (
            await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b", sticky_wait=5)
            == []
        )


async def test_wait_for_work_waits_out_another_workers_sticky_run(backend_url: str) -> None:
    # Real time: worker-b's wait ends when the run's work has waited sticky_wait, not at once
    # (a busy loop of empty claims) and not only at the timeout.
    async with open_backend(backend_url, time.time) as b:
        await sticky_to(b, "patience", "worker-a")
        await b.signal("patience", signal_event())
        visible = time.time()
        # The owner finds it at once.
        await asyncio.wait_for(b.wait_for_work("workflow", ["default"], 5, worker="worker-a"), 1)
        await b.wait_for_work("workflow", ["default"], 5, worker="worker-b", sticky_wait=0.3)
        assert time.time() >= visible + 0.3 - 0.01
        assert time.time() < visible + 3
        [task] = await b.claim_workflow_tasks(
            ["default"], 30, 10, worker="worker-b", sticky_wait=0.3
        )
        assert task.instance_id == "patience"


# ---- payload fidelity -----------------------------------------------------------------------


async def test_bytes_round_trip_exactly(backend_url: str, clock: FakeClock) -> None:
    nasty = b'"\\u0000 NUL \x00 raw; quote \' " ; DROP TABLE runs; -- \xf0\x9f\x92\xa5 \xff'
    big = b'"' + b"x" * (10 * 1024 * 1024) + b'"'
    async with open_backend(backend_url, clock) as b:
        run = await start(b, "bytes; DROP TABLE runs; --'\"", started_event=nasty)
        await b.signal(run.instance_id, big)
        task = await claim_one(b)
        assert [i.event for i in task.inbox] == [nasty, big]
        events = [
            ev("task_started", seq=1, time=0),
            b'{"seq":2,"x":' + big + b"}",
            b'{"seq":3,"k":"\x00\xff"}',
        ]
        act = NewActivity(1, "n\x00me", "default", nasty, big)
        await b.commit_workflow_task(
            task,
            WorkflowCommit(
                new_events=events,
                consumed_inbox=[i.id for i in task.inbox],
                activities=[act],
                vars={"v\x00'": nasty},
            ),
        )
        assert await b.history(run.instance_id) == events
        assert await b.get_vars(run.instance_id) == {"v\x00'": nasty}
        [claimed] = await b.claim_activity_tasks(["default"], 30, 1)
        assert (claimed.name, claimed.input, claimed.options) == ("n\x00me", nasty, big)
        await b.heartbeat_activity(claimed, nasty, 30)
        await b.complete_activity(claimed, big)
        task = await claim_one(b)
        assert [i.event for i in task.inbox] == [big]
        await b.commit_workflow_task(
            task,
            WorkflowCommit(
                new_events=[ev("task_started", seq=4, time=0)],
                consumed_inbox=[i.id for i in task.inbox],
                close=RunClose(RunStatus.COMPLETED, nasty),
            ),
        )
        assert (await b.describe(run.instance_id)).result == nasty


# ---- optional capabilities ------------------------------------------------------------------


async def test_next_visible_time(backend_url: str, clock: FakeClock) -> None:
    async with open_backend(backend_url, clock) as b:
        next_visible_time = getattr(b, "next_visible_time", None)
        if next_visible_time is None:
            pytest.skip("backend has no time-skipping support")
        assert await next_visible_time() is None
        await start(b, "nv", visible_at=T0 + 50)
        assert await next_visible_time() == T0 + 50
        clock.advance(50)
        task = await claim_one(b)
        assert await next_visible_time() is None
        await b.commit_workflow_task(
            task,
            full_commit(
                task,
                activities=[activity(1)],
                timers=[NewTimer(1, T0 + 80, ev("timer_fired", id=1))],
            ),
        )
        assert await next_visible_time() == T0 + 80
        [act] = await b.claim_activity_tasks(["default"], 30, 1)
        await b.retry_activity(act, T0 + 60)
        assert await next_visible_time() == T0 + 60
