"""End-to-end workflow features on every backend, each run twice: with the sticky cache
(incremental: one step per new event) and with ``workflow_cache_size=0`` (every workflow task
replays the full history). Every finished run's history is also replayed with
``ostinato.testing.replay``."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import ostinato
import pytest
from e2e_support import harness
from ostinato import ActivityError, ApplicationError, RetryPolicy, activity, workflow
from ostinato.testing import replay


@pytest.fixture(params=[1000, 0], ids=["sticky", "replay"])
def cache_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)


# ---- definitions ----------------------------------------------------------------------------


@dataclass
class Order:
    order_id: str
    amount: int
    placed: datetime


@activity.defn
async def double(x: int) -> int:
    return x * 2


@activity.defn
def shout(text: str) -> str:
    return text.upper() + "!"


@activity.defn(name="order.total")
async def order_total(order: Order) -> Order:
    assert isinstance(order, Order) and isinstance(order.placed, datetime)
    return Order(order.order_id, order.amount * 2, order.placed)


@workflow.defn
async def basic(x: int, text: str) -> list[Any]:
    a = await workflow.execute_activity(double, x)
    b = await workflow.execute_activity(shout, text)
    return [a, b]


@workflow.defn(name="typed.orders")
async def typed(order: Order) -> Order:
    return await workflow.execute_activity(order_total, order)


@workflow.defn
async def concurrent(n: int) -> dict[str, Any]:
    results = await asyncio.gather(*(workflow.execute_activity(double, i) for i in range(n)))
    first = workflow.start_activity(double, 100)
    second = workflow.start_activity(double, 200)
    done, _ = await asyncio.wait({asyncio.ensure_future(first)}, timeout=None)
    event = asyncio.Event()

    async def setter() -> str:
        await asyncio.sleep(0.01)
        event.set()
        return "set"

    task = asyncio.create_task(setter())
    await event.wait()
    waited = await asyncio.wait_for(second, timeout=30)
    return {
        "gather": list(results),
        "wait": [f.result() for f in done],
        "task": await task,
        "wait_for": waited,
    }


@workflow.defn
async def sleeper(seconds: float) -> float:
    start = workflow.now()
    await workflow.sleep(seconds)
    await asyncio.sleep(seconds)  # asyncio.sleep is a durable timer too
    await workflow.wait_until(workflow.now() + timedelta(seconds=seconds))
    return (workflow.now() - start).total_seconds()


@workflow.defn
async def signals(expected: int) -> list[str]:
    await workflow.sleep(0.2)  # signals sent meanwhile are kept, in order
    channel = workflow.signal_channel("items", str)
    got = [await channel.receive() for _ in range(expected)]
    try:
        await channel.receive(timeout=0.05)
    except asyncio.TimeoutError:
        got.append("timeout")
    else:
        got.append("no timeout")
    return got


@workflow.defn
async def conditions() -> int:
    state = {"count": 0}

    async def consume() -> None:
        channel = workflow.signal_channel("inc")
        while True:
            state["count"] += await channel.receive()

    consumer = asyncio.create_task(consume())
    await workflow.wait_condition(lambda: state["count"] >= 3)
    consumer.cancel()
    timed_out = False
    try:
        await workflow.wait_condition(lambda: False, timeout=0.05)
    except asyncio.TimeoutError:
        timed_out = True
    return state["count"] if timed_out else -1


SIDE_EFFECT_CALLS: list[int] = []


def _effect() -> int:
    SIDE_EFFECT_CALLS.append(1)
    return 41


@workflow.defn
async def deterministic_values() -> dict[str, Any]:
    value = await workflow.side_effect(_effect)
    before = (workflow.random().random(), str(workflow.uuid4()), workflow.now().isoformat())
    await workflow.execute_activity(double, 1)
    after = (workflow.random().random(), str(workflow.uuid4()))
    info = workflow.info()
    workflow.logger.info("logged once, not on replay")
    return {
        "side_effect": value + 1,
        "before": before,
        "after": after,
        "info": [info.workflow_name, info.attempt, info.history_length > 0],
    }


@workflow.defn
async def with_vars() -> str:
    workflow.set_var("stage", "one")
    workflow.set_var("payload", {"n": 1})
    await workflow.signal_channel("go").receive()
    workflow.set_var("stage", "two")
    return "ok"


ATTEMPTS: dict[str, list[int]] = {}


@activity.defn
def flaky(key: str, fail_times: int) -> int:
    attempt = activity.info().attempt
    ATTEMPTS.setdefault(key, []).append(attempt)
    if attempt <= fail_times:
        raise ConnectionError(f"flaky failure {attempt}")
    return attempt


@activity.defn
def broken(kind: str) -> None:
    if kind == "non_retryable":
        raise ApplicationError("card declined", {"code": 51}, non_retryable=True)
    raise ValueError("always broken")


@workflow.defn
async def retrying(key: str, fail_times: int, max_attempts: int) -> int:
    return await workflow.execute_activity(
        flaky,
        key,
        fail_times,
        retry=RetryPolicy(initial_interval=0.01, max_attempts=max_attempts),
    )


@workflow.defn
async def failing(kind: str) -> str:
    try:
        await workflow.execute_activity(
            broken, kind, retry=RetryPolicy(initial_interval=0.01, max_attempts=2)
        )
    except ActivityError as err:
        cause = err.cause
        assert isinstance(cause, ApplicationError)
        has_traceback = "Traceback" in (cause.remote_traceback or "")
        return f"{err.attempt}|{cause.type}|{cause.message}|{has_traceback}"
    return "no error"


@activity.defn
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@activity.defn
async def silent(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@workflow.defn
async def timeouts(kind: str) -> str:
    try:
        if kind == "start_to_close":
            await workflow.execute_activity(
                slow, 5.0, start_to_close_timeout=0.1, retry=RetryPolicy(max_attempts=1)
            )
        else:
            await workflow.execute_activity(
                silent, 5.0, heartbeat_timeout=0.1, retry=RetryPolicy(max_attempts=1)
            )
    except ActivityError as err:
        assert isinstance(err.cause, ApplicationError)
        return f"{err.cause.type}: {err.cause.message}"
    return "no timeout"


@activity.defn
async def heartbeating(n: int) -> list[Any]:
    seen = activity.info().heartbeat_details
    for i in range(n):
        activity.heartbeat({"step": i})
        await asyncio.sleep(0.02)
    return [activity.info().attempt, seen]


@workflow.defn
async def heartbeats() -> list[Any]:
    return await workflow.execute_activity(heartbeating, 5, heartbeat_timeout=1.0)


@workflow.defn
async def raises() -> None:
    await workflow.execute_activity(double, 1)
    raise ValueError("workflow logic failed")


# ---- tests ------------------------------------------------------------------------------------


async def test_activities_async_and_sync(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        assert await h.run(basic, 21, "hi", activities=[double, shout]) == [42, "HI!"]


async def test_dataclass_arguments_and_results_are_typed(backend_url: str, cache_size: int) -> None:
    placed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    async with harness(backend_url, cache_size) as h:
        result = await h.run(typed, Order("o-1", 21, placed), activities=[order_total])
    assert result == Order("o-1", 42, placed)


async def test_asyncio_primitives(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await h.run(concurrent, 5, activities=[double])
    assert result == {"gather": [0, 2, 4, 6, 8], "wait": [200], "task": "set", "wait_for": 400}


async def test_durable_timers(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        started = time.monotonic()
        elapsed = await h.run(sleeper, 0.05)
        assert time.monotonic() - started >= 0.15
    assert elapsed >= 0.15


async def test_signals_are_buffered_in_order(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([signals]):
        handle = await h.client.start_workflow(signals, 3)
        for item in ("a", "b", "c"):
            await handle.signal("items", item)
        assert await handle.result(timeout=20) == ["a", "b", "c", "timeout"]
        await h.check_replay(signals, handle)


async def test_wait_condition(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([conditions]):
        handle = await h.client.start_workflow(conditions)
        for _ in range(3):
            await handle.signal("inc", 1)
        assert await handle.result(timeout=20) == 3
        await h.check_replay(conditions, handle)


async def test_side_effect_random_uuid_now_are_stable(backend_url: str, cache_size: int) -> None:
    SIDE_EFFECT_CALLS.clear()
    async with harness(backend_url, cache_size) as h:
        result = await h.run(deterministic_values, activities=[double])
    assert result["side_effect"] == 42
    assert len(SIDE_EFFECT_CALLS) == 1  # recorded once, replayed from history afterwards
    assert result["before"] != result["after"]
    assert result["info"] == ["deterministic_values", 1, True]


async def test_runtime_variables(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        async with h.worker([with_vars]):
            handle = await h.client.start_workflow(with_vars, id="vars-1")
            for _ in range(200):
                if (await h.client.get_vars("vars-1")).get("stage") == "one":
                    break
                await asyncio.sleep(0.01)
            assert await h.client.get_vars("vars-1") == {"stage": "one", "payload": {"n": 1}}
            await handle.signal("go")
            assert await handle.result(timeout=20) == "ok"
        assert (await h.client.get_vars("vars-1"))["stage"] == "two"


async def test_activity_retries_with_backoff(backend_url: str, cache_size: int) -> None:
    key = f"retry-{backend_url}-{cache_size}"
    ATTEMPTS.pop(key, None)
    async with harness(backend_url, cache_size) as h, h.worker([retrying], [flaky]):
        handle = await h.client.start_workflow(retrying, key, 2, 5)
        assert await handle.result(timeout=20) == 3
        history = await handle.history()
    assert ATTEMPTS[key] == [1, 2, 3]
    completed = [e for e in history if e["kind"] == "activity_completed"]
    assert [e["attempt"] for e in completed] == [3]  # retries are not history commands
    assert sum(e["kind"] == "activity_scheduled" for e in history) == 1


async def test_activity_failure_reaches_workflow(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await h.run(failing, "retryable", activities=[broken])
        assert result == "2|ValueError|always broken|True"
        result = await h.run(failing, "non_retryable", activities=[broken])
        assert result == "1|ApplicationError|card declined|True"


async def test_activity_timeouts(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await h.run(timeouts, "start_to_close", activities=[slow])
        assert result.startswith("TimeoutError: ") and "timed out" in result
        result = await h.run(timeouts, "heartbeat", activities=[silent])
        assert result.startswith("TimeoutError: ") and "heartbeat" in result


async def test_heartbeat_details(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        assert await h.run(heartbeats, activities=[heartbeating]) == [1, None]


async def test_workflow_exception_fails_the_run(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        with pytest.raises(ostinato.WorkflowFailedError) as info:
            await h.run(raises, activities=[double])
    assert "workflow logic failed" in str(info.value)
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.type == "ValueError"


async def test_sync_client(backend_url: str, tmp_path: Any) -> None:
    if backend_url == "memory://":
        pytest.skip("the memory backend lives in one event loop; SyncClient owns its own")
    async with harness(backend_url, 1000) as h, h.worker([basic], [double, shout]):
        sync = ostinato.SyncClient(backend_url)
        try:
            handle = await asyncio.to_thread(sync.start_workflow, basic, 1, "x", id="sync-1")
            assert await asyncio.to_thread(handle.result, 20) == [2, "X!"]
            assert (await asyncio.to_thread(handle.describe)).status == "completed"
        finally:
            await asyncio.to_thread(sync.close)


def test_replay_detects_changed_code() -> None:
    history = [
        {"seq": 1, "kind": "task_started", "time": 1_000_000},
        {
            "seq": 2,
            "kind": "workflow_started",
            "name": "basic",
            "input": [1, "x"],
            "info": {"run_id": "0" * 32},
        },
        {
            "seq": 3,
            "kind": "activity_scheduled",
            "id": 1,
            "name": "shout",
            "input": ["x"],
            "options": {},
        },
    ]
    with pytest.raises(ostinato.NonDeterminismError) as info:
        replay(basic, history)
    assert info.value.seq == 3
    assert "shout" in str(info.value) and "double" in str(info.value)


@workflow.defn
async def chatty(n: int) -> None:
    for i in range(n):
        workflow.logger.info("step %d done", i)
        await workflow.execute_activity(double, i)


async def test_logger_is_silent_while_replaying(
    backend_url: str, cache_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ostinato.workflow"):
        async with harness(backend_url, cache_size) as h:
            await h.run(chatty, 3, activities=[double])
    steps = [r.getMessage() for r in caplog.records if "done" in r.getMessage()]
    assert len(steps) == 3 and all("chatty" in s for s in steps)  # once each, with the run
