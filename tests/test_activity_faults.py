"""Activities under faults (issue 10): retry policy and duration validation, heartbeat details
that survive to the next attempt, ``activity.info().workflow_name``, poison activity tasks and
``ApplicationError(next_retry_delay=...)``.

Workflow tests run on each backend, with the sticky cache and with ``workflow_cache_size=0``
(every task replays the full history), and replay every finished history.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import timedelta
from typing import Any

import orjson
import ostinato
import pytest
from e2e_support import Harness, harness
from ostinato import ActivityError, ApplicationError, RetryPolicy, activity, workflow
from ostinato._failure import decode_failure, encode_failure
from ostinato.backends import NewActivity, NewRun, WorkflowCommit


@pytest.fixture(params=[1000, 0], ids=["sticky", "replay"])
def cache_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)


FAST = RetryPolicy(initial_interval=0.01, max_attempts=3)

# ---- item 10 / 19: RetryPolicy and durations ----------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"backoff_coefficient": math.nan}, "backoff_coefficient"),
        ({"backoff_coefficient": math.inf}, "backoff_coefficient"),
        ({"backoff_coefficient": "2"}, "backoff_coefficient"),
        ({"initial_interval": math.inf}, "initial_interval"),
        ({"initial_interval": timedelta.max}, "initial_interval"),
        ({"initial_interval": 0}, "initial_interval"),
        ({"initial_interval": None}, "initial_interval"),
        ({"max_interval": math.inf}, "max_interval"),
        ({"max_interval": math.nan}, "max_interval"),
        ({"initial_interval": 2, "max_interval": 1}, "max_interval"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"non_retryable_error_types": "ValueError"}, "non_retryable_error_types"),
        ({"non_retryable_error_types": [ValueError]}, "non_retryable_error_types"),
    ],
)
def test_retry_policy_rejects_bad_values_naming_the_field(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=f"RetryPolicy.{field}"):
        RetryPolicy(**options)


def test_retry_policy_keeps_good_values_through_json() -> None:
    policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=250),
        backoff_coefficient=1.5,
        max_interval=10,
        max_attempts=0,
        non_retryable_error_types=["KeyError"],
    )
    again = RetryPolicy.from_json(orjson.loads(orjson.dumps(policy.to_json())))
    assert again.to_json() == policy.to_json()
    assert [again.backoff(n) for n in (1, 2, 3)] == [0.25, 0.375, 0.5625]
    assert again.backoff(10_000) == 10  # huge attempt numbers hit the cap, no OverflowError
    # Policies stored by earlier versions (zero interval, cap below it) are still read.
    legacy = RetryPolicy.from_json({"initial_interval": 0, "max_interval": 0, "max_attempts": 3})
    assert (legacy.backoff(1), legacy.max_attempts) == (0, 3)
    old_cap = RetryPolicy.from_json({"initial_interval": 5, "max_interval": 1})
    assert old_cap.backoff(1) == 1
    with pytest.raises(ValueError, match="backoff_coefficient"):
        RetryPolicy.from_json({"backoff_coefficient": float("nan")})


@workflow.defn(name="wk.bad_sleeps")
async def bad_sleeps() -> list[str]:
    errors = []
    for value in (math.inf, timedelta.max, 10**400, math.nan, -1):
        try:
            await workflow.sleep(value)
        except (TypeError, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    await workflow.sleep(0.01)  # a good one still works after the bad ones
    return errors


async def test_sleep_rejects_unrepresentable_durations(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        errors = await h.run(bad_sleeps)
    assert len(errors) == 5, errors
    for error in errors:
        assert error.startswith("ValueError: workflow.sleep() duration must be"), error


# ---- item 22: next_retry_delay -------------------------------------------------------------


def test_next_retry_delay_survives_the_failure_payload() -> None:
    err = ApplicationError("later", 1, type="RateLimited", next_retry_delay=timedelta(seconds=90))
    assert err.next_retry_delay == timedelta(seconds=90)
    again = decode_failure(encode_failure(err))
    assert isinstance(again, ApplicationError)
    assert (again.type, again.next_retry_delay, list(again.details)) == (
        "RateLimited",
        timedelta(seconds=90),
        [1],
    )
    assert ApplicationError("x", next_retry_delay=2.5).next_retry_delay == timedelta(seconds=2.5)
    assert decode_failure(encode_failure(ApplicationError("x"))).next_retry_delay is None  # type: ignore[attr-defined]
    for bad in (-1, math.inf, "soon"):
        with pytest.raises((TypeError, ValueError), match="next_retry_delay"):
            ApplicationError("x", next_retry_delay=bad)  # type: ignore[arg-type]


@activity.defn(name="wk.rate_limited")
async def rate_limited() -> int:
    attempt = activity.info().attempt
    if attempt == 1:
        # The policy would wait an hour: the activity knows better.
        raise ApplicationError("rate limited", type="RateLimited", next_retry_delay=0.01)
    return attempt


@workflow.defn(name="wk.retry_soon")
async def retry_soon() -> int:
    return await workflow.execute_activity(
        rate_limited, retry=RetryPolicy(initial_interval=3600, max_attempts=3)
    )


async def test_next_retry_delay_overrides_the_policy(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        assert await h.run(retry_soon, activities=[rate_limited]) == 2


@activity.defn(name="wk.slow_down")
async def slow_down() -> None:
    raise ApplicationError("come back in a day", next_retry_delay=timedelta(days=1))


@workflow.defn(name="wk.retry_later")
async def retry_later() -> None:
    await workflow.execute_activity(slow_down, retry=FAST)


async def test_next_retry_delay_can_lengthen_the_wait(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h, h.worker([retry_later], [slow_down]):
        handle = await h.client.start_workflow(retry_later)
        while True:
            desc = await handle.describe()
            pending = desc.pending_activities
            if pending and pending[0].state == "retrying":
                break
            await asyncio.sleep(0.02)
        assert pending[0].next_attempt_at is not None
        wait = pending[0].next_attempt_at - desc.updated_at
        assert wait > timedelta(hours=23), wait


# ---- item 6: ActivityInfo.workflow_name ----------------------------------------------------


@activity.defn(name="wk.who_called")
async def who_called() -> list[Any]:
    info = activity.info()
    return [info.workflow_name, info.instance_id]


@workflow.defn(name="wk.info_caller")
async def info_caller() -> list[Any]:
    return await workflow.execute_activity(who_called)


async def test_activity_info_names_the_workflow(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        assert await h.run(info_caller, activities=[who_called], id="caller-1") == [
            "wk.info_caller",
            "caller-1",
        ]


# ---- item 11: heartbeat details ------------------------------------------------------------


@activity.defn(name="wk.heartbeat_then_fail")
async def heartbeat_then_fail() -> Any:
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat("d1")
        raise RuntimeError("the first attempt fails right after its heartbeat")
    return info.heartbeat_details


@activity.defn(name="wk.heartbeat_ticks_then_fail")
async def heartbeat_ticks_then_fail() -> Any:
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat("d1")
        # Lease ticks (activity_lease=0.3: every 0.1 s) flush "d1", then tick on with no
        # new details.
        for _ in range(8):
            await asyncio.sleep(0.05)
            activity.heartbeat()
        raise RuntimeError("the first attempt fails after some bare heartbeats")
    return info.heartbeat_details


@workflow.defn(name="wk.heartbeat_details")
async def heartbeat_details(name: str) -> Any:
    return await workflow.execute_activity(name, retry=FAST)


@pytest.mark.parametrize("name", ["wk.heartbeat_then_fail", "wk.heartbeat_ticks_then_fail"])
async def test_heartbeat_details_reach_the_next_attempt(
    backend_url: str, cache_size: int, name: str
) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await h.run(
            heartbeat_details,
            name,
            activities=[heartbeat_then_fail, heartbeat_ticks_then_fail],
            activity_lease=0.3,
        )
    assert result == "d1"


@activity.defn(name="wk.heartbeat_then_hang")
async def heartbeat_then_hang() -> None:
    activity.heartbeat({"done": 3})
    await asyncio.sleep(60)


@workflow.defn(name="wk.heartbeat_timeout")
async def heartbeat_timeout() -> list[Any]:
    try:
        await workflow.execute_activity(
            heartbeat_then_hang, heartbeat_timeout=0.3, retry=RetryPolicy(max_attempts=1)
        )
    except ActivityError as exc:
        cause = exc.cause
        assert isinstance(cause, ApplicationError)
        return [cause.type, list(cause.details)]
    return []


async def test_heartbeat_timeout_failure_carries_the_last_details(
    backend_url: str, cache_size: int
) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await h.run(heartbeat_timeout, activities=[heartbeat_then_hang])
    assert result == ["TimeoutError", [{"done": 3}]]


@activity.defn(name="wk.heartbeat_not_json")
async def heartbeat_not_json() -> list[Any]:
    try:
        activity.heartbeat(object())
    except ostinato.PayloadError as exc:
        error = str(exc)
    # Longer than the lease (activity_lease=0.3): the lease must keep being extended.
    for _ in range(20):
        await asyncio.sleep(0.05)
        activity.heartbeat()
    return [activity.info().attempt, error]


@workflow.defn(name="wk.heartbeat_not_json_wf")
async def heartbeat_not_json_wf() -> list[Any]:
    return await workflow.execute_activity(heartbeat_not_json, retry=FAST)


async def test_heartbeat_details_that_are_not_json_fail_at_the_call(
    backend_url: str, cache_size: int
) -> None:
    async with harness(backend_url, cache_size) as h:
        attempt, error = await h.run(
            heartbeat_not_json_wf, activities=[heartbeat_not_json], activity_lease=0.3
        )
    assert attempt == 1
    assert error.startswith("cannot serialize heartbeat details")


async def test_backend_keeps_details_across_bare_heartbeats(backend_url: str) -> None:
    """The storage contract: heartbeat_activity(details=None) keeps the stored details."""
    backend = ostinato.connect(backend_url)
    await backend.open()
    try:
        await backend.create_run(
            NewRun("hb-1", "r" * 32, "wf", "default", b'{"kind":"workflow_started"}')
        )
        [wtask] = await backend.claim_workflow_tasks(["default"], 30, 1)
        await backend.commit_workflow_task(
            wtask,
            WorkflowCommit(
                new_events=[b'{"seq":1,"kind":"task_started"}'],
                consumed_inbox=[item.id for item in wtask.inbox],
                activities=[NewActivity(1, "act", "default", b"[]", b"{}")],
            ),
        )
        [task] = await backend.claim_activity_tasks(["default"], 30, 1)
        assert task.workflow_name == "wf"
        await backend.heartbeat_activity(task, b'"d1"', 30)
        await backend.heartbeat_activity(task, None, 30)
        await backend.retry_activity(task, 0.0, b'{"type":"E","message":"m"}')
        [again] = await backend.claim_activity_tasks(["default"], 30, 1)
        assert (again.attempt, again.heartbeat_details) == (2, b'"d1"')
    finally:
        await backend.close()


# ---- item 15: poison activity tasks --------------------------------------------------------


@activity.defn(name="wk.plain")
async def plain() -> str:
    return "ran"


@workflow.defn(name="wk.poisoned")
async def poisoned() -> str:
    try:
        return await workflow.execute_activity(plain, start_to_close_timeout=10)
    except ActivityError as exc:
        assert isinstance(exc.cause, ApplicationError)
        return f"{exc.retry_state} {exc.cause.type}: {exc.cause}"


def tamper_activity_options(h: Harness, options: bytes) -> None:
    """Overwrite the stored options of every activity task, as a broken tool or a foreign
    version writing to the store would."""
    if h.url.startswith("memory"):
        for task in h.backend._activities.values():  # type: ignore[attr-defined]
            task.options = options
    elif h.url.startswith("sqlite"):
        with sqlite3.connect(h.url[len("sqlite:///") :]) as db:
            db.execute("UPDATE activity_tasks SET options = ?", (options,))
    else:
        import psycopg

        with psycopg.connect(h.url, autocommit=True) as conn:
            conn.execute("UPDATE ostinato.activity_tasks SET options = %s", (options,))


@pytest.mark.parametrize(
    "options",
    [b"\xffnot json", b"[1, 2]", b'{"retry": {"backoff_coefficient": 0.5}}'],
    ids=["not-json", "not-an-object", "bad-retry"],
)
async def test_poison_activity_task_fails_the_activity(backend_url: str, options: bytes) -> None:
    async with harness(backend_url, 1000) as h:
        async with h.worker([poisoned]):  # no activity worker yet: the task waits
            handle = await h.client.start_workflow(poisoned)
            while not (await handle.describe()).pending_activities:
                await asyncio.sleep(0.02)
        tamper_activity_options(h, options)
        async with h.worker([poisoned], [plain]):
            result = await handle.result(timeout=20)
        await h.check_replay(poisoned, handle)
    assert result.startswith("non_retryable ActivityOptionsError: activity 'wk.plain' cannot run")
