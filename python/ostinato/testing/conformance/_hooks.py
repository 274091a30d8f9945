"""Conformance tests of the hook outbox (``HookStore``): a delivery written with every run
state change of interest while a worker with hooks serves the queue, claims of (delivery,
hook) pairs under a lease, retries, giving up, and deleting what was delivered."""

from __future__ import annotations

import asyncio

import orjson

from ..._backends._hook_store import HookDelivery, HookStore
from ...backends import Backend, RunClose, RunStatus
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
    start,
)

__all__ = ["HookTests"]

HOOKS = ["h1", "h2"]


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
