"""Conformance tests of tags and listing filters (tags stored and carried over, every
``list_runs`` filter, alone and combined, with cursor paging under filters) and of
``resume`` (a blocked run retried at once)."""

from __future__ import annotations

import pytest

from ..._errors import WorkflowNotFoundError, WorkflowNotRunningError
from ...backends import RunClose, RunStatus
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    child_run,
    claim_for,
    claim_one,
    full_commit,
    new_run,
    opened,
    run_to_close,
    signal_event,
    start,
)

__all__ = ["SearchTests"]


class SearchTests:
    """Tags of runs, the filters of ``list_runs``, and ``resume``."""

    async def test_tags_are_stored_and_described(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            tags = {"customer": "ada", "plan": "pro", "é ключ": 'värde "quoted" \''}
            await start(b, "t", tags=tags)
            await start(b, "plain")
            assert (await b.describe("t")).tags == tags
            assert (await b.describe("plain")).tags == {}
            page, _ = await b.list_runs()
            assert {r.instance_id: dict(r.tags) for r in page} == {"t": tags, "plain": {}}

    async def test_tags_carry_over_continue_as_new_and_children_have_their_own(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "loop", tags={"customer": "ada"})
            task = await claim_one(b)
            child = child_run(task, 1, "kid", tags={"role": "child"})
            await b.commit_workflow_task(task, full_commit(task, children=[child]))
            assert (await b.describe("kid")).tags == {"role": "child"}
            await b.signal("loop", signal_event())
            task = await claim_for(b, "loop")
            nxt = new_run("loop")  # no tags of its own: the closing run's go on
            close = RunClose(RunStatus.CONTINUED_AS_NEW, None, nxt)
            await b.commit_workflow_task(task, full_commit(task, close=close))
            info = await b.describe("loop")
            assert info.run_id == nxt.run_id and info.tags == {"customer": "ada"}
            found, _ = await b.list_runs(tags={"customer": "ada"})
            assert [(r.instance_id, r.run_id) for r in found] == [("loop", nxt.run_id)]

    async def test_list_runs_by_tags_queue_and_times(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "a", queue="q1", tags={"customer": "ada", "plan": "pro"})
            clock.advance(10)
            await start(b, "b", queue="q2", tags={"customer": "ada", "plan": "free"})
            clock.advance(10)
            await start(b, "c", queue="q1", tags={"customer": "bob", "plan": "pro"})
            clock.advance(10)
            await run_to_close(b, "a", queue="q1")  # closed at T0 + 30

            async def ids(**filters: object) -> list[str]:
                page, _ = await b.list_runs(**filters)  # type: ignore[arg-type]
                return [r.instance_id for r in page]

            assert await ids(tags={"customer": "ada"}) == ["b", "a"]
            assert await ids(tags={"customer": "ada", "plan": "pro"}) == ["a"]
            assert await ids(tags={"customer": "ada", "plan": "gold"}) == []
            assert await ids(tags={"nobody": "ada"}) == []
            assert await ids(queue="q1") == ["c", "a"]
            assert await ids(queue="q1", tags={"plan": "pro"}, status=RunStatus.RUNNING) == ["c"]
            assert await ids(started_after=T0 + 10) == ["c", "b"]
            assert await ids(started_before=T0 + 10) == ["a"]
            assert await ids(started_after=T0 + 5, started_before=T0 + 15) == ["b"]
            assert await ids(closed_after=T0 + 30) == ["a"]
            assert await ids(closed_after=T0 + 31) == []

    async def test_list_runs_blocked(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "ok")
            await start(b, "stuck")
            task = await claim_for(b, "stuck")
            await b.fail_workflow_task(task, "NonDeterminismError at seq 2", T0 + 100)
            blocked, _ = await b.list_runs(blocked=True)
            assert [r.instance_id for r in blocked] == ["stuck"]
            assert blocked[0].blocked_reason == "NonDeterminismError at seq 2"
            healthy, _ = await b.list_runs(blocked=False, status=RunStatus.RUNNING)
            assert [r.instance_id for r in healthy] == ["ok"]

    async def test_paging_under_filters_is_stable(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            for i in range(17):
                await start(b, f"r{i:02d}", tags={"parity": "even" if i % 2 == 0 else "odd"})
            seen: list[str] = []
            cursor = None
            pages = 0
            while True:
                page, cursor = await b.list_runs(tags={"parity": "even"}, limit=3, cursor=cursor)
                seen.extend(r.instance_id for r in page)
                pages += 1
                # Newer matching runs appear before the cursor: no repeat, no skip.
                await start(b, f"new-{pages}", tags={"parity": "even"})
                if cursor is None:
                    break
            assert seen == [f"r{i:02d}" for i in reversed(range(0, 17, 2))]
            assert pages == 3

    async def test_bad_tags_are_refused_and_store_nothing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            with pytest.raises(ValueError, match="at most 32"):
                await start(b, "many", tags={f"k{i}": "v" for i in range(33)})
            with pytest.raises(ValueError, match="limit is 64"):
                await start(b, "long", tags={"k" * 65: "v"})
            with pytest.raises(ValueError, match="limit is 256"):
                await start(b, "big", tags={"k": "v" * 257})
            assert (await b.list_runs())[0] == []

    # ---- resume: a blocked run's task retried at once --------------------------------------

    async def test_resume_retries_a_blocked_run_at_once(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "stuck")
            task = await claim_one(b)
            await b.fail_workflow_task(task, "NonDeterminismError at seq 2", T0 + 3600)
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            assert await b.resume("stuck") is True
            again = await claim_one(b)
            assert again.instance_id == "stuck" and again.failed_attempts == 1
            await b.commit_workflow_task(again, full_commit(again))
            info = await b.describe("stuck")
            assert info.blocked_reason is None
            assert await b.resume("stuck") is False  # healthy: nothing to do

    async def test_resume_leaves_a_delayed_start_and_refuses_closed_runs(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await b.create_run(new_run("later", visible_at=T0 + 60))
            assert await b.resume("later") is False
            assert await b.claim_workflow_tasks(["default"], 30, 10) == []
            await start(b, "done")
            await run_to_close(b, "done")
            with pytest.raises(WorkflowNotRunningError):
                await b.resume("done")
            with pytest.raises(WorkflowNotFoundError):
                await b.resume("nobody")
