"""Composition and lifecycle end to end: child workflows, signals between workflows,
cancellation, terminate, continue-as-new, start options and limits, runtime variables and
``describe()``.

Every test runs on each backend (memory / SQLite / PostgreSQL), with the sticky cache
(incremental: one step per new event) and with ``workflow_cache_size=0`` (every workflow task
replays the full history); every finished history is replayed with
``ostinato.testing.replay`` as well.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ostinato
import pytest
from e2e_support import Harness, harness
from ostinato import ApplicationError, ChildWorkflowError, activity, workflow
from ostinato.testing import replay


@pytest.fixture(params=[1000, 0], ids=["sticky", "replay"])
def cache_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true (state that another task commits)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def status_is(h: Harness, instance_id: str, *statuses: str) -> bool:
    try:
        desc = await h.client.get_handle(instance_id).describe()
    except ostinato.WorkflowNotFoundError:
        return False
    return desc.status in statuses


async def run(
    h: Harness,
    wf: Callable[..., Any],
    *args: Any,
    workflows: tuple[Callable[..., Any], ...] = (),
    activities: tuple[Callable[..., Any], ...] = (),
    id: str | None = None,
    **worker_options: Any,
) -> Any:
    """Start ``wf`` with a worker serving it (and ``workflows``), return its result, and
    check that its history replays."""
    async with h.worker([wf, *workflows], activities, **worker_options):
        handle = await h.client.start_workflow(wf, *args, id=id)
        try:
            return await handle.result(timeout=20)
        finally:
            await h.check_replay(wf, handle)


def kinds(history: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in history]


# ---- activities ------------------------------------------------------------------------------

# What activities observed, keyed by a per-test key (tests on different backends run one after
# another in one process, so a key keeps them apart).
SEEN: dict[str, list[Any]] = {}


def seen(key: str) -> list[Any]:
    return SEEN.setdefault(key, [])


@activity.defn
async def record(key: str, what: str) -> str:
    seen(key).append(what)
    return what


@activity.defn
async def wait_for_cancel(key: str) -> str:
    """Heartbeats until the workflow cancels it, then says so (the worker drops the result)."""
    seen(key).append("started")
    for _ in range(500):
        activity.heartbeat()
        if activity.is_cancelled():
            seen(key).append("saw is_cancelled")
            return "cancelled"
        try:
            await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            seen(key).append(f"cancelled, is_cancelled={activity.is_cancelled()}")
            raise
    return "never cancelled"


@activity.defn
def sync_wait_for_cancel(key: str) -> str:
    """A thread-pool activity has no await to interrupt: it polls ``is_cancelled()``."""
    seen(key).append("started")
    for _ in range(500):
        activity.heartbeat()
        if activity.is_cancelled():
            seen(key).append("saw is_cancelled")
            return "cancelled"
        time.sleep(0.02)
    return "never cancelled"


# ---- child workflows -------------------------------------------------------------------------


@workflow.defn
async def square(x: int) -> int:
    await workflow.sleep(0.01)
    return x * x


@workflow.defn
async def broken_child(message: str) -> None:
    raise ValueError(message)


@workflow.defn
async def fan_out(n: int) -> dict[str, Any]:
    handles = [workflow.start_child(square, i) for i in range(n)]
    results = await asyncio.gather(*handles)
    named = await workflow.execute_child(square, 7, id=f"{workflow.info().instance_id}-named")
    return {
        "results": list(results),
        "named": named,
        "ids": [h.instance_id for h in handles],
    }


@workflow.defn
async def child_after_refused_argument() -> list[str]:
    """A child whose argument cannot be encoded is refused at the call; it still used up its
    default id number (the id is taken before the arguments are encoded)."""
    errors: list[str] = []
    for bad in (object(), float("nan")):
        try:
            workflow.start_child(square, bad)
        except ostinato.PayloadError as err:
            errors.append(str(err).split(":")[0])
    child = workflow.start_child(square, 3)
    return [*errors, child.instance_id, str(await child)]


@workflow.defn
async def child_failure() -> str:
    try:
        await workflow.execute_child(broken_child, "child exploded")
    except ChildWorkflowError as err:
        cause = err.cause
        assert isinstance(cause, ApplicationError)
        return f"{err.workflow_name}|{cause.type}|{cause.message}"
    return "no error"


@workflow.defn
async def inbox_child() -> list[str]:
    channel = workflow.signal_channel("msg", str)
    got: list[str] = []
    while True:
        item = await channel.receive()
        if item == "stop":
            return got
        got.append(item)


@workflow.defn
async def child_with_signals() -> list[str]:
    child = workflow.start_child(inbox_child)
    await child.signal("msg", "a")
    await child.signal("msg", "b")
    await child.signal("msg", "stop")
    return await child


@workflow.defn
async def waiting_child(key: str) -> str:
    try:
        await workflow.signal_channel("never").receive()
    except asyncio.CancelledError:
        await workflow.disconnected(workflow.execute_activity(record, key, "child cleanup"))
        raise
    return "not cancelled"


@workflow.defn
async def cancels_child(key: str) -> str:
    child = workflow.start_child(waiting_child, key, id=f"{workflow.info().instance_id}-c")
    await workflow.sleep(0.05)
    child.cancel()
    try:
        await child
    except asyncio.CancelledError:
        return "child cancelled"
    return "child finished"


@workflow.defn
async def awaits_child(key: str) -> str:
    return await workflow.execute_child(waiting_child, key, id=f"{workflow.info().instance_id}-c")


@workflow.defn
async def abandons_child(key: str) -> str:
    workflow.start_child(waiting_child, key, id=f"{workflow.info().instance_id}-c")
    await workflow.sleep(0.05)
    return "parent done"


async def test_children_fan_out_with_gather(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([fan_out, square]):
        handle = await h.client.start_workflow(fan_out, 5, id="fan")
        result = await handle.result(timeout=20)
        await h.check_replay(fan_out, handle)
        history = await handle.history()
        run_id = history[1]["info"]["run_id"]
        # Default child ids derive from the parent's id and run: the same on every replay.
        assert result["ids"] == [f"fan/{run_id[:8]}-{i}" for i in range(1, 6)]
        assert result["results"] == [0, 1, 4, 9, 16]
        assert result["named"] == 49
        child = await h.client.get_handle(result["ids"][2]).describe()
        assert child.status == "completed" and child.parent_instance_id == "fan"
        assert await h.client.get_handle(result["ids"][2]).result() == 4
        assert kinds(history).count("child_scheduled") == 6
        assert kinds(history).count("child_completed") == 6


async def test_refused_child_argument_uses_up_its_default_id(
    backend_url: str, cache_size: int
) -> None:
    async with (
        harness(backend_url, cache_size) as h,
        h.worker([child_after_refused_argument, square]),
    ):
        handle = await h.client.start_workflow(child_after_refused_argument, id="refused")
        result = await handle.result(timeout=20)
        await h.check_replay(child_after_refused_argument, handle)
        run_id = (await handle.history())[1]["info"]["run_id"]
    refused = "cannot serialize argument 1 of child workflow 'square'"
    assert result == [refused, refused, f"refused/{run_id[:8]}-3", "9"]


async def test_child_failure_reaches_parent(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await run(h, child_failure, workflows=(broken_child,))
    assert result == "broken_child|ValueError|child exploded"


async def test_child_handle_signal(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        assert await run(h, child_with_signals, workflows=(inbox_child,)) == ["a", "b"]


async def test_child_handle_cancel(backend_url: str, cache_size: int) -> None:
    key = f"cancel-child-{backend_url}-{cache_size}"
    async with harness(backend_url, cache_size) as h:
        async with h.worker([cancels_child, waiting_child], [record]):
            handle = await h.client.start_workflow(cancels_child, key, id="cc")
            assert await handle.result(timeout=20) == "child cancelled"
            child = h.client.get_handle("cc-c")
            with pytest.raises(ostinato.WorkflowCancelledError):
                await child.result(timeout=20)
        await h.check_replay(cancels_child, handle)
        replay(waiting_child, await child.history())
        history = kinds(await handle.history())
        assert "child_cancel_requested" in history
    assert seen(key) == ["child cleanup"]


async def test_parent_cancel_cascades_to_children(backend_url: str, cache_size: int) -> None:
    key = f"cascade-{backend_url}-{cache_size}"
    async with harness(backend_url, cache_size) as h:
        async with h.worker([awaits_child, waiting_child], [record]):
            handle = await h.client.start_workflow(awaits_child, key, id="pc")
            await eventually(lambda: status_is(h, "pc-c", "running"), what="child started")
            await handle.cancel()
            with pytest.raises(ostinato.WorkflowCancelledError):
                await handle.result(timeout=20)
            child = h.client.get_handle("pc-c")
            with pytest.raises(ostinato.WorkflowCancelledError):
                await child.result(timeout=20)
        await h.check_replay(awaits_child, handle)
        replay(waiting_child, await child.history())
    assert seen(key) == ["child cleanup"]


async def test_parent_close_policy_cancels_children(backend_url: str, cache_size: int) -> None:
    key = f"close-policy-{backend_url}-{cache_size}"
    async with harness(backend_url, cache_size) as h:
        async with h.worker([abandons_child, waiting_child], [record]):
            handle = await h.client.start_workflow(abandons_child, key, id="ab")
            assert await handle.result(timeout=20) == "parent done"
            with pytest.raises(ostinato.WorkflowCancelledError):
                await h.client.get_handle("ab-c").result(timeout=20)
        await h.check_replay(abandons_child, handle)
    assert seen(key) == ["child cleanup"]


@workflow.defn
async def duplicate_child_id() -> str:
    first = workflow.start_child(slow_workflow, id=f"{workflow.info().instance_id}-kid")
    try:
        await workflow.execute_child(slow_workflow, id=f"{workflow.info().instance_id}-kid")
    except ChildWorkflowError as err:
        first.cancel()
        return str(err)
    return "no error"


@workflow.defn
async def child_continues_as_new() -> Any:
    return await workflow.execute_child(countdown, 2, 0)


@workflow.defn
async def child_times_out() -> str:
    try:
        await workflow.execute_child(slow_workflow, execution_timeout=0.1)
    except ChildWorkflowError as err:
        return str(err)
    return "no error"


@workflow.defn
async def child_is_terminated() -> str:
    try:
        await workflow.execute_child(slow_workflow, id=f"{workflow.info().instance_id}-kid")
    except ChildWorkflowError as err:
        return str(err)
    return "no error"


@workflow.defn
async def gathers_children() -> str:
    await asyncio.gather(*(workflow.execute_child(slow_workflow) for _ in range(3)))
    return "all done"


@workflow.defn
async def waits_for_child_with_timeout() -> str:
    child = workflow.execute_child(slow_workflow, id=f"{workflow.info().instance_id}-kid")
    try:
        await asyncio.wait_for(child, 0.1)
    except asyncio.TimeoutError:
        return "timed out"
    return "finished"


@workflow.defn
async def signals_parent() -> str:
    parent = workflow.info().parent_instance_id
    assert parent is not None
    await workflow.signal_external(parent, "msg", "from child")
    return "sent"


@workflow.defn
async def parent_listens() -> list[str]:
    child = workflow.start_child(signals_parent)
    got = await workflow.signal_channel("msg", str).receive()
    return [got, await child]


async def test_duplicate_child_id_fails_in_parent(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await run(h, duplicate_child_id, id="dup", workflows=(slow_workflow,))
    assert "dup-kid" in result and "already" in result


async def test_child_continue_as_new_reports_final_result(
    backend_url: str, cache_size: int
) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await run(h, child_continues_as_new, workflows=(countdown,))
    assert result == {"total": 3, "continued_from": True}


async def test_child_timeout_and_terminate_reach_parent(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        async with h.worker([child_times_out, child_is_terminated, slow_workflow]):
            timed = await h.client.start_workflow(child_times_out)
            terminated = await h.client.start_workflow(child_is_terminated, id="ct")
            assert "timed out" in await timed.result(timeout=20)
            await eventually(lambda: status_is(h, "ct-kid", "running"), what="child started")
            await h.client.get_handle("ct-kid").terminate("not needed")
            message = await terminated.result(timeout=20)
            assert "terminated" in message and "not needed" in message
        await h.check_replay(child_times_out, timed)
        await h.check_replay(child_is_terminated, terminated)


async def test_cancel_cancels_gathered_children(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        async with h.worker([gathers_children, waits_for_child_with_timeout, slow_workflow]):
            handle = await h.client.start_workflow(gathers_children)

            async def three_children() -> bool:
                return len((await handle.describe()).pending_children) == 3

            await eventually(three_children, what="children started")
            children = (await handle.describe()).pending_children
            await handle.cancel()
            with pytest.raises(ostinato.WorkflowCancelledError):
                await handle.result(timeout=20)
            for child in children:
                with pytest.raises(ostinato.WorkflowCancelledError):
                    await h.client.get_handle(child).result(timeout=20)
            # asyncio.wait_for over a child cancels the child when it times out.
            waiting = await h.client.start_workflow(waits_for_child_with_timeout, id="wf")
            assert await waiting.result(timeout=20) == "timed out"
            with pytest.raises(ostinato.WorkflowCancelledError):
                await h.client.get_handle("wf-kid").result(timeout=20)
        await h.check_replay(gathers_children, handle)
        await h.check_replay(waits_for_child_with_timeout, waiting)


async def test_child_signals_parent(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        result = await run(h, parent_listens, workflows=(signals_parent,))
    assert result == ["from child", "sent"]


# ---- signals between workflows ---------------------------------------------------------------


@workflow.defn
async def sender(target: str) -> list[str]:
    outcomes = []
    await workflow.signal_external(target, "msg", "hello")
    outcomes.append("sent")
    try:
        await workflow.signal_external("no-such-instance", "msg", "x")
    except ostinato.WorkflowNotFoundError as err:
        outcomes.append(f"not found: {err}")
    return outcomes


@workflow.defn
async def late_sender(target: str) -> str:
    try:
        await workflow.signal_external(target, "msg", "too late")
    except ostinato.WorkflowNotRunningError as err:
        return f"not running: {err}"
    return "delivered"


async def test_signal_external(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([sender, late_sender, inbox_child]):
        receiver = await h.client.start_workflow(inbox_child, id="receiver")
        handle = await h.client.start_workflow(sender, "receiver", id="sender")
        outcomes = await handle.result(timeout=20)
        assert outcomes[0] == "sent"
        assert outcomes[1].startswith("not found: ") and "no-such-instance" in outcomes[1]
        await receiver.signal("msg", "stop")
        assert await receiver.result(timeout=20) == ["hello"]
        # A command/event pair, not an activity.
        history = kinds(await handle.history())
        assert history.count("signal_external_sent") == 2
        assert history.count("signal_external_completed") == 2
        assert "activity_scheduled" not in history
        await h.check_replay(sender, handle)
        # The receiver is closed now: the sender learns it.
        late = await h.client.start_workflow(late_sender, "receiver")
        message = await late.result(timeout=20)
        assert message.startswith("not running: ") and "receiver" in message
        await h.check_replay(late_sender, late)


# ---- cancellation ----------------------------------------------------------------------------


@workflow.defn
async def cancellable_saga(key: str, use_shield: bool) -> str:
    await workflow.execute_activity(record, key, "booked")
    try:
        await workflow.execute_activity(wait_for_cancel, key, heartbeat_timeout=0.3)
    except asyncio.CancelledError:
        compensate = workflow.execute_activity(record, key, "compensated")
        if use_shield:
            await asyncio.shield(compensate)
        else:
            await workflow.disconnected(compensate)
        await workflow.sleep(0.01)  # timers work after the cancel too
        raise
    return "not cancelled"


@workflow.defn
async def cancelled_while_sleeping() -> str:
    await workflow.sleep(30)
    return "slept"


@workflow.defn
async def cancels_activity(key: str, sync: bool) -> list[str]:
    fn = sync_wait_for_cancel if sync else wait_for_cancel
    handle = workflow.start_activity(fn, key, heartbeat_timeout=0.3)
    await workflow.execute_activity(record, key, "other activity")
    await workflow.sleep(0.1)  # let the attempt start
    handle.cancel()
    outcome = []
    try:
        await handle
    except asyncio.CancelledError:
        outcome.append("handle raised CancelledError")
    handle.cancel()  # cancelling a done handle is a no-op
    outcome.append(f"done={handle.done()}")
    return outcome


@workflow.defn
async def cancels_timers() -> list[str]:
    outcome = []
    sleeper = asyncio.create_task(workflow.sleep(30))
    await workflow.sleep(0.01)
    sleeper.cancel()
    try:
        await sleeper
    except asyncio.CancelledError:
        outcome.append("sleep cancelled")
    try:
        await asyncio.wait_for(workflow.sleep(30), timeout=0.02)
    except asyncio.TimeoutError:
        outcome.append("wait_for timed out")
    outcome.append(f"{(workflow.now() - workflow.info().start_time).total_seconds() < 20}")
    return outcome


@pytest.mark.parametrize("use_shield", [True, False], ids=["shield", "disconnected"])
async def test_cancel_runs_cleanup_and_ends_cancelled(
    backend_url: str, cache_size: int, use_shield: bool
) -> None:
    key = f"saga-{backend_url}-{cache_size}-{use_shield}"
    async with harness(backend_url, cache_size) as h:
        async with h.worker([cancellable_saga], [record, wait_for_cancel]):
            handle = await h.client.start_workflow(cancellable_saga, key, use_shield)
            await eventually(lambda: asyncio.sleep(0, "started" in seen(key)), what="activity")
            await handle.cancel("user asked")
            with pytest.raises(ostinato.WorkflowCancelledError) as info:
                await handle.result(timeout=20)
            assert "cancel" in str(info.value)
            desc = await handle.describe()
            assert desc.status == "canceled"
            assert desc.pending_activities == [] and desc.pending_timers == []
            await eventually(lambda: asyncio.sleep(0, len(seen(key)) >= 4), what="activity saw")
        await h.check_replay(cancellable_saga, handle)
        history = await handle.history()
    assert seen(key)[:3] == ["booked", "started", "compensated"]
    assert seen(key)[3] in ("saw is_cancelled", "cancelled, is_cancelled=True")
    assert "activity_cancel_requested" in kinds(history)
    cancel = next(e for e in history if e["kind"] == "cancel_requested")
    assert cancel["reason"] == "user asked"
    assert kinds(history)[-1] == "workflow_canceled"


async def test_cancel_cancels_timers(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([cancelled_while_sleeping]):
        handle = await h.client.start_workflow(cancelled_while_sleeping)
        await eventually(lambda: _has_timer(handle), what="timer started")
        await handle.cancel()
        with pytest.raises(ostinato.WorkflowCancelledError):
            await handle.result(timeout=20)
        history = await handle.history()
        await h.check_replay(cancelled_while_sleeping, handle)
    assert "timer_canceled" in kinds(history)


async def _has_timer(handle: ostinato.WorkflowHandle[Any]) -> bool:
    return bool((await handle.describe()).pending_timers)


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_start_activity_cancel(backend_url: str, cache_size: int, sync: bool) -> None:
    key = f"act-cancel-{backend_url}-{cache_size}-{sync}"
    fn = sync_wait_for_cancel if sync else wait_for_cancel
    async with harness(backend_url, cache_size) as h:
        result = await run(
            h,
            cancels_activity,
            key,
            sync,
            activities=(
                fn,
                record,
            ),
        )
        await eventually(lambda: asyncio.sleep(0, len(seen(key)) >= 3), what="activity saw")
    assert result == ["handle raised CancelledError", "done=True"]
    assert "started" in seen(key)
    assert any("is_cancelled" in s for s in seen(key))
    assert "never cancelled" not in seen(key)


async def test_timer_cancel_from_workflow_code(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([cancels_timers]):
        handle = await h.client.start_workflow(cancels_timers)
        result = await handle.result(timeout=20)
        history = await handle.history()
        await h.check_replay(cancels_timers, handle)
    assert result == ["sleep cancelled", "wait_for timed out", "True"]
    assert kinds(history).count("timer_canceled") == 2


@workflow.defn
async def slow_cleanup(key: str) -> str:
    try:
        await workflow.sleep(30)
    except asyncio.CancelledError:
        await workflow.disconnected(workflow.sleep(0.15))
        await workflow.disconnected(workflow.execute_activity(record, key, "cleanup done"))
        raise
    return "slept"


@workflow.defn
async def swallows_cancel() -> str:
    try:
        await workflow.sleep(30)
    except asyncio.CancelledError:
        return "cancel swallowed"
    return "slept"


async def test_second_cancel_does_not_interrupt_cleanup(backend_url: str, cache_size: int) -> None:
    key = f"double-cancel-{backend_url}-{cache_size}"
    async with harness(backend_url, cache_size) as h, h.worker([slow_cleanup], [record]):
        handle = await h.client.start_workflow(slow_cleanup, key)
        await eventually(lambda: _has_timer(handle), what="timer started")
        await handle.cancel("first")
        await asyncio.sleep(0.05)
        await handle.cancel("second")
        with pytest.raises(ostinato.WorkflowCancelledError):
            await handle.result(timeout=20)
        await h.check_replay(slow_cleanup, handle)
    assert seen(key) == ["cleanup done"]


async def test_cancel_is_a_request(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([swallows_cancel]):
        handle = await h.client.start_workflow(swallows_cancel)
        await eventually(lambda: _has_timer(handle), what="timer started")
        await handle.cancel()
        # The workflow decided to finish normally after the cancel.
        assert await handle.result(timeout=20) == "cancel swallowed"
        await h.check_replay(swallows_cancel, handle)
        with pytest.raises(ostinato.WorkflowNotRunningError):
            await handle.cancel()
        # Cancelled before its first step: no workflow code runs, the run ends cancelled.
        delayed = await h.client.start_workflow(swallows_cancel, start_delay=0.1)
        await delayed.cancel()
        with pytest.raises(ostinato.WorkflowCancelledError):
            await delayed.result(timeout=20)
        await h.check_replay(swallows_cancel, delayed)


# ---- terminate -------------------------------------------------------------------------------


@workflow.defn
async def terminated_parent(key: str) -> str:
    child = workflow.start_child(waiting_child, key, id=f"{workflow.info().instance_id}-c")
    try:
        await child
    except asyncio.CancelledError:
        # Terminate runs no workflow code and delivers no cancellation: never executes.
        seen(key).append("parent saw a cancel")
        raise
    return "finished"


async def test_terminate_ends_run_and_children(backend_url: str, cache_size: int) -> None:
    key = f"terminate-{backend_url}-{cache_size}"
    async with harness(backend_url, cache_size) as h:
        async with h.worker([terminated_parent, waiting_child], [record]):
            handle = await h.client.start_workflow(terminated_parent, key, id="tp")
            await eventually(lambda: status_is(h, "tp-c", "running"), what="child started")
            await _settled(h, "tp-c")
            await handle.terminate("operator said stop")
            with pytest.raises(ostinato.WorkflowTerminatedError) as info:
                await handle.result(timeout=5)
            assert "operator said stop" in str(info.value)
            with pytest.raises(ostinato.WorkflowTerminatedError):
                await h.client.get_handle("tp-c").result(timeout=5)
            with pytest.raises(ostinato.WorkflowNotRunningError):
                await handle.terminate("again")
            await asyncio.sleep(0.1)
        history = await handle.history()
        assert history[-1]["kind"] == "workflow_terminated"
        assert history[-1]["reason"] == "operator said stop"
        assert (await handle.describe()).status == "terminated"
        child_history = await h.client.get_handle("tp-c").history()
        assert child_history[-1]["kind"] == "workflow_terminated"
        replay(terminated_parent, history)
    assert seen(key) == []  # neither cleanup code ran


async def _settled(h: Harness, instance_id: str) -> None:
    """Wait until the run has committed its first task (history is non-empty)."""

    async def check() -> bool:
        return (await h.client.get_handle(instance_id).describe()).history_length > 0

    await eventually(check, what=f"{instance_id} started")


# ---- continue-as-new -------------------------------------------------------------------------


@workflow.defn
async def countdown(n: int, total: int) -> dict[str, Any]:
    workflow.set_var("n", n)
    await workflow.sleep(0.01)
    if n > 0:
        workflow.continue_as_new(n - 1, total + n)
    info = workflow.info()
    return {"total": total, "continued_from": info.continued_from_run_id is not None}


async def test_continue_as_new(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([countdown]):
        handle = await h.client.start_workflow(countdown, 3, 0, id="cd")
        assert await handle.result(timeout=20) == {"total": 6, "continued_from": True}
        latest = await handle.describe()
        assert latest.status == "completed" and latest.next_run_id is None
        history = await handle.history()
        assert history[1]["kind"] == "workflow_started" and history[1]["input"] == [0, 6]
        assert latest.history_length == len(history)
        assert await h.client.get_vars("cd") == {"n": 0}
        # Walk back the chain: every earlier run stays readable by its run id.
        runs = [latest.run_id]
        previous = history[1]["info"].get("continued_from_run_id")
        while previous:
            old = h.client.get_handle("cd", run_id=previous)
            desc = await old.describe()
            assert desc.status == "continued_as_new" and desc.next_run_id == runs[-1]
            old_history = await old.history()
            assert old_history[-1]["kind"] == "workflow_continued_as_new"
            replay(countdown, old_history)
            runs.append(desc.run_id)
            previous = old_history[1]["info"].get("continued_from_run_id")
        assert len(runs) == 4
        first = h.client.get_handle("cd", run_id=runs[-1])
        assert (await first.history())[1]["input"] == [3, 0]
        # result() of an old run follows the chain to the final result.
        assert (await first.result(timeout=5))["total"] == 6
        await h.check_replay(countdown, handle)


@workflow.defn
async def summing_entity(total: int, count: int, backlog: list[int]) -> list[int]:
    channel = workflow.signal_channel("add", int)
    value = backlog.pop(0) if backlog else await channel.receive()
    if value < 0:
        return [total, count]
    while channel.pending():  # received by this run but not handled: pass them on
        backlog.append(channel.receive_nowait())
    workflow.continue_as_new(total + value, count + 1, backlog)


async def test_signals_survive_continue_as_new(backend_url: str, cache_size: int) -> None:
    """Signals that arrive while a run is continuing as new go to the next run."""
    async with harness(backend_url, cache_size) as h, h.worker([summing_entity]):
        handle = await h.client.start_workflow(summing_entity, 0, 0, [], id="entity")
        for i in range(1, 31):
            await handle.signal("add", i)
            if i % 7 == 0:
                await asyncio.sleep(0.01)
        await handle.signal("add", -1)
        assert await handle.result(timeout=20) == [465, 30]
        await h.check_replay(summing_entity, handle)


@workflow.defn
async def entity_feeder(target: str, values: list[int]) -> None:
    for value in values:
        await workflow.signal_external(target, "add", value)


async def test_external_signals_survive_continue_as_new(backend_url: str, cache_size: int) -> None:
    """The same with another workflow as the sender: each of its signal_external commits
    races a continue-as-new of the target, and none is lost."""
    async with harness(backend_url, cache_size) as h, h.worker([summing_entity, entity_feeder]):
        handle = await h.client.start_workflow(summing_entity, 0, 0, [], id="fed-entity")
        feeders = [
            await h.client.start_workflow(entity_feeder, "fed-entity", list(range(k, 41, 4)))
            for k in (1, 2, 3, 4)
        ]
        for feeder in feeders:
            await feeder.result(timeout=30)
        await handle.signal("add", -1)
        assert await handle.result(timeout=30) == [820, 40]
        await h.check_replay(summing_entity, handle)
        for feeder in feeders:
            await h.check_replay(entity_feeder, feeder)


# ---- start options ---------------------------------------------------------------------------


@workflow.defn
async def quick(value: str) -> str:
    return value


@workflow.defn
async def slow_workflow() -> str:
    await workflow.sleep(30)
    return "slept"


async def test_start_delay(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([quick]):
        started = time.monotonic()
        handle = await h.client.start_workflow(quick, "late", start_delay=0.3)
        desc = await handle.describe()
        assert desc.status == "running" and desc.history_length == 0
        assert await handle.result(timeout=20) == "late"
        assert time.monotonic() - started >= 0.25
        await h.check_replay(quick, handle)


async def test_execution_timeout(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([slow_workflow]):
        handle = await h.client.start_workflow(slow_workflow, execution_timeout=0.2)
        with pytest.raises(ostinato.WorkflowTimedOutError) as info:
            await handle.result(timeout=20)
        assert "execution timeout" in str(info.value)
        desc = await handle.describe()
        assert desc.status == "timed_out"
        assert desc.failure is not None and "execution timeout" in desc.failure
        assert desc.pending_timers == []
        await h.check_replay(slow_workflow, handle)


@workflow.defn
async def loops_forever(n: int) -> int:
    await workflow.sleep(0.05)
    workflow.continue_as_new(n + 1)


async def test_execution_timeout_covers_continue_as_new(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([loops_forever]):
        handle = await h.client.start_workflow(loops_forever, 0, execution_timeout=0.25)
        with pytest.raises(ostinato.WorkflowTimedOutError):
            await handle.result(timeout=10)
        desc = await handle.describe()
        assert desc.status == "timed_out"
        assert (await handle.history())[1]["input"] != [0]  # a later run of the chain


async def test_id_reuse_policy(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([quick, slow_workflow]):
        first = await h.client.start_workflow(quick, "one", id="reuse")
        assert await first.result(timeout=20) == "one"
        first_run = (await first.describe()).run_id
        with pytest.raises(ostinato.WorkflowAlreadyStartedError):
            await h.client.start_workflow(quick, "refused", id="reuse", id_reuse_policy="refuse")
        second = await h.client.start_workflow(quick, "two", id="reuse")  # default: allow
        assert await second.result(timeout=20) == "two"
        assert (await second.describe()).run_id != first_run
        assert await h.client.get_handle("reuse", run_id=first_run).result() == "one"
        running = await h.client.start_workflow(slow_workflow, id="busy")
        with pytest.raises(ostinato.WorkflowAlreadyStartedError):
            await h.client.start_workflow(slow_workflow, id="busy")
        await running.terminate("done testing")
        with pytest.raises(ValueError):
            await h.client.start_workflow(quick, "x", id_reuse_policy="sometimes")


# ---- history limits --------------------------------------------------------------------------


@workflow.defn
async def chatty(n: int) -> int:
    for i in range(n):
        await workflow.execute_activity(record, "chatty", str(i))
    return n


async def test_history_limits(
    backend_url: str, cache_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(backend_url, cache_size) as h:
        with caplog.at_level(logging.WARNING, logger="ostinato.workflow"):
            result = await run(
                h,
                chatty,
                6,
                activities=(record,),
                history_warn_length=10,
                history_max_length=10_000,
            )
        assert result == 6
        warnings = [r for r in caplog.records if "history" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "continue_as_new" in warnings[0].getMessage()
        with pytest.raises(ostinato.WorkflowFailedError) as info:
            await run(h, chatty, 50, activities=(record,), history_max_length=20)
    assert "continue_as_new" in str(info.value)
    assert info.value.cause is not None
    assert "HistoryTooLong" in str(getattr(info.value.cause, "type", ""))


# ---- runtime variables and describe ----------------------------------------------------------


@workflow.defn
async def inspected(key: str) -> str:
    workflow.set_var("stage", "working")
    handle = workflow.start_activity(wait_for_cancel, key, heartbeat_timeout=0.3)
    timer = asyncio.create_task(workflow.sleep(30))
    await workflow.signal_channel("go").receive()
    handle.cancel()
    timer.cancel()
    workflow.set_var("stage", "done")
    workflow.set_var("count", 2)
    return "ok"


async def test_vars_and_describe(backend_url: str, cache_size: int) -> None:
    key = f"describe-{backend_url}-{cache_size}"
    async with harness(backend_url, cache_size) as h:
        async with h.worker([inspected], [wait_for_cancel]):
            handle = await h.client.start_workflow(inspected, key, id="insp")

            async def live() -> bool:
                return (await h.client.get_vars("insp")).get("stage") == "working"

            await eventually(live, what="vars of the live run")
            desc = await handle.describe()
            assert desc.status == "running" and desc.is_running and not desc.is_blocked
            assert desc.workflow_name == "inspected" and desc.instance_id == "insp"
            assert [a.name for a in desc.pending_activities] == ["wait_for_cancel"]
            assert len(desc.pending_timers) == 1
            assert desc.pending_timers[0].fire_at > desc.created_at
            assert desc.history_length == len(await handle.history())
            assert desc.closed_at is None and desc.failure is None
            await handle.signal("go")
            assert await handle.result(timeout=20) == "ok"
        desc = await handle.describe()
        assert desc.status == "completed" and desc.closed_at is not None
        assert desc.pending_activities == [] and desc.pending_timers == []
        assert desc.history_length == len(await handle.history())
        # Variables stay readable after the run ended: the last committed values.
        assert await h.client.get_vars("insp") == {"stage": "done", "count": 2}
        assert await handle.get_vars() == {"stage": "done", "count": 2}
        await h.check_replay(inspected, handle)
        with pytest.raises(ostinato.WorkflowNotFoundError):
            await h.client.get_vars("no-such-workflow")


@workflow.defn
async def fails_after_var() -> None:
    workflow.set_var("stage", "about to fail")
    raise RuntimeError("kaput")


@activity.defn
async def declined(card: str) -> str:
    raise ValueError(f"card {card} declined")


@workflow.defn
async def charging(card: str) -> str:
    retry = ostinato.RetryPolicy(initial_interval=60)
    return await workflow.execute_activity(declined, card, retry=retry)


async def test_describe_shows_why_an_activity_is_still_pending(
    backend_url: str, cache_size: int
) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([charging], [declined]):
        handle = await h.client.start_workflow(charging, "4242", id="charging")

        async def retrying() -> bool:
            pending = (await handle.describe()).pending_activities
            return bool(pending) and pending[0].state == "retrying"

        await eventually(retrying, what="the activity's first failure")
        desc = await handle.describe()
        [pending] = desc.pending_activities
        assert (pending.name, pending.attempt) == ("declined", 1)
        assert pending.last_failure == "ValueError: card 4242 declined"
        assert pending.next_attempt_at is not None
        assert 55 < (pending.next_attempt_at - desc.updated_at).total_seconds() < 65
        await handle.terminate("test over")
        assert (await handle.describe()).pending_activities == []


async def test_describe_failed_run(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        with pytest.raises(ostinato.WorkflowFailedError):
            await run(h, fails_after_var, id="kaput")
        desc = await h.client.get_handle("kaput").describe()
        assert desc.status == "failed"
        assert desc.failure is not None and "kaput" in desc.failure
        assert await h.client.get_vars("kaput") == {"stage": "about to fail"}
