"""Conformance tests of the hook outbox (``HookStore``): a delivery written with every run
state change of interest while a worker with hooks serves the queue, claims of (delivery,
hook) pairs under a lease, retries, giving up, and deleting what was delivered."""

from __future__ import annotations

import asyncio

import orjson

from ..._backends._hook_store import HookDelivery, HookStore
from ..._backends._retention_store import RetentionStore
from ...backends import Backend, RunClose, RunStatus
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    child_run,
    claim_for,
    claim_one,
    ev,
    full_commit,
    new_run,
    opened,
    run_to_close,
    start,
)

__all__ = ["HookTests"]

HOOKS = ["h1", "h2"]


def _retention(backend: Backend) -> RetentionStore:
    assert isinstance(backend, RetentionStore)
    return backend


def _store(backend: Backend) -> HookStore:
    assert isinstance(backend, HookStore)
    return backend


async def _claim(
    backend: Backend, hooks: list[str] | None = None, lease: float = 30.0
) -> list[HookDelivery]:
    return await _store(backend).claim_hook_deliveries(["default"], hooks or HOOKS, lease, 100)


def _changes(claimed: list[HookDelivery]) -> set[tuple[str, str]]:
    return {(d.instance_id, d.status) for d in claimed}


class HookTests:
    """The hook outbox: what ``ostinato._hooks`` needs of a backend."""

    async def test_hooks_no_delivery_without_a_subscribed_queue(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "before")
            await run_to_close(b, "before")
            await _store(b).subscribe_hooks(["other"])
            await start(b, "elsewhere")
            await run_to_close(b, "elsewhere")
            assert await _claim(b) == []
            assert await _store(b).claim_hook_deliveries(["other"], HOOKS, 30, 100) == []

    async def test_hooks_every_close_writes_one_delivery(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await _store(b).subscribe_hooks(["default"])
            clock.advance(1)
            for status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED):
                await start(b, f"by-{status.value}")
                await run_to_close(b, f"by-{status.value}", status, b'{"v": 1}')
            # The execution timeout closes the run in a workflow task commit.
            await start(b, "by-timeout")
            await run_to_close(b, "by-timeout", RunStatus.TIMED_OUT, b'{"message": "late"}')
            # terminate, recursively to an open child.
            await start(b, "parent")
            task = await claim_for(b, "parent")
            await b.commit_workflow_task(
                task, full_commit(task, children=[child_run(task, 1, "child")])
            )
            await b.terminate("parent", "stop")
            # id_conflict="terminate_existing" terminates the open run.
            first = await start(b, "conflict")
            await start(b, "conflict", id_conflict="terminate_existing")
            # continue-as-new is not a state change for hooks.
            await start(b, "loop")
            task = await claim_for(b, "loop")
            nxt = new_run("loop")
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    {"kind": "workflow_continued_as_new"},
                    close=RunClose(RunStatus.CONTINUED_AS_NEW, None, next_run=nxt),
                ),
            )
            claimed = await _claim(b, ["h1"])
            assert _changes(claimed) == {
                ("by-completed", "completed"),
                ("by-failed", "failed"),
                ("by-canceled", "canceled"),
                ("by-timeout", "timed_out"),
                ("parent", "terminated"),
                ("child", "terminated"),
                ("conflict", "terminated"),
            }
            [done] = [d for d in claimed if d.instance_id == "by-completed"]
            info = await b.describe("by-completed")
            assert done.delivery_id == f"by-completed:{info.run_id}:completed"
            assert (done.hook, done.workflow_name, done.queue) == ("h1", "wf", "default")
            assert (done.occurred_at, done.attempt, done.result) == (T0 + 1, 1, b'{"v": 1}')
            [old] = [d for d in claimed if d.instance_id == "conflict"]
            assert old.run_id == first.run_id
            failure = orjson.loads(old.result or b"null")
            assert failure["type"] == "WorkflowTerminatedError"

    async def test_hooks_pairs_are_leased_retried_and_given_up(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            store = _store(b)
            await store.subscribe_hooks(["default"])
            await start(b, "r")
            await run_to_close(b, "r")
            first = await _claim(b)
            assert sorted(d.hook for d in first) == HOOKS
            assert await _claim(b) == []  # leased
            h1, h2 = sorted(first, key=lambda d: d.hook)
            # h1 fails and is retried 100 s later; h2's lease runs out (its worker died).
            assert await store.hook_failed(h1, "boom", T0 + 100)
            clock.advance(31)
            [again] = await _claim(b)
            assert (again.hook, again.attempt, again.delivery_id) == ("h2", 2, h2.delivery_id)
            assert not await store.hook_delivered(h2, HOOKS)  # the old lease is fenced off
            assert await store.hook_delivered(again, HOOKS)
            # h1 is given up for good: kept, listed, never claimed again.
            clock.advance(68)
            assert await _claim(b) == []  # not yet
            clock.advance(1)
            [retry] = await _claim(b)
            assert (retry.hook, retry.attempt) == ("h1", 2)
            assert await store.hook_failed(retry, "still broken", None)
            assert not await store.hook_failed(retry, "twice", None)
            clock.advance(3600)
            assert await _claim(b) == []
            [failure] = await store.list_hook_failures()
            assert (failure.delivery_id, failure.hook, failure.instance_id) == (
                h1.delivery_id,
                "h1",
                "r",
            )
            assert (failure.status, failure.attempts, failure.last_error) == (
                "completed",
                2,
                "still broken",
            )

    async def test_hooks_delivered_deliveries_are_deleted(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            store = _store(b)
            await store.subscribe_hooks(["default"])
            await start(b, "r")
            await run_to_close(b, "r")
            h1, h2 = sorted(await _claim(b), key=lambda d: d.hook)
            assert await store.hook_delivered(h1, HOOKS)
            assert await store.hook_delivered(h2, HOOKS)
            clock.advance(3600)
            assert await _claim(b) == []
            assert await store.list_hook_failures() == []
            # A hook this worker did not have sees nothing of it: the row is gone.
            assert await _claim(b, ["h3"]) == []

    async def test_hooks_concurrent_claims_share_nothing(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await _store(b).subscribe_hooks(["default"])
            for i in range(10):
                await start(b, f"r{i}")
            for _ in range(10):
                task = await claim_one(b)
                await b.commit_workflow_task(
                    task,
                    full_commit(
                        task,
                        {"kind": "workflow_completed", "result": None},
                        close=RunClose(RunStatus.COMPLETED, b"1"),
                    ),
                )
            batches = await asyncio.gather(
                *(_store(b).claim_hook_deliveries(["default"], HOOKS, 30, 4) for _ in range(8))
            )
            pairs = [(d.delivery_id, d.hook) for got in batches for d in got]
            assert len(pairs) == len(set(pairs)) == 20

    async def test_hooks_each_pause_writes_a_numbered_delivery(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "unsubscribed")
            assert await b.pause("unsubscribed")
            await _store(b).subscribe_hooks(["default"])
            clock.advance(1)
            await start(b, "p")
            run_id = (await b.describe("p")).run_id
            assert await b.pause("p", "provider down")
            assert not await b.pause("p", "again")  # paused already: no change, no delivery
            [first] = await _claim(b, ["h1"])
            assert (first.delivery_id, first.status) == (f"p:{run_id}:paused:1", "paused")
            assert (first.occurred_at, first.result) == (T0 + 1, b"provider down")
            assert await _store(b).hook_delivered(first, ["h1"])
            clock.advance(1)
            assert await b.resume("p")
            assert await b.pause("p")  # a second pause is a change of its own
            [second] = await _claim(b, ["h1"])
            assert second.delivery_id == f"p:{run_id}:paused:2"
            assert (second.occurred_at, second.result) == (T0 + 2, None)

    async def test_hooks_deliveries_go_with_their_deleted_runs(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await _store(b).subscribe_hooks(["default"])
            for name in ("gone", "swept", "kept"):
                await start(b, name)
                await b.pause(name, "why")
                await b.resume(name)
                await run_to_close(b, name, RunStatus.FAILED, b'{"message": "secret"}')
                clock.advance(1)
            # "gone": h1 gave up on its close, h2 never claimed it.
            claimed = await _claim(b, ["h1"])
            for d in claimed:
                assert await _store(b).hook_failed(d, "boom", None)
            await b.delete("gone")
            clock.advance(10)
            assert await _retention(b).delete_closed_instances(T0 + 5, [RunStatus.FAILED], 1) == 1
            left = await _claim(b, ["h2"])
            assert {d.instance_id for d in left} == {"kept"}
            assert {f.instance_id for f in await _store(b).list_hook_failures()} == {"kept"}

    async def test_hooks_payloads_of_a_redacted_run_are_scrubbed(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await _store(b).subscribe_hooks(["default"])
            await start(b, "r")
            await b.pause("r", "secret reason")
            await b.resume("r")
            await run_to_close(b, "r", RunStatus.COMPLETED, b'"secret"')
            await start(b, "other")
            await run_to_close(b, "other", RunStatus.COMPLETED, b'"other"')
            for d in await _claim(b, ["h1"]):
                assert await _store(b).hook_failed(d, f"bad {d.result!r}", None)
            info = await b.describe("r")
            history = await b.history("r")
            await _retention(b).redact_run(
                "r", info.run_id, [ev("redacted", n=n) for n in range(len(history))]
            )
            results = {(d.instance_id, d.status): d.result for d in await _claim(b, ["h2"])}
            assert results == {
                ("r", "paused"): None,
                ("r", "completed"): None,
                ("other", "completed"): b'"other"',
            }
            errors = {f.instance_id: f.last_error for f in await _store(b).list_hook_failures()}
            assert errors == {"r": "", "other": "bad b'\"other\"'"}

    async def test_hooks_given_up_deliveries_are_purged_by_age(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            store = _store(b)
            await store.subscribe_hooks(["default"])
            for name in ("old-given-up", "old-pending", "new-given-up"):
                await start(b, name)
                await run_to_close(b, name)
                if name == "old-pending":
                    clock.advance(100)
            for d in await _claim(b, ["h1"]):
                assert await store.hook_failed(d, "boom", None if "given" in d.instance_id else 1)
            assert await store.purge_hook_failures(T0, 10) == 0  # none that old
            assert await store.purge_hook_failures(T0 + 50, 10) == 1
            assert [f.instance_id for f in await store.list_hook_failures()] == ["new-given-up"]
            # The pending one is left to its retries, whatever its age.
            assert await store.purge_hook_failures(T0 + 1000, 10) == 1
            assert await store.list_hook_failures() == []
            assert {d.instance_id for d in await _claim(b, ["h1"])} == {"old-pending"}
