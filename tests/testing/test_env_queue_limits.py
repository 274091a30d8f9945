"""Queue limits in ``ostinato.testing.WorkflowEnvironment``: ``env.client.set_queue_limits``
is stored by the environment's backend, and a rate limit holds on the virtual clock (the
clock skips to when its window frees a slot, so a minute of rate-limited calls takes
milliseconds)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import ostinato
import pytest
from ostinato import activity, workflow
from ostinato.testing import WorkflowEnvironment

STARTS: list[float] = []
IN_FLIGHT: list[int] = [0, 0]  # now, most seen


@activity.defn
async def charge(i: int) -> int:
    STARTS.append(ENV[0].clock())
    IN_FLIGHT[0] += 1
    IN_FLIGHT[1] = max(IN_FLIGHT)
    await asyncio.sleep(0.01)
    IN_FLIGHT[0] -= 1
    return i


ENV: list[WorkflowEnvironment] = []


@workflow.defn
async def charge_all(n: int) -> list[int]:
    calls = [
        workflow.execute_activity(
            charge, i, queue="payments", start_to_close_timeout=timedelta(seconds=30)
        )
        for i in range(n)
    ]
    return list(await asyncio.gather(*calls))


@pytest.fixture(params=["memory", "sqlite"])
def env_backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/env.db"


async def run_limited(backend: str, **limits: object) -> tuple[list[float], float]:
    STARTS.clear()
    IN_FLIGHT[:] = [0, 0]
    async with WorkflowEnvironment(
        workflows=[charge_all],
        activities=[charge],
        queues=("default", "payments"),
        backend=backend,
    ) as env:
        ENV[:] = [env]
        await env.client.set_queue_limits("payments", **limits)  # type: ignore[arg-type]
        assert await env.client.get_queue_limits("payments") is not None
        began = env.clock()
        assert await env.execute_workflow(charge_all, 6) == list(range(6))
        return [round(s - began, 3) for s in STARTS], env.clock() - began


async def test_a_rate_limit_holds_on_the_virtual_clock(env_backend: str) -> None:
    real = time.monotonic()
    starts, elapsed = await run_limited(env_backend, rate_limit=(2, timedelta(seconds=10)))
    # Two per sliding window of 10 s: the clock skipped to each window's end.
    assert sorted(starts) == [0, 0, 10, 10, 20, 20]
    assert 20 <= elapsed < 21
    assert time.monotonic() - real < 20  # virtual seconds, not real ones


async def test_max_concurrent_holds_in_the_environment(env_backend: str) -> None:
    starts, elapsed = await run_limited(env_backend, max_concurrent=1)
    assert IN_FLIGHT[1] == 1 and len(starts) == 6
    assert elapsed < 1  # nothing to wait for on the clock: slots free as calls end


async def test_limits_can_be_cleared_in_the_environment() -> None:
    async with WorkflowEnvironment(workflows=[charge_all], activities=[charge]) as env:
        await env.client.set_queue_limits("payments", max_concurrent=2)
        await env.client.clear_queue_limits("payments")
        assert await env.client.get_queue_limits("payments") is None


def test_sync_client_sets_reads_and_clears_queue_limits(tmp_path: object) -> None:
    with ostinato.SyncClient(f"sqlite:///{tmp_path}/sync.db") as client:
        client.set_queue_limits("payments", max_concurrent=5, rate_limit=(50, 1))
        assert client.get_queue_limits("payments") == ostinato.QueueLimits(
            max_concurrent=5, rate_count=50, rate_period=1.0
        )
        client.set_queue_limits("payments", max_concurrent_per_key=1)  # replaces them
        limits = client.get_queue_limits("payments")
        assert limits is not None and limits.max_concurrent is None
        assert limits.max_concurrent_per_key == 1
        try:
            client.set_queue_limits("payments", max_concurrent=0)
        except ValueError as exc:
            assert "max_concurrent" in str(exc)
        else:
            raise AssertionError("a zero limit was accepted")
        client.clear_queue_limits("payments")
        assert client.get_queue_limits("payments") is None
