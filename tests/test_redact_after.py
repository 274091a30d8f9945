"""``Worker(redact_after=...)``: closed runs older than that are redacted by one worker's
sweep at a time, in batches, once each (runs already redacted are not listed again), beside
``retention``; and the retention sweep's purge of old given-up hook deliveries. The sweeps
run on a virtual clock here, and with real workers on every backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import ostinato
import pytest
from ostinato import _retention, workflow
from ostinato._backends._hook_store import HookStore
from ostinato._backends._retention_store import RetentionStore
from ostinato._retention import RedactionSweeper, RetentionSweeper
from ostinato.testing.conformance import FakeClock, run_to_close, start


@workflow.defn
async def echo(value: str) -> str:
    return value


@workflow.defn
async def waits() -> str:
    return await workflow.signal_channel("go", str).receive()


def counting(backend: Any, method: str) -> list[tuple[Any, ...]]:
    """Record the calls of ``backend.method`` (still calling it)."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(backend, method)

    async def counted(*args: Any) -> Any:
        calls.append(args)
        return await original(*args)

    setattr(backend, method, counted)
    return calls


async def test_the_redaction_sweep_on_a_virtual_clock(backend_url: str) -> None:
    clock = FakeClock()
    backend = ostinato.connect(backend_url, clock=clock)
    try:
        await backend.open()
        for i in range(5):
            await start(backend, f"old-{i}")
            await run_to_close(backend, f"old-{i}", result=b'"secret"')
        await start(backend, "open")
        clock.advance(100)
        await start(backend, "young")
        await run_to_close(backend, "young")
        listed = counting(backend, "closed_runs_to_redact")
        redacted = counting(backend, "redact_run")
        sweeper = RedactionSweeper(backend, "me", redact_after=50, batch=2)
        other = RedactionSweeper(backend, "other", redact_after=50, batch=2)
        assert await sweeper.sweep_once() == 5
        assert len(listed) == 3  # batches of 2: 2, 2, 1 (short: nothing left)
        assert sorted(call[0] for call in redacted) == [f"old-{i}" for i in range(5)]
        assert await other.sweep_once() is None  # the lease is held between sweeps
        for i in range(5):
            info = await backend.describe(f"old-{i}")
            assert info.result is None and not info.status.is_open
        assert (await backend.describe("young")).result == b'"done"'
        # Again: nothing is redacted twice (already-redacted runs are not even listed).
        listed.clear()
        assert await sweeper.sweep_once() == 0
        assert len(listed) == 1 and len(redacted) == 5
        clock.advance(100)  # "young" is old enough now; "open" never is
        assert await sweeper.sweep_once() == 1
        assert redacted[-1][0] == "young"
        # A run deleted between the listing and its redaction is simply skipped.
        await sweeper.release()
        await start(backend, "gone")
        await run_to_close(backend, "gone")
        clock.advance(100)
        original = backend.closed_runs_to_redact  # type: ignore[attr-defined]

        async def then_delete(*args: Any) -> Any:
            found = await original(*args)
            if found:
                await backend.delete("gone")
            return found

        backend.closed_runs_to_redact = then_delete  # type: ignore[attr-defined]
        assert await other.sweep_once() == 1  # counted: nothing left to redact of it
    finally:
        await backend.close()


async def test_the_retention_sweep_purges_old_given_up_hook_deliveries(backend_url: str) -> None:
    clock = FakeClock()
    backend = ostinato.connect(backend_url, clock=clock)
    try:
        await backend.open()
        assert isinstance(backend, HookStore)
        await backend.subscribe_hooks(["default"])
        # A long-running run's pause, given up on: its run is never deleted by retention.
        await start(backend, "long")
        assert await backend.pause("long", "why")
        [pair] = await backend.claim_hook_deliveries(["default"], ["h"], 30, 10)
        assert await backend.hook_failed(pair, "boom", None)
        clock.advance(10)
        sweeper = RetentionSweeper(backend, "me", retention=50)
        assert await sweeper.sweep_once() == 0
        assert len(await backend.list_hook_failures()) == 1  # not old enough
        clock.advance(50)
        assert await sweeper.sweep_once() == 0  # no workflow deleted ...
        assert await backend.list_hook_failures() == []  # ... but the give-up is gone
        assert (await backend.describe("long")).status.is_open
    finally:
        await backend.close()


async def until(check: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_redact_after_with_retention_on_real_workers(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retention, "INTERVAL", 0.1)
    monkeypatch.setattr(_retention, "REDACT_BATCH", 3)
    for bad, error in ((0.5, ValueError), (-1, ValueError), ("1d", TypeError)):
        with pytest.raises(error, match="redact_after"):
            ostinato.Worker(ostinato.connect("memory://"), workflows=[echo], redact_after=bad)
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        assert isinstance(backend, RetentionStore)
        async with ostinato.Worker(backend, workflows=[echo, waits], poll_interval=0.05):
            handles = [await client.start_workflow(echo, f"pii-{i}", id=f"r-{i}") for i in range(7)]
            for handle in handles:
                await handle.result(timeout=30)
            running = await client.start_workflow(waits, id="running")
            while (await running.describe()).history_length == 0:
                await asyncio.sleep(0.02)
        redacted = counting(backend, "redact_run")
        started = time.monotonic()
        worker = ostinato.Worker(
            backend,
            workflows=[echo, waits],
            poll_interval=0.05,
            redact_after=timedelta(seconds=1),
            retention=timedelta(seconds=4),
        )
        async with worker:

            async def all_redacted() -> bool:
                return all([(await h.describe()).redacted for h in handles])

            await until(all_redacted)
            assert time.monotonic() - started >= 0.5  # not before they were a second old
            page, _ = await client.list_workflows(limit=100)
            assert len(page) == 8  # redacted, not deleted (yet)
            assert not (await running.describe()).redacted
            assert await client.get_handle("r-0").result(timeout=5) is None  # scrubbed

            async def all_deleted() -> bool:
                page, _ = await client.list_workflows(limit=100)
                return [d.instance_id for d in page] == ["running"]

            await until(all_deleted)
        assert sorted(call[0] for call in redacted) == sorted(h.id for h in handles)  # once
        assert worker._redactor is not None and worker._redactor.deleted == 7
    finally:
        await backend.close()
