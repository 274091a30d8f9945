"""Conformance tests of runs: starting, describing, signalling, terminating, listing and
deleting them; payloads kept byte for byte."""

from __future__ import annotations

import orjson
import pytest

from ..._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ...backends import (
    NewActivity,
    RunClose,
    RunStatus,
    TimeSkipping,
    WorkflowCommit,
)
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    activity,
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
    signal_event,
    start,
)

__all__ = ["RunTests"]


class RunTests:
    """Starting, describing, signalling, terminating, listing and deleting runs; payloads
    kept byte for byte."""

    # ---- create ------------------------------------------------------------------------------

    async def test_create_and_describe(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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

    async def test_duplicate_open_run_is_refused(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "dup")
            with pytest.raises(WorkflowAlreadyStartedError) as err:
                await start(b, "dup")
            assert err.value.instance_id == "dup"
            page, _ = await b.list_runs()
            assert len(page) == 1

    async def test_id_reuse_allowed_after_close(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            first = await start(b, "reuse")
            await run_to_close(b, "reuse")
            second = await start(b, "reuse")
            assert (await b.describe("reuse")).run_id == second.run_id
            old = await b.describe("reuse", first.run_id)
            assert old.status is RunStatus.COMPLETED
            assert len(await b.history("reuse", first.run_id)) == 3
            assert await b.history("reuse") == []

    async def test_id_reuse_refused(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "once")
            await run_to_close(b, "once", RunStatus.FAILED, b'{"type":"X","message":"m"}')
            with pytest.raises(WorkflowAlreadyStartedError):
                await start(b, "once", id_reuse="refuse")
            # "refuse" only matters when an earlier run exists.
            await start(b, "fresh", id_reuse="refuse")

    async def test_id_conflict_fail_is_the_default(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            first = await start(b, "conflict")
            with pytest.raises(WorkflowAlreadyStartedError):
                await start(b, "conflict", id_conflict="fail")
            assert (await b.describe("conflict")).run_id == first.run_id

    async def test_id_conflict_use_existing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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

    async def test_id_conflict_terminate_existing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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

    async def test_id_conflict_is_validated(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "conflict")
            with pytest.raises(ValueError, match="id_conflict"):
                await b.create_run(new_run("conflict", id_conflict="replace"))
            with pytest.raises(ValueError, match="id_conflict"):
                await b.create_run(
                    new_run("conflict", id_conflict="terminate_existing", id_reuse="refuse")
                )
            assert (await b.describe("conflict")).status is RunStatus.RUNNING

    async def test_start_delay(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "later", visible_at=T0 + 60)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            # A signal does not make a delayed run claimable before its start time.
            await b.signal("later", signal_event("early"))
            clock.advance(59.9)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            clock.advance(0.1)
            task = await claim_one(b)
            assert inbox_kinds(task) == ["workflow_started", "signal_received"]

    async def test_create_run_leased(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        """Eager start: the new run's first task comes back leased (or None, and the run is
        claimed the usual way, from a backend that does not lease at start)."""
        async with opened(make_backend, clock) as b:
            task = await b.create_run_leased(new_run("eager"), 30)
            if task is None:
                task = await claim_one(b)
            else:
                assert await b.claim_workflow_tasks(["default"], 30, 10) == []  # leased
            assert (task.instance_id, task.history_length) == ("eager", 0)
            assert inbox_kinds(task) == ["workflow_started"]
            await b.commit_workflow_task(task, full_commit(task))
            assert (await b.describe("eager")).history_length == len(full_commit(task).new_events)
            # An open run to use: nothing started, nothing leased.
            assert (
                await b.create_run_leased(new_run("eager", id_conflict="use_existing"), 30) is None
            )
            with pytest.raises(WorkflowAlreadyStartedError):
                await b.create_run_leased(new_run("eager"), 30)
            # Started later: leased by nobody, claimable at its start time.
            assert await b.create_run_leased(new_run("later", visible_at=T0 + 60), 30) is None
            clock.advance(60)
            assert (await claim_one(b)).instance_id == "later"

    async def test_execution_deadline_delivers_timed_out(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "deadline", execution_deadline=T0 + 100)
            task = await claim_one(b)
            assert inbox_kinds(task) == ["workflow_started"]
            await b.commit_workflow_task(task, full_commit(task))
            clock.advance(99)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            clock.advance(1)
            task = await claim_one(b)
            assert [item.event for item in task.inbox] == [b'{"kind":"timed_out"}']

    async def test_unknown_instance_and_run(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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

    async def test_invalid_inputs_are_value_errors(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            with pytest.raises(ValueError):
                await b.create_run(new_run("x", id_reuse="sometimes"))
            with pytest.raises(ValueError):
                await b.list_runs(limit=0)
            with pytest.raises(ValueError):
                await b.list_runs(cursor="garbage")
            with pytest.raises(ValueError):
                await b.wait_for_work("something", ["default"], 0.01)
            assert (await b.list_runs())[0] == []

    # ---- signals, cancel, terminate ----------------------------------------------------------

    async def test_signal_and_cancel_errors(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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

    async def test_request_cancel_reaches_inbox(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "cxl")
            cancel = ev("cancel_requested", reason="user asked")
            await b.request_cancel("cxl", cancel)
            task = await claim_one(b)
            assert [i.event for i in task.inbox][-1] == cancel

    async def test_terminate(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
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
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "root")
            task = await claim_one(b)
            await b.commit_workflow_task(
                task, full_commit(task, children=[child_run(task, 1, "mid")])
            )
            task = await claim_for(b, "mid")
            await b.commit_workflow_task(
                task, full_commit(task, children=[child_run(task, 1, "leaf")])
            )
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

    async def test_terminated_runs_are_claimed_for_reporting_once(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "ran")
            task = await claim_one(b)
            kid = child_run(task, 1, "kid")
            await b.commit_workflow_task(task, full_commit(task, children=[kid]))
            never = await start(b, "never", visible_at=T0 + 3600)
            await start(b, "other-queue", queue="q2")
            await start(b, "done")
            await run_to_close(b, "done")
            assert await b.claim_closed_runs(["default", "q2"], 10) == []  # not terminated
            clock.advance(2)
            for instance_id in ("ran", "never", "other-queue"):
                await b.terminate(instance_id, f"stop {instance_id}")
            # The kept runs are no work: nothing to claim, no time to wake up at.
            assert await b.claim_workflow_tasks(["default", "q2"], 30, 10) == []
            if isinstance(b, TimeSkipping):
                assert await b.next_visible_time() is None
            assert (await b.stats()).backlog == []

            assert await b.claim_closed_runs(["default"], 0) == []
            first = await b.claim_closed_runs(["default"], 2)
            rest = await b.claim_closed_runs(["default"], 10)
            assert len(first) == 2 and len(rest) == 1
            claimed = {c.instance_id: c for c in first + rest}
            assert set(claimed) == {"ran", "kid", "never"}
            assert await b.claim_closed_runs(["default"], 10) == []  # each once, ever
            ran = claimed["ran"]
            info = await b.describe("ran")
            assert (ran.run_id, ran.workflow_name, ran.queue) == (info.run_id, "wf", "default")
            assert (ran.status, ran.closed_at, ran.result) == (
                RunStatus.TERMINATED,
                T0 + 2,
                info.result,
            )
            # A run that had run has its workflow_started in its history; one that never
            # ran (the child, the delayed start) keeps it with the mark (its history lacks it).
            assert ran.started_event is None
            assert claimed["kid"].started_event == kid.started_event
            assert claimed["never"].started_event == never.started_event
            [other] = await b.claim_closed_runs(["q2"], 10)
            assert other.instance_id == "other-queue"
            assert await b.claim_closed_runs(["default", "q2"], 10) == []
            # A terminated run deleted before anyone claimed it is not handed out.
            await start(b, "gone")
            await b.terminate("gone", "x")
            await b.delete("gone")
            assert await b.claim_closed_runs(["default"], 10) == []

    async def test_previous_run_ids_follow_the_continue_as_new_chain(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            first = await start(b, "chain")
            runs = [first.run_id]
            for _ in range(3):
                task = await claim_for(b, "chain")
                nxt = new_run("chain")
                await b.commit_workflow_task(
                    task,
                    full_commit(
                        task,
                        {"kind": "workflow_continued_as_new"},
                        close=RunClose(RunStatus.CONTINUED_AS_NEW, None, next_run=nxt),
                    ),
                )
                runs.append(nxt.run_id)
            # A later run of the same id that did not continue from the chain.
            await run_to_close(b, "chain")
            fresh = await start(b, "chain")
            await start(b, "other")
            last = runs[-1]
            assert await b.previous_run_ids("chain", last, 10) == runs[-2::-1]
            assert await b.previous_run_ids("chain", last, 2) == [runs[2], runs[1]]
            assert await b.previous_run_ids("chain", runs[1], 10) == [runs[0]]
            assert await b.previous_run_ids("chain", runs[0], 10) == []
            assert await b.previous_run_ids("chain", fresh.run_id, 10) == []
            assert await b.previous_run_ids("chain", last, 0) == []
            with pytest.raises(WorkflowNotFoundError):
                await b.previous_run_ids("chain", "f" * 32, 10)
            with pytest.raises(WorkflowNotFoundError):
                await b.previous_run_ids("ghost", last, 10)

    # ---- listing, deleting -------------------------------------------------------------------

    async def test_list_runs_latest_per_instance_newest_first(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
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

    async def test_delete(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "del")
            with pytest.raises(WorkflowAlreadyStartedError):
                await b.delete("del")
            task = await claim_one(b)
            await b.commit_workflow_task(
                task,
                full_commit(
                    task, vars={"pii": b'"secret"'}, close=RunClose(RunStatus.COMPLETED, b"1")
                ),
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

    # ---- payload fidelity --------------------------------------------------------------------

    async def test_bytes_round_trip_exactly(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        nasty = b'"\\u0000 NUL \x00 raw; quote \' " ; DROP TABLE runs; -- \xf0\x9f\x92\xa5 \xff'
        big = b'"' + b"x" * (10 * 1024 * 1024) + b'"'
        async with opened(make_backend, clock) as b:
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
