"""Workflows whose runs the view and CLI tests look at: together they touch every kind of
timeline item (activities with retries and failures, timers, signals, children, side effects,
patches, external signals and cancels, continue-as-new, cancel and terminate)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import ostinato
from ostinato import ApplicationError, RetryPolicy, activity, workflow

FAST_RETRY = RetryPolicy(max_attempts=5, initial_interval=0.01, backoff_coefficient=1.0)
_calls: dict[str, int] = {}


@activity.defn(name="view.flaky")
async def flaky(key: str) -> str:
    """Fails twice per key, then succeeds: the third attempt finishes it."""
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] < 3:
        raise ConnectionError(f"try {_calls[key]} of {key} refused")
    return f"charged {key}"


@activity.defn(name="view.declined")
async def declined(card: str) -> None:
    raise ApplicationError(f"card {card} declined", non_retryable=True)


@activity.defn(name="view.always_down")
async def always_down() -> None:
    raise ConnectionError("mail server down")


@workflow.defn(name="view.child")
async def child(x: int) -> int:
    return x + 1


@workflow.defn(name="view.order")
async def order(key: str, rounds: int) -> dict[str, Any]:
    """Every kind of step once; continues as new until ``rounds`` is 1."""
    workflow.set_var("stage", "charging")
    receipt = await workflow.execute_activity(flaky, key, retry=FAST_RETRY)
    with contextlib.suppress(ostinato.ActivityError):
        await workflow.execute_activity(declined, "4242")
    await workflow.sleep(0.05)
    lucky = await workflow.side_effect(lambda: 7)
    new_path = workflow.patched("view-v2")
    grown = await workflow.execute_child(child, lucky, id=f"{key}-child-{rounds}")
    workflow.set_var("stage", "waiting")
    approval = await workflow.signal_channel("approve").receive()
    if rounds > 1:
        workflow.continue_as_new(f"{key}+", rounds - 1)
    return {"receipt": receipt, "grown": grown, "approval": approval, "new_path": new_path}


@workflow.defn(name="view.waiter")
async def waiter() -> None:
    await workflow.signal_channel("never").receive()


@workflow.defn(name="view.messenger")
async def messenger(target: str) -> None:
    await workflow.signal_external(target, "hello", {"from": "messenger"})
    await workflow.cancel_external(target, "no longer needed")


@workflow.defn(name="view.stuck")
async def stuck() -> None:
    slow = RetryPolicy(max_attempts=100, initial_interval=3600)
    await workflow.execute_activity(always_down, retry=slow)


WORKFLOWS = [order, child, waiter, messenger, stuck]
ACTIVITIES = [flaky, declined, always_down]


@contextlib.asynccontextmanager
async def worker(backend: ostinato.Backend) -> AsyncIterator[ostinato.Worker]:
    async with ostinato.Worker(
        backend, workflows=WORKFLOWS, activities=ACTIVITIES, poll_interval=0.02
    ) as w:
        yield w


async def eventually_status(handle: Any, status: str, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while (await handle.describe()).status != status:
            await asyncio.sleep(0.02)


async def run_order(client: ostinato.Client, key: str, rounds: int = 2) -> Any:
    """Run ``view.order`` to the end (approving each round) and return its handle."""
    handle = await client.start_workflow(order, key, rounds, id=key)
    for round in range(rounds):
        async with asyncio.timeout(20):
            while (await client.get_vars(key)).get("stage") != "waiting":
                await asyncio.sleep(0.02)
        run_id = (await handle.describe()).run_id
        await handle.signal("approve", "<b>yes</b>; #1")
        if round < rounds - 1:  # wait for the next run
            async with asyncio.timeout(20):
                while (await handle.describe()).run_id == run_id:
                    await asyncio.sleep(0.02)
    await handle.result(timeout=20)
    return handle
