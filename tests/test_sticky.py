"""Sticky runs end to end: a run's next task goes to the worker that has it cached, a worker
shutting down hands its runs over at once, and a worker that vanished is waited for only
``sticky_wait`` seconds."""

from __future__ import annotations

import asyncio
import time

import ostinato
import pytest
from e2e_support import harness
from ostinato import activity, workflow


@activity.defn
async def bump(i: int) -> int:
    await asyncio.sleep(0)
    return i + 1


@workflow.defn
async def five_steps(i: int) -> int:
    for _ in range(5):
        i = await workflow.execute_activity(bump, i)
    return i


@workflow.defn
async def wait_for_go() -> str:
    return str(await workflow.signal_channel("go", str).receive())


async def test_tasks_stay_on_the_worker_that_has_the_run_cached(backend_url: str) -> None:
    async with (
        harness(backend_url, 10_000) as h,
        h.worker([five_steps], [bump], sticky_wait=60, identity="a") as a,
        h.worker([five_steps], [bump], sticky_wait=60, identity="b") as b,
    ):
        handles = [await h.client.start_workflow(five_steps, i) for i in range(30)]
        assert [await handle.result(timeout=30) for handle in handles] == list(range(5, 35))
    # 30 runs x 6 tasks; each run's later tasks found it cached: nothing was replayed.
    assert a.stats["workflow_tasks"] + b.stats["workflow_tasks"] == 180
    assert a.stats["replays"] + b.stats["replays"] == 0


async def test_shutdown_hands_cached_runs_over_at_once(backend_url: str) -> None:
    async with harness(backend_url, 10_000) as h:
        async with h.worker([wait_for_go], identity="leaving") as leaving:
            handle = await h.client.start_workflow(wait_for_go)
            while leaving.stats["workflow_tasks"] < 1 or leaving.busy:
                await asyncio.sleep(0.01)
        # Had the leaving worker kept the run, this one would wait a minute for it.
        async with h.worker([wait_for_go], sticky_wait=60, identity="staying") as staying:
            await handle.signal("go", "now")
            assert await handle.result(timeout=10) == "now"
        assert staying.stats["replays"] == 1


@pytest.mark.parametrize("backend_url", ["sqlite", "postgres"], indirect=True)
async def test_a_vanished_worker_is_waited_for_sticky_wait_only(
    backend_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The first worker loses its database before it can hand its run over, as a worker that
    # is killed or cut off would: the run stays sticky to it.
    gone_backend = ostinato.connect(backend_url)
    async with harness(backend_url, 10_000) as h:
        gone = ostinato.Worker(gone_backend, workflows=[wait_for_go], identity="gone")
        async with gone:
            handle = await h.client.start_workflow(wait_for_go)
            while gone.stats["workflow_tasks"] < 1 or gone.busy:
                await asyncio.sleep(0.01)
            await gone_backend.close()
        assert "could not release this worker's cached runs" in caplog.text

        async with h.worker([wait_for_go], sticky_wait=0.5, identity="survivor") as survivor:
            # Measured before the call: the signal is stamped during it, and the sticky wait
            # counts from that stamp, so the wait seen from here is at least sticky_wait.
            signalled = time.monotonic()
            await handle.signal("go", "late")
            assert await handle.result(timeout=10) == "late"
            waited = time.monotonic() - signalled
        assert 0.5 <= waited < 5
        assert survivor.stats["replays"] == 1


def test_sticky_wait_and_identity_are_checked() -> None:
    backend = ostinato.connect("memory://")
    with pytest.raises(ValueError, match="sticky_wait"):
        ostinato.Worker(backend, workflows=[wait_for_go], sticky_wait=-1)
    with pytest.raises(ValueError, match="sticky_wait"):
        ostinato.Worker(backend, workflows=[wait_for_go], sticky_wait=float("inf"))
    with pytest.raises(ValueError, match="identity"):
        ostinato.Worker(backend, workflows=[wait_for_go], identity="a\x00b")
