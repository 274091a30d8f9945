"""WorkflowEnvironment: the skipping virtual clock, env.sleep, env.at, any backend."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ostinato
import pytest
from ostinato import RetryPolicy, activity, workflow
from ostinato.testing import VirtualClock, WorkflowEnvironment

DAY = timedelta(days=1)
START = datetime(2030, 1, 1, tzinfo=timezone.utc)


@activity.defn
async def add_one(x: int) -> int:
    return x + 1


@activity.defn
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "activity"


_flaky_calls: list[int] = []


@activity.defn
async def flaky(fails: int) -> int:
    attempt = activity.info().attempt
    _flaky_calls.append(attempt)
    if attempt <= fails:
        raise ConnectionError(f"attempt {attempt} failed")
    return attempt


@workflow.defn
async def monthly(months: int) -> list[str]:
    seen = []
    total = 0
    for _ in range(months):
        await workflow.sleep(timedelta(days=30))
        total = await workflow.execute_activity(add_one, total)
        seen.append(workflow.now().isoformat())
    assert total == months
    return seen


@workflow.defn
async def wait_for_approval(timeout_days: float) -> list[str]:
    approvals = workflow.signal_channel("approve", bool)
    try:
        value = await approvals.receive(timeout=timeout_days * 86400)
        outcome = "approved" if value else "rejected"
    except asyncio.TimeoutError:
        outcome = "timed out"
    return [outcome, workflow.now().isoformat()]


@workflow.defn
async def sleeper(days: float) -> str:
    workflow.set_var("phase", "sleeping")
    await workflow.sleep(timedelta(days=days))
    workflow.set_var("phase", "awake")
    return workflow.now().isoformat()


@workflow.defn
async def race_activity_and_timer() -> str:
    act = asyncio.ensure_future(workflow.execute_activity(slow, 0.2))
    timer = asyncio.ensure_future(workflow.sleep(DAY))
    done, _ = await asyncio.wait({act, timer}, return_when=asyncio.FIRST_COMPLETED)
    return "activity" if act in done else "timer"


@workflow.defn
async def retrying(fails: int) -> list[object]:
    attempt = await workflow.execute_activity(
        flaky,
        fails,
        retry=RetryPolicy(initial_interval=timedelta(hours=1), max_interval=None, max_attempts=10),
    )
    return [attempt, workflow.now().isoformat()]


@workflow.defn
async def child_sleeper(days: float) -> str:
    await workflow.sleep(timedelta(days=days))
    return workflow.now().isoformat()


@workflow.defn
async def parent(days: list[float]) -> list[str]:
    return list(await asyncio.gather(*(workflow.execute_child(child_sleeper, d) for d in days)))


@workflow.defn
async def counting(n: int, left: int) -> int:
    if left == 0:
        return n
    await workflow.sleep(DAY)
    workflow.continue_as_new(n + 1, left - 1)


def at(delta: timedelta) -> str:
    return (START + delta).isoformat()


# ---- the skipping clock -----------------------------------------------------------------------


async def test_twelve_thirty_day_sleeps_take_well_under_a_second() -> None:
    async with WorkflowEnvironment(
        workflows=[monthly], activities=[add_one], start_time=START
    ) as env:
        began = time.perf_counter()
        handle = await env.client.start_workflow(monthly, 12)
        seen = await handle.result(timeout=10)
        elapsed = time.perf_counter() - began
    assert elapsed < 1.0, f"12 x 30 days took {elapsed:.3f}s of real time"
    assert seen == [at(timedelta(days=30 * i)) for i in range(1, 13)]
    assert env.now() == START + timedelta(days=360)
    assert env.skips == 12


async def test_start_time_is_the_workflows_clock() -> None:
    start = datetime(1999, 12, 31, 23, 59, tzinfo=timezone.utc)
    async with WorkflowEnvironment(workflows=[sleeper], start_time=start) as env:
        assert env.start_time == start and env.now() == start
        result = await env.execute_workflow(sleeper, 1 / 24 / 60)
    assert result == datetime(2000, 1, 1, tzinfo=timezone.utc).isoformat()


async def test_default_start_time_is_now() -> None:
    before = datetime.now(timezone.utc)
    async with WorkflowEnvironment(workflows=[sleeper]) as env:
        assert before <= env.start_time <= datetime.now(timezone.utc)


async def test_clock_stands_still_until_someone_awaits_a_result() -> None:
    async with WorkflowEnvironment(workflows=[wait_for_approval], start_time=START) as env:
        handle = await env.client.start_workflow(wait_for_approval, 2)
        await asyncio.sleep(0.2)  # real time: no skipping, the 2-day timeout stays ahead
        assert env.now() == START
        await handle.signal("approve", True)
        assert await handle.result(timeout=5) == ["approved", START.isoformat()]


async def test_no_skipping_while_an_activity_runs() -> None:
    async with WorkflowEnvironment(
        workflows=[race_activity_and_timer], activities=[slow], start_time=START
    ) as env:
        assert await env.execute_workflow(race_activity_and_timer, timeout=10) == "activity"


async def test_retry_backoff_is_skipped() -> None:
    _flaky_calls.clear()
    async with WorkflowEnvironment(
        workflows=[retrying], activities=[flaky], start_time=START
    ) as env:
        began = time.perf_counter()
        result = await env.execute_workflow(retrying, 3, timeout=10)
    assert time.perf_counter() - began < 2
    # back-off 1h, 2h, 4h between the four attempts
    assert result == [4, at(timedelta(hours=7))]
    assert _flaky_calls == [1, 2, 3, 4]


async def test_delayed_start_and_children() -> None:
    async with WorkflowEnvironment(workflows=[parent, child_sleeper], start_time=START) as env:
        handle = await env.client.start_workflow(parent, [3, 1, 2], start_delay=DAY)
        result = await handle.result(timeout=10)
    assert result == [at(4 * DAY), at(2 * DAY), at(3 * DAY)]


async def test_many_runs_each_wake_at_their_own_time() -> None:
    async with WorkflowEnvironment(workflows=[sleeper], start_time=START) as env:
        handles = [await env.client.start_workflow(sleeper, d) for d in (5, 1, 3, 1, 8)]
        results = [await h.result(timeout=10) for h in handles]
    assert results == [at(d * DAY) for d in (5, 1, 3, 1, 8)]


async def test_continue_as_new_with_timers() -> None:
    async with WorkflowEnvironment(workflows=[counting], start_time=START) as env:
        assert await env.execute_workflow(counting, 0, 10, timeout=10) == 10
        assert env.now() == START + 10 * DAY


async def test_execution_timeout_in_virtual_time() -> None:
    async with WorkflowEnvironment(workflows=[sleeper], start_time=START) as env:
        handle = await env.client.start_workflow(sleeper, 10, execution_timeout=DAY)
        with pytest.raises(ostinato.WorkflowTimedOutError):
            await handle.result(timeout=10)
        assert env.now() == START + DAY


# ---- env.sleep --------------------------------------------------------------------------------


async def test_env_sleep_moves_time_by_hand() -> None:
    async with WorkflowEnvironment(workflows=[sleeper], start_time=START) as env:
        handle = await env.client.start_workflow(sleeper, 1)
        await env.sleep(timedelta(hours=23))
        assert env.now() == START + timedelta(hours=23)
        assert (await handle.get_vars())["phase"] == "sleeping"
        await env.sleep(3600)
        assert env.now() == START + DAY
        assert (await handle.get_vars())["phase"] == "awake"
        assert (await handle.describe()).status == "completed"


async def test_env_sleep_handles_every_timer_on_the_way_in_order() -> None:
    async with WorkflowEnvironment(
        workflows=[monthly], activities=[add_one], start_time=START
    ) as env:
        handle = await env.client.start_workflow(monthly, 3)
        await env.sleep(timedelta(days=100))
        assert env.now() == START + timedelta(days=100)
        assert await handle.result(timeout=1) == [at(timedelta(days=30 * i)) for i in (1, 2, 3)]


async def test_env_sleep_stops_at_its_target_with_more_timers_ahead() -> None:
    async with WorkflowEnvironment(
        workflows=[monthly], activities=[add_one], start_time=START
    ) as env:
        handle = await env.client.start_workflow(monthly, 6)
        for month in range(1, 5):
            await env.sleep(timedelta(days=30))
            assert env.now() == START + timedelta(days=30 * month)
            history = await handle.history()
            assert sum(e["kind"] == "activity_completed" for e in history) == month


async def test_env_sleep_without_auto_skip() -> None:
    async with WorkflowEnvironment(workflows=[sleeper], start_time=START, auto_skip=False) as env:
        handle = await env.client.start_workflow(sleeper, 2)
        with pytest.raises(TimeoutError):
            await handle.result(timeout=0.2)  # nothing skips on its own
        assert env.now() == START
        await env.sleep_until(START + 2 * DAY)
        assert await handle.result(timeout=1) == at(2 * DAY)


async def test_idle_waits_for_the_workflow_to_block() -> None:
    async with WorkflowEnvironment(workflows=[sleeper], start_time=START) as env:
        handle = await env.client.start_workflow(sleeper, 1)
        await env.idle()
        assert (await handle.get_vars()) == {"phase": "sleeping"}
        assert env.now() == START


# ---- env.at -----------------------------------------------------------------------------------


async def test_signal_at_day_three_arrives_before_timer_at_day_five() -> None:
    async with WorkflowEnvironment(workflows=[wait_for_approval], start_time=START) as env:
        handle = await env.client.start_workflow(wait_for_approval, 5)
        call = env.at(timedelta(days=3), handle.signal, "approve", True)
        assert await handle.result(timeout=10) == ["approved", at(3 * DAY)]
        assert call.done and call.when == START + 3 * DAY


async def test_timer_before_a_late_signal() -> None:
    async with WorkflowEnvironment(workflows=[wait_for_approval], start_time=START) as env:
        handle = await env.client.start_workflow(wait_for_approval, 2)
        late = env.at(START + 3 * DAY, handle.signal, "approve", True)
        assert await handle.result(timeout=10) == ["timed out", at(2 * DAY)]
        await env.sleep(2 * DAY)
        with pytest.raises(ostinato.WorkflowNotRunningError):
            await late  # the run had finished: the error is the call's


async def test_cancel_and_terminate_at_virtual_times() -> None:
    async with WorkflowEnvironment(workflows=[sleeper], start_time=START) as env:
        cancelled = await env.client.start_workflow(sleeper, 10, id="c")
        terminated = await env.client.start_workflow(sleeper, 10, id="t")
        env.at(2 * DAY, cancelled.cancel)
        env.at(DAY, terminated.terminate, "enough")
        with pytest.raises(ostinato.WorkflowTerminatedError):
            await terminated.result(timeout=10)
        assert env.now() == START + DAY
        with pytest.raises(ostinato.WorkflowCancelledError):
            await cancelled.result(timeout=10)
        assert env.now() == START + 2 * DAY


async def test_scheduled_calls_run_in_time_then_call_order() -> None:
    order: list[str] = []
    async with WorkflowEnvironment(workflows=[sleeper], start_time=START) as env:
        env.at(2 * DAY, order.append, "b")
        env.at(DAY, order.append, "a")
        env.at(2 * DAY, order.append, "c")
        cancelled = env.at(DAY, order.append, "never")
        assert cancelled.cancel()
        await env.sleep(3 * DAY)
    assert order == ["a", "b", "c"]


async def test_failed_scheduled_call_nobody_looked_at_fails_the_environment() -> None:
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(RuntimeError, match=r"env\.at.*ValueError: boom"):
        async with WorkflowEnvironment(workflows=[sleeper], start_time=START) as env:
            env.at(DAY, boom)
            await env.sleep(2 * DAY)


# ---- backends ---------------------------------------------------------------------------------


async def test_runs_on_a_sqlite_backend_and_restores_its_clock(tmp_path: Path) -> None:
    backend = ostinato.connect(f"sqlite:///{tmp_path}/env.db")
    original = backend.clock
    async with WorkflowEnvironment(
        workflows=[wait_for_approval, monthly],
        activities=[add_one],
        backend=backend,
        start_time=START,
    ) as env:
        assert backend.clock is env.clock
        handle = await env.client.start_workflow(wait_for_approval, 5)
        env.at(3 * DAY, handle.signal, "approve", False)
        assert await handle.result(timeout=10) == ["rejected", at(3 * DAY)]
        began = time.perf_counter()
        assert len(await env.execute_workflow(monthly, 12, timeout=10)) == 12
        assert time.perf_counter() - began < 3
    assert backend.clock is original
    await backend.close()


async def test_takes_over_runs_a_vanished_worker_left_behind(tmp_path: Path) -> None:
    # A real worker served the run and vanished without handing it over (its database went
    # first): the run is still marked as cached by it. The environment's worker must not
    # wait for it to come back, a wait its virtual clock would never see the end of.
    url = f"sqlite:///{tmp_path}/left.db"
    gone_backend = ostinato.connect(url)
    async with ostinato.Worker(gone_backend, workflows=[wait_for_approval]) as gone:
        client = ostinato.Client(gone_backend)
        handle = await client.start_workflow(wait_for_approval, 5, id="left-behind")
        while gone.stats["workflow_tasks"] < 1 or gone.busy:
            await asyncio.sleep(0.01)
        await handle.signal("approve", True)
        await gone_backend.close()
    async with WorkflowEnvironment(workflows=[wait_for_approval], backend=url) as env:
        outcome, when = await env.client.get_handle("left-behind").result(timeout=10)
        # Taken at once: not after the clock skipped to the next timer (the 5-day timeout).
        assert outcome == "approved"
        assert datetime.fromisoformat(when) < env.start_time + timedelta(minutes=1)


async def test_waits_out_a_lease_a_vanished_worker_held(tmp_path: Path) -> None:
    # A worker claimed the run's task (with the approval in it) and vanished before it
    # committed: its lease holds the run for 30 s. On the virtual clock the environment skips
    # to the lease's end, not past it to the 5-day timeout.
    url = f"sqlite:///{tmp_path}/leased.db"
    gone = ostinato.connect(url)
    client = ostinato.Client(gone)
    await client.start_workflow(wait_for_approval, 5, id="leased")
    await client.get_handle("leased").signal("approve", True)
    [task] = await gone.claim_workflow_tasks(["default"], 30.0, 1)
    assert task.instance_id == "leased"
    await gone.close()
    async with WorkflowEnvironment(workflows=[wait_for_approval], backend=url) as env:
        outcome, when = await env.client.get_handle("leased").result(timeout=10)
        assert outcome == "approved"
        taken = datetime.fromisoformat(when)
        assert (
            env.start_time + timedelta(seconds=25) < taken < env.start_time + timedelta(minutes=1)
        )


async def test_backend_given_as_url(tmp_path: Path) -> None:
    async with WorkflowEnvironment(
        workflows=[sleeper], backend=f"sqlite:///{tmp_path}/url.db", start_time=START
    ) as env:
        assert await env.execute_workflow(sleeper, 7, timeout=10) == at(7 * DAY)


def test_virtual_clock() -> None:
    clock = VirtualClock(START)
    assert clock() == START.timestamp() and clock.now() == START
    clock.advance(timedelta(hours=1))
    clock.advance(60)
    assert clock.now() == START + timedelta(hours=1, minutes=1)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(START)
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.set(datetime(2031, 1, 1))  # naive = UTC
    assert clock.now() == datetime(2031, 1, 1, tzinfo=timezone.utc)


async def test_environment_is_entered_once() -> None:
    env = WorkflowEnvironment(workflows=[sleeper])
    async with env:
        pass
    with pytest.raises(RuntimeError, match="only once"):
        async with env:
            pass
