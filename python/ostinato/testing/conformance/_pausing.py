"""Conformance tests of pausing runs: no workflow task and no new activity attempt for a
paused run, what arrives meanwhile kept, everything handed out on resume."""

from __future__ import annotations

import pytest

from ..._errors import WorkflowNotFoundError, WorkflowNotRunningError
from ...backends import NewTimer, RunStatus
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    activity,
    claim_for,
    claim_one,
    ev,
    full_commit,
    inbox_kinds,
    opened,
    run_to_close,
    schedule_activity,
    signal_event,
    start,
)

__all__ = ["PauseTests"]


class PauseTests:
    """``pause`` and ``resume`` of runs."""

    async def test_a_paused_run_gets_no_workflow_task_and_keeps_its_inbox(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "p")
            await start(b, "other")
            assert await b.pause("p", "investigating") is True
            assert await b.pause("p", "again") is False  # the first reason stays
            info = await b.describe("p")
            assert info.status is RunStatus.RUNNING
            assert (info.paused_at, info.pause_reason) == (T0, "investigating")
            await b.signal("p", signal_event("go"))
            tasks = await b.claim_workflow_tasks(["default"], 30, 10)
            assert [t.instance_id for t in tasks] == ["other"]
            await b.wait_for_work("workflow", ["default"], 0.05)  # returns: nothing to spin on
            stats = await b.stats()
            assert all(q.workflow_tasks == 0 for q in stats.backlog)
            assert {(r.workflow_name, r.status, r.paused, r.count) for r in stats.runs} == {
                ("wf", RunStatus.RUNNING, True, 1),
                ("wf", RunStatus.RUNNING, False, 1),
            }
            paused, _ = await b.list_runs(paused=True)
            assert [r.instance_id for r in paused] == ["p"]
            unpaused, _ = await b.list_runs(paused=False)
            assert [r.instance_id for r in unpaused] == ["other"]
            assert await b.resume("p") is True
            assert await b.resume("p") is False
            info = await b.describe("p")
            assert (info.paused_at, info.pause_reason) == (None, None)
            task = await claim_one(b)
            assert task.instance_id == "p"
            assert inbox_kinds(task) == ["workflow_started", "signal_received"]

    async def test_a_paused_run_starts_no_activity_attempt_but_in_flight_ones_finish(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "p")
            await schedule_activity(b, "p", activity(1, "first"), activity(2, "second"))
            [running] = await b.claim_activity_tasks(["default"], 30, 1)
            assert running.activity_id == 1
            await b.pause("p")
            assert await b.claim_activity_tasks(["default"], 30, 10) == []
            stats = await b.stats()
            assert all(q.activity_tasks == 0 for q in stats.backlog)
            # The attempt under way finishes and is recorded; the run still waits.
            await b.complete_activity(
                running, ev("activity_completed", id=1, result=b'"one"'.decode())
            )
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            states = await b.activity_states("p", running.run_id)
            assert [s.activity_id for s in states] == [2]
            await b.resume("p")
            [second] = await b.claim_activity_tasks(["default"], 30, 10)
            assert second.activity_id == 2 and second.attempt == 1
            task = await claim_for(b, "p")
            assert inbox_kinds(task) == ["activity_completed"]

    async def test_a_timer_due_while_paused_is_delivered_on_resume(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "p")
            task = await claim_one(b)
            timer = ev("timer_fired", id=1)
            await b.commit_workflow_task(
                task, full_commit(task, timers=[NewTimer(1, T0 + 10, timer)])
            )
            await b.pause("p")
            clock.advance(20)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            await b.resume("p")
            task = await claim_one(b)
            assert inbox_kinds(task) == ["timer_fired"]

    async def test_pause_of_closed_or_unknown_runs_is_refused_and_terminate_still_works(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "done")
            await run_to_close(b, "done")
            with pytest.raises(WorkflowNotRunningError):
                await b.pause("done")
            with pytest.raises(WorkflowNotFoundError):
                await b.pause("nobody")
            await start(b, "p")
            await b.pause("p")
            await b.terminate("p", "enough")
            info = await b.describe("p")
            assert info.status is RunStatus.TERMINATED
            with pytest.raises(WorkflowNotRunningError):
                await b.resume("p")
