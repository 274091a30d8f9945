"""Conformance tests of retention (``RetentionStore``): deleting closed instances in batches
by age, status and count, and the compare-and-set lease of a sweep."""

from __future__ import annotations

import pytest

from ..._backends._retention_store import CLOSED_STATUSES, RetentionStore
from ..._errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from ...backends import Backend, RunClose, RunStatus
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    activity,
    claim_for,
    ev,
    full_commit,
    new_run,
    opened,
    run_to_close,
    schedule_activity,
    signal_event,
    start,
)

__all__ = ["RetentionTests"]


def store(backend: Backend) -> RetentionStore:
    assert isinstance(backend, RetentionStore)
    return backend


class RetentionTests:
    """What ``Client.delete_closed`` and ``Worker(retention=...)`` need of a backend."""

    async def test_delete_closed_instances_by_age_status_and_count(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            # "old": closed at T0 with variables, after scheduling an activity and
            # receiving a signal.
            await start(b, "old")
            await schedule_activity(b, "old", activity(1))
            await b.signal("old", signal_event("go"))
            task = await claim_for(b, "old")
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    vars={"pii": b'"secret"'},
                    close=RunClose(RunStatus.COMPLETED, b'"r"'),
                ),
            )
            clock.advance(10)
            await start(b, "failed")
            await run_to_close(b, "failed", RunStatus.FAILED)
            clock.advance(10)
            await start(b, "running")
            await b.signal("running", signal_event("go"))
            await start(b, "new")
            await run_to_close(b, "new")
            everything = CLOSED_STATUSES

            # Only what closed before the cut-off, never the running one.
            assert await store(b).delete_closed_instances(T0 + 5, everything, 10) == 1
            for call in (b.describe, b.history, b.get_vars):
                with pytest.raises(WorkflowNotFoundError):
                    await call("old")
            await b.describe("failed")
            # By status: the failed one is not completed.
            done = (RunStatus.COMPLETED,)
            assert await store(b).delete_closed_instances(T0 + 15, done, 10) == 0
            assert await store(b).delete_closed_instances(T0 + 15, (RunStatus.FAILED,), 10) == 1
            # By count, oldest first.
            clock.advance(10)
            await start(b, "newer")
            await run_to_close(b, "newer")
            assert await store(b).delete_closed_instances(clock() + 1, everything, 1) == 1
            with pytest.raises(WorkflowNotFoundError):
                await b.describe("new")
            await b.describe("newer")
            assert await store(b).delete_closed_instances(clock() + 1, everything, 10) == 1
            page, _ = await b.list_runs()
            assert [r.instance_id for r in page] == ["running"]
            assert (await b.describe("running")).status is RunStatus.RUNNING
            await start(b, "old", id_reuse="refuse")  # no trace left

    async def test_delete_closed_instances_removes_every_run_of_an_instance(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "twice")
            await run_to_close(b, "twice")
            await start(b, "twice")  # a second run of the same id (id reuse)
            await run_to_close(b, "twice")
            clock.advance(1)
            assert await store(b).delete_closed_instances(clock(), CLOSED_STATUSES, 10) == 1
            with pytest.raises(WorkflowNotFoundError):
                await b.describe("twice")
            await start(b, "twice", id_reuse="refuse")

    async def test_sweep_lease_is_a_compare_and_set(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            s = store(b)
            assert await s.claim_sweep("retention", "a", 30)
            assert not await s.claim_sweep("retention", "b", 30)  # a holds it
            assert await s.claim_sweep("other", "b", 30)  # another sweep is another row
            clock.advance(20)
            assert await s.claim_sweep("retention", "a", 30)  # renewed until T0 + 50
            clock.advance(20)
            assert not await s.claim_sweep("retention", "b", 30)
            clock.advance(10)
            assert await s.claim_sweep("retention", "b", 30)  # expired: taken over
            assert not await s.claim_sweep("retention", "a", 30)
            await s.release_sweep("retention", "a")  # not a's: nothing happens
            assert not await s.claim_sweep("retention", "a", 30)
            await s.release_sweep("retention", "b")
            assert await s.claim_sweep("retention", "a", 30)

    async def test_redact_run_replaces_history_and_drops_payload_rows(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "r")
            with pytest.raises(WorkflowAlreadyStartedError):
                await store(b).redact_run("r", (await b.describe("r")).run_id, [])
            task = await claim_for(b, "r")
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    vars={"pii": b'"secret"'},
                    close=RunClose(RunStatus.FAILED, b'{"message": "secret"}'),
                ),
            )
            info = await b.describe("r")
            history = await b.history("r")
            with pytest.raises(ValueError):  # one event short: nothing written
                await store(b).redact_run("r", info.run_id, history[1:])
            assert await b.get_vars("r") == {"pii": b'"secret"'}
            with pytest.raises(WorkflowNotFoundError):
                await store(b).redact_run("r", "no-such-run", history)
            scrubbed = [ev("redacted", n=n) for n in range(len(history))]
            await store(b).redact_run("r", info.run_id, scrubbed)
            assert await b.history("r") == scrubbed
            assert await b.get_vars("r") == {}
            after = await b.describe("r")
            assert after.result is None and after.status is RunStatus.FAILED
            assert after.history_length == info.history_length

    async def test_closed_runs_to_redact_lists_every_closed_run_not_redacted_yet(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            # "chain": a first run continued as new (closed, not the latest), then completed.
            await start(b, "chain")
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
            first = task.run_id
            clock.advance(1)
            await run_to_close(b, "chain")
            clock.advance(1)
            await start(b, "failed")
            await run_to_close(b, "failed", RunStatus.FAILED)
            await start(b, "running")
            clock.advance(1)
            s = store(b)
            assert await s.closed_runs_to_redact(T0, 10) == []
            latest = (await b.describe("chain")).run_id
            failed = (await b.describe("failed")).run_id
            assert await s.closed_runs_to_redact(T0 + 10, 10) == [
                ("chain", first),
                ("chain", latest),
                ("failed", failed),
            ]
            assert await s.closed_runs_to_redact(T0 + 10, 1) == [("chain", first)]
            history = await b.history("chain", first)
            await s.redact_run("chain", first, [ev("redacted", n=n) for n in range(len(history))])
            assert await s.closed_runs_to_redact(T0 + 10, 10) == [
                ("chain", latest),
                ("failed", failed),
            ]
