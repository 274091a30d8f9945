"""Hooks on run state changes, end to end on every backend: each close is delivered once to
each hook that wants it, failed calls are retried with the same event id, a hook that fails
for good is given up (and listed) without holding back the run or the other hooks, and two
workers never deliver one change to one hook at the same time."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import ostinato
import pytest
from ostinato import RetryPolicy, RunStateChange, workflow

FAST = RetryPolicy(initial_interval=0.05, max_interval=0.2, max_attempts=4)


@workflow.defn
async def greet(name: str) -> dict[str, str]:
    return {"hello": name}


@workflow.defn
async def broken() -> None:
    raise ostinato.ApplicationError("no luck", type="Unlucky", non_retryable=True)


@workflow.defn
async def sleeper() -> None:
    await workflow.sleep(3600)


@ostinato.activity.defn
async def refused() -> None:
    raise RuntimeError("provider refused")


@workflow.defn
async def charges() -> None:
    policy = RetryPolicy(initial_interval=0.01, max_attempts=0, pause_after=2)
    await workflow.execute_activity(refused, retry=policy)


async def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


def worker(backend: ostinato.Backend, hooks: list[Any], **kw: Any) -> ostinato.Worker:
    return ostinato.Worker(
        backend,
        workflows=[greet, broken, sleeper, charges],
        activities=[refused],
        hooks=hooks,
        poll_interval=0.05,
        **kw,
    )


async def test_each_close_reaches_the_hooks_that_want_it(backend_url: str) -> None:
    seen: list[RunStateChange] = []
    greets: list[RunStateChange] = []

    @ostinato.hook(retry=FAST)
    async def everything(event: RunStateChange) -> None:
        seen.append(event)

    @ostinato.hook(on=("completed",), workflows=["greet"], retry=FAST)
    async def greeted(event: RunStateChange) -> None:
        greets.append(event)

    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    async with worker(backend, [everything, greeted]):
        ok = await client.start_workflow(greet, "ada", id="ok")
        assert await ok.result(timeout=30) == {"hello": "ada"}
        bad = await client.start_workflow(broken, id="bad")
        with pytest.raises(ostinato.WorkflowFailedError):
            await bad.result(timeout=30)
        term = await client.start_workflow(sleeper, id="term")
        cancel = await client.start_workflow(sleeper, id="cancel")
        late = await client.start_workflow(sleeper, id="late", execution_timeout=0.3)
        await term.terminate("enough")
        await cancel.cancel()
        with pytest.raises(ostinato.WorkflowTimedOutError):
            await late.result(timeout=30)
        await until(lambda: len(seen) == 5)
        await asyncio.sleep(0.3)  # nothing more comes
    by_id = {e.instance_id: e for e in seen}
    assert len(seen) == 5 and set(by_id) == {"ok", "bad", "term", "cancel", "late"}
    assert {i: e.status for i, e in by_id.items()} == {
        "ok": "completed",
        "bad": "failed",
        "term": "terminated",
        "cancel": "cancelled",
        "late": "timed_out",
    }
    done = by_id["ok"]
    assert done.result == {"hello": "ada"} and done.failure is None
    assert done.workflow_name == "greet" and done.attempt == 1
    assert done.id == f"ok:{done.run_id}:completed"
    assert done.time.tzinfo is not None
    failure = by_id["bad"].failure
    assert isinstance(failure, ostinato.ApplicationError)
    assert failure.type == "Unlucky" and "no luck" in str(failure)
    assert "enough" in str(by_id["term"].failure)
    assert [e.id for e in greets] == [done.id]


async def test_paused_hooks_fire_on_every_pause(backend_url: str) -> None:
    paused: list[RunStateChange] = []

    @ostinato.hook(on=("paused",), retry=FAST)
    async def on_pause(event: RunStateChange) -> None:
        paused.append(event)

    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        async with worker(backend, [on_pause]):
            by_hand = await client.start_workflow(sleeper, id="by-hand")
            # Served once: the worker has subscribed its queue (it does so as it starts).
            while (await by_hand.describe()).history_length == 0:
                await asyncio.sleep(0.02)
            assert await by_hand.pause("looking into it")
            await until(lambda: len(paused) == 1)
            assert await by_hand.resume()
            assert await by_hand.pause()  # a second pause: a change of its own
            await until(lambda: len(paused) == 2)
            # RetryPolicy(pause_after=2): the worker pauses the run, then again after resume.
            dead_letter = await client.start_workflow(charges, id="dead-letter")
            await until(lambda: len(paused) == 3)
            assert await dead_letter.resume()
            await until(lambda: len(paused) == 4)
            await asyncio.sleep(0.3)  # nothing more, nothing twice
            await by_hand.terminate("done")
            await dead_letter.terminate("done")
        first, second, third, fourth = paused
        run_id = (await by_hand.describe()).run_id
        assert [e.id for e in (first, second)] == [f"by-hand:{run_id}:paused:{n}" for n in (1, 2)]
        assert all(e.status == "paused" and e.workflow_name == "sleeper" for e in paused[:2])
        assert (first.reason, second.reason) == ("looking into it", None)
        assert first.result is None and first.failure is None
        assert third.id.endswith(":paused:1") and fourth.id.endswith(":paused:2")
        assert third.instance_id == fourth.instance_id == "dead-letter"
        assert third.reason is not None and "failed 2 attempts in a row" in third.reason
        assert "RuntimeError: provider refused" in third.reason
    finally:
        await backend.close()


async def test_a_failing_hook_is_retried_with_the_same_event_id(backend_url: str) -> None:
    calls: list[RunStateChange] = []

    @ostinato.hook(on=("completed",), retry=FAST)
    async def flaky(event: RunStateChange) -> None:
        calls.append(event)
        if len(calls) <= 2:
            raise RuntimeError(f"webhook down ({len(calls)})")

    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    async with worker(backend, [flaky]):
        handle = await client.start_workflow(greet, "bob", id="flaky")
        await handle.result(timeout=30)
        await until(lambda: len(calls) == 3)
        await asyncio.sleep(0.5)  # delivered: never called again
    assert len(calls) == 3
    assert len({e.id for e in calls}) == 1
    assert [e.attempt for e in calls] == [1, 2, 3]
    assert await client.list_hook_failures() == []


async def test_a_poison_hook_blocks_neither_the_run_nor_other_hooks(
    backend_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    good: list[str] = []
    attempts = Counter[str]()

    @ostinato.hook(retry=RetryPolicy(initial_interval=0.05, max_attempts=3))
    async def poison(event: RunStateChange) -> None:
        attempts[event.id] += 1
        raise ValueError("always")

    @ostinato.hook()
    async def fine(event: RunStateChange) -> None:
        good.append(event.instance_id)

    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    caplog.set_level(logging.ERROR, logger="ostinato.hooks")
    async with worker(backend, [poison, fine]):
        for i in range(3):
            handle = await client.start_workflow(greet, str(i), id=f"p{i}")
            assert await handle.result(timeout=30) == {"hello": str(i)}
        await until(lambda: sorted(good) == ["p0", "p1", "p2"])
        await until(lambda: sorted(attempts.values()) == [3, 3, 3])
        await asyncio.sleep(0.3)
    assert sorted(attempts.values()) == [3, 3, 3]  # given up after max_attempts
    failures = await client.list_hook_failures()
    assert sorted(f.instance_id for f in failures) == ["p0", "p1", "p2"]
    assert {(f.hook, f.attempts, f.last_error) for f in failures} == {
        (f"{__name__}.{poison.__qualname__}", 3, "ValueError: always")
    }
    assert sum("gave up" in r.getMessage() for r in caplog.records) == 3
    with pytest.raises(ValueError, match="limit"):
        await client.list_hook_failures(limit=0)
    if backend_url != "memory://":  # the blocking facade reads the same rows
        with ostinato.SyncClient(backend_url) as sync:
            assert len(sync.list_hook_failures(limit=2)) == 2


async def test_two_workers_never_deliver_one_change_at_once(backend_url: str) -> None:
    running: set[str] = set()
    overlaps: list[str] = []
    calls = Counter[str]()

    @ostinato.hook(on=("completed",))
    async def slow(event: RunStateChange) -> None:
        if event.id in running:
            overlaps.append(event.id)
        running.add(event.id)
        calls[event.id] += 1
        await asyncio.sleep(0.1)
        running.discard(event.id)

    backend = ostinato.connect(backend_url)
    other = backend if backend_url == "memory://" else ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    async with worker(backend, [slow]), worker(other, [slow]):
        handles = [await client.start_workflow(greet, str(i)) for i in range(12)]
        for handle in handles:
            await handle.result(timeout=30)
        await until(lambda: len(calls) == 12)
        await asyncio.sleep(0.3)
    assert overlaps == []
    assert set(calls.values()) == {1}


def test_bad_hooks_are_refused_where_they_are_declared() -> None:
    with pytest.raises(ValueError, match=r"on=.*bogus"):
        ostinato.hook(on=("completed", "bogus"))
    with pytest.raises(ValueError, match="workflows"):
        ostinato.hook(workflows=[""])
    with pytest.raises(TypeError, match="RetryPolicy"):
        ostinato.hook(retry=3)  # type: ignore[arg-type]

    def not_async(event: RunStateChange) -> None: ...

    with pytest.raises(TypeError, match="async def"):
        ostinato.hook()(not_async)  # type: ignore[arg-type]

    async def plain(event: RunStateChange) -> None: ...

    backend = ostinato.connect("memory://")
    with pytest.raises(TypeError, match="decorated with @hook"):
        ostinato.Worker(backend, workflows=[greet], hooks=[plain])
    named = ostinato.hook(name="same")(plain)

    async def plain2(event: RunStateChange) -> None: ...

    with pytest.raises(ValueError, match="two hooks are named 'same'"):
        ostinato.Worker(backend, hooks=[named, ostinato.hook(name="same")(plain2)])
    with pytest.raises(ValueError, match="hook_lease"):
        ostinato.Worker(backend, hooks=[named], hook_lease=0)
