"""The workflow runtime under replay: ``workflow.info()`` at each point of the history,
``asyncio.wait`` sets, handles given to ``asyncio.create_task``, the cancel reason,
``cancel_external``, commands cancelled in the step that issued them and ``finally:`` blocks of
disposed runs.

Every end-to-end test runs on each backend (memory / SQLite / PostgreSQL), with the sticky
cache (incremental) and with ``workflow_cache_size=0`` (every workflow task replays the full
history); finished histories are replayed with ``ostinato.testing.replay`` as well.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ostinato
import pytest
from e2e_support import Harness, harness
from ostinato import activity, workflow
from ostinato.testing import replay


@pytest.fixture(params=[1000, 0], ids=["sticky", "replay"])
def cache_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def kinds(history: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in history]


async def has_event(h: Harness, instance_id: str, kind: str) -> bool:
    try:
        history = await h.client.get_handle(instance_id).history()
    except ostinato.WorkflowNotFoundError:
        return False
    return kind in kinds(history)


@activity.defn
async def echo(value: str) -> str:
    return value


# ---- item 2: workflow.info() is the value at that point of the history ------------------------


@workflow.defn
async def grows_then_continues(runs_left: int) -> list[int]:
    """The documented pattern: continue as new once the history is long enough."""
    lengths = [workflow.info().history_length]
    while workflow.info().history_length <= 14:
        await workflow.sleep(0.001)
        lengths.append(workflow.info().history_length)
    if runs_left > 0:
        workflow.continue_as_new(runs_left - 1)
    return lengths


async def test_history_length_is_replay_safe(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([grows_then_continues]):
        handle = await h.client.start_workflow(grows_then_continues, 2)
        lengths = await handle.result(timeout=20)
        history = await handle.history()
        await h.check_replay(grows_then_continues, handle)
    # Each value is the length of the history at that point: task_started, timer_fired and
    # the next timer_started make three events per iteration.
    assert lengths == [2, 5, 8, 11, 14, 17]
    assert kinds(history)[-1] == "workflow_completed"
    assert history[1]["info"]["continued_from_run_id"] is not None


def test_history_length_replays_the_recorded_values() -> None:
    seen: list[int] = []

    @workflow.defn(name="lengths")
    async def lengths() -> None:
        seen.append(workflow.info().history_length)
        await workflow.execute_activity(echo, "a")
        seen.append(workflow.info().history_length)
        await workflow.sleep(1)
        seen.append(workflow.info().history_length)

    history: list[dict[str, Any]] = [
        {"seq": 1, "kind": "task_started", "time": 1_000_000},
        {"seq": 2, "kind": "workflow_started", "name": "lengths", "input": [], "info": {}},
        {
            "seq": 3,
            "kind": "activity_scheduled",
            "id": 1,
            "name": "echo",
            "input": ["a"],
            "options": {},
        },
        {"seq": 4, "kind": "task_started", "time": 2_000_000},
        {"seq": 5, "kind": "activity_completed", "id": 1, "result": "a", "attempt": 1},
        {"seq": 6, "kind": "timer_started", "id": 2, "fire_at": 3_000_000},
        {"seq": 7, "kind": "task_started", "time": 3_000_000},
        {"seq": 8, "kind": "timer_fired", "id": 2},
        {"seq": 9, "kind": "workflow_completed", "result": None},
    ]
    replay(lengths, history)
    assert seen == [2, 5, 8]


# ---- item 4: asyncio.wait's sets have the same order in every process -------------------------


@workflow.defn
async def waits_for_many(n: int) -> list[str]:
    tasks = [asyncio.ensure_future(workflow.sleep(0.001)) for _ in range(n)]
    names = {task: f"t{i}" for i, task in enumerate(tasks)}
    done, pending = await asyncio.wait(tasks)
    assert not pending
    order = [names[task] for task in done]
    # What the code does next follows the set's order: replay must see the same.
    for name in order:
        await workflow.execute_activity(echo, name)
    return order


REPLAY_IN_SUBPROCESS = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    # Different allocations before the replay: objects land at other addresses.
    noise = [object() for _ in range(int(os.environ["NOISE"]))]
    from ostinato.testing import replay
    import test_workflow_runtime as t
    history = json.load(open(sys.argv[2]))
    replay(t.waits_for_many, history)
    print("replayed")
    """
)


async def test_asyncio_wait_sets_replay_in_another_process(
    backend_url: str, cache_size: int, tmp_path: Path
) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([waits_for_many], [echo]):
        handle = await h.client.start_workflow(waits_for_many, 12)
        order = await handle.result(timeout=20)
        history = await handle.history()
        await h.check_replay(waits_for_many, handle)
    assert sorted(order) == sorted(f"t{i}" for i in range(12))
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    here = str(Path(__file__).parent)
    for seed, noise in (("1", "7"), ("2", "1013")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "NOISE": noise}
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", REPLAY_IN_SUBPROCESS, here, str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0 and "replayed" in proc.stdout, proc.stderr[-3000:]


def test_asyncio_wait_done_set_follows_creation_order() -> None:
    """Tasks of a workflow hash by creation order, so small sets iterate in that order."""
    orders: list[list[int]] = []

    @workflow.defn(name="waits")
    async def waits() -> None:
        tasks = [asyncio.ensure_future(asyncio.sleep(0)) for _ in range(6)]
        index = {task: i for i, task in enumerate(tasks)}
        done, _ = await asyncio.wait(tasks)
        orders.append([index[t] for t in done])

    history: list[dict[str, Any]] = [
        {"seq": 1, "kind": "task_started", "time": 1_000_000},
        {"seq": 2, "kind": "workflow_started", "name": "waits", "input": [], "info": {}},
        {"seq": 3, "kind": "workflow_completed", "result": None},
    ]
    replay(waits, history)
    assert orders == [[0, 1, 2, 3, 4, 5]]


# ---- item 24: handles work wherever asyncio takes an awaitable --------------------------------


@workflow.defn
async def child_doubles(x: int) -> int:
    return 2 * await workflow.execute_activity(echo_int, x)


@activity.defn
async def echo_int(x: int) -> int:
    return x


@workflow.defn
async def uses_tasks() -> list[Any]:
    a = asyncio.create_task(workflow.execute_activity(echo, "a"))
    b = asyncio.ensure_future(workflow.start_activity(echo, "b"))
    c = asyncio.create_task(workflow.execute_child(child_doubles, 21))
    d = asyncio.ensure_future(workflow.start_child(child_doubles, 1))
    done, _ = await asyncio.wait([a, b, c, d])
    e = await asyncio.wait_for(asyncio.create_task(workflow.execute_activity(echo, "e")), 60)
    # Handles themselves stay futures-like awaitables that asyncio.wait accepts.
    f = workflow.execute_activity(echo, "f")
    g = workflow.execute_child(child_doubles, 2)
    done_handles, _ = await asyncio.wait([f, g])
    return [await a, await b, await c, await d, e, len(done), await f, await g, len(done_handles)]


async def test_create_task_over_activities_and_children(backend_url: str, cache_size: int) -> None:
    async with (
        harness(backend_url, cache_size) as h,
        h.worker([uses_tasks, child_doubles], [echo, echo_int]),
    ):
        handle = await h.client.start_workflow(uses_tasks)
        result = await handle.result(timeout=20)
        await h.check_replay(uses_tasks, handle)
    assert result == ["a", "b", 42, 2, "e", 4, "f", 4, 2]


# ---- item 21: the cancel reason ---------------------------------------------------------------


@workflow.defn
async def reports_cancel_reason() -> list[str]:
    assert workflow.cancellation_reason() is None
    try:
        await workflow.signal_channel("never").receive()
    except asyncio.CancelledError as exc:
        reason = workflow.cancellation_reason()
        return [str(reason), str(exc)]
    return ["not cancelled"]


@workflow.defn
async def parent_of_reporter() -> list[str]:
    return await workflow.execute_child(
        reports_cancel_reason, id=f"{workflow.info().instance_id}-child"
    )


async def test_cancellation_reason_from_client(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([reports_cancel_reason]):
        handle = await h.client.start_workflow(reports_cancel_reason)
        await eventually(lambda: has_event(h, handle.id, "task_started"))
        await handle.cancel("customer changed their mind")
        result = await handle.result(timeout=20)
        await h.check_replay(reports_cancel_reason, handle)
    assert result == ["customer changed their mind"] * 2


async def test_cancellation_reason_of_a_parent_cascade(backend_url: str, cache_size: int) -> None:
    async with (
        harness(backend_url, cache_size) as h,
        h.worker([parent_of_reporter, reports_cancel_reason]),
    ):
        parent = await h.client.start_workflow(parent_of_reporter, id="reason-parent")
        await eventually(lambda: has_event(h, "reason-parent-child", "task_started"))
        await parent.cancel("shop closed")
        with pytest.raises(ostinato.WorkflowCancelledError):
            await parent.result(timeout=20)
        child = h.client.get_handle("reason-parent-child")
        reason, message = await child.result(timeout=20)
        await h.check_replay(reports_cancel_reason, child)
    assert "reason-parent" in reason and "shop closed" in reason
    assert message == reason


# ---- the finally: blocks of a run that is disposed ---------------------------------------------

NOTES: dict[str, list[str]] = {}
RAN: dict[str, list[str]] = {}


@activity.defn
async def note(key: str, what: str) -> str:
    RAN.setdefault(key, []).append(what)
    return what


@workflow.defn
async def cleans_up(key: str) -> str:
    await workflow.execute_activity(note, key, "started")
    try:
        await workflow.signal_channel("go").receive()
    finally:
        attempts: list[Callable[[], Any]] = [
            lambda: workflow.execute_activity(note, key, "cleanup"),
            lambda: workflow.set_var("cleaned", True),
            lambda: workflow.signal_external("nobody", "x"),
        ]
        for attempt in attempts:
            try:
                outcome = attempt()
                if asyncio.iscoroutine(outcome) or isinstance(outcome, workflow.ActivityHandle):
                    await outcome
            except ostinato.WorkflowNotFoundError:
                pass
            except Exception as exc:
                NOTES.setdefault(key, []).append(f"{type(exc).__name__}: {exc}")
    return "done"


async def test_finally_blocks_of_disposed_runs_record_nothing(
    backend_url: str, cache_size: int
) -> None:
    key = f"finally-{backend_url}-{cache_size}"
    async with harness(backend_url, cache_size) as h:
        async with h.worker([cleans_up], [note]):
            handle = await h.client.start_workflow(cleans_up, key)
            await eventually(lambda: has_event(h, handle.id, "activity_completed"))
            await eventually(
                lambda: asyncio.sleep(0, NOTES.get(key) or cache_size != 0), what="dispose"
            )
        # The worker has shut down: a cached run was disposed with it.
        assert NOTES.get(key), "the finally: block did not run when the run was disposed"
        async with h.worker([cleans_up], [note]):
            await handle.signal("go")
            assert await handle.result(timeout=20) == "done"
            await h.check_replay(cleans_up, handle)
        history = await handle.history()
        variables = await h.client.get_vars(handle.id)
    # The real end of the run cleans up once; the disposals issued nothing.
    assert RAN[key] == ["started", "cleanup"]
    assert kinds(history).count("activity_scheduled") == 2
    assert kinds(history).count("signal_external_sent") == 1
    assert variables == {"cleaned": True}
    for line in NOTES[key]:
        assert "disposed" in line and "finally" in line, line


# ---- item 20: workflow.cancel_external ---------------------------------------------------------


@workflow.defn
async def cancels_others(target: str, done_target: str) -> list[str]:
    outcomes = []
    try:
        await workflow.cancel_external(123)  # type: ignore[arg-type]
    except TypeError as err:
        outcomes.append(f"bad input: {err}")
    await workflow.cancel_external(target, reason="superseded by a newer order")
    outcomes.append("delivered")
    try:
        await workflow.cancel_external("no-such-instance")
    except ostinato.WorkflowNotFoundError as err:
        outcomes.append(f"not found: {err}")
    try:
        await workflow.cancel_external(done_target)
    except ostinato.WorkflowNotRunningError:
        outcomes.append("not running")
    return outcomes


@workflow.defn
async def finishes_at_once() -> str:
    return "done"


async def test_cancel_external(backend_url: str, cache_size: int) -> None:
    async with (
        harness(backend_url, cache_size) as h,
        h.worker([cancels_others, reports_cancel_reason, finishes_at_once]),
    ):
        target = await h.client.start_workflow(reports_cancel_reason, id="ext-target")
        done = await h.client.start_workflow(finishes_at_once, id="ext-done")
        assert await done.result(timeout=20) == "done"
        await eventually(lambda: has_event(h, "ext-target", "task_started"))
        canceller = await h.client.start_workflow(cancels_others, "ext-target", "ext-done")
        outcomes = await canceller.result(timeout=20)
        assert await target.result(timeout=20) == ["superseded by a newer order"] * 2
        await h.check_replay(cancels_others, canceller)
        await h.check_replay(reports_cancel_reason, target)
        history = kinds(await canceller.history())
    assert outcomes[0].startswith("bad input: ") and "instance_id" in outcomes[0]
    assert outcomes[1] == "delivered"
    assert outcomes[2].startswith("not found: ") and "no-such-instance" in outcomes[2]
    assert outcomes[3] == "not running"
    # Recorded commands, not activities: the cancel happens once and replays.
    assert history.count("external_cancel_requested") == 3
    assert history.count("signal_external_completed") == 3
    assert "activity_scheduled" not in history


# ---- item 5: a command cancelled in the step that issued it leaves no trace -------------------

ECHOED: dict[str, list[str]] = {}


@activity.defn
async def echo_seen(key: str, value: str) -> str:
    ECHOED.setdefault(key, []).append(value)
    return value


@workflow.defn
async def cancels_at_once(key: str) -> list[str]:
    outcome = []
    child = workflow.start_child(child_doubles, 1, id=f"{key}-never-started")
    child.cancel()
    try:
        await child
    except asyncio.CancelledError:
        outcome.append("child cancelled")
    act = workflow.start_activity(echo_seen, key, "never run")
    act.cancel()
    try:
        await act
    except asyncio.CancelledError:
        outcome.append("activity cancelled")
    sleeper = asyncio.create_task(workflow.sleep(30))
    await asyncio.sleep(0)  # the task starts its timer in this same step
    sleeper.cancel()
    try:
        await sleeper
    except asyncio.CancelledError:
        outcome.append("timer cancelled")
    outcome.append(await workflow.execute_activity(echo_seen, key, "kept"))
    return outcome


async def test_cancel_in_the_same_step_leaves_no_trace(backend_url: str, cache_size: int) -> None:
    key = f"same-step-{backend_url.split(':')[0]}-{cache_size}"
    async with (
        harness(backend_url, cache_size) as h,
        h.worker([cancels_at_once, child_doubles], [echo_seen, echo_int]),
    ):
        handle = await h.client.start_workflow(cancels_at_once, key)
        result = await handle.result(timeout=20)
        await h.check_replay(cancels_at_once, handle)
        history = await handle.history()
        with pytest.raises(ostinato.WorkflowNotFoundError):
            await h.client.get_handle(f"{key}-never-started").describe()
    assert result == ["child cancelled", "activity cancelled", "timer cancelled", "kept"]
    assert ECHOED[key] == ["kept"]
    assert kinds(history) == [
        "task_started",
        "workflow_started",
        "activity_scheduled",
        "task_started",
        "activity_completed",
        "workflow_completed",
    ]
    # The ids of the withdrawn commands stay taken: the kept activity is command 4.
    assert history[2]["id"] == 4


async def test_finally_blocks_of_evicted_runs_record_nothing(backend_url: str) -> None:
    """With room for one run in the cache, starting a second run evicts the first while the
    worker keeps running: the first run's finally: block runs then, and records nothing."""
    first, second = (f"evict-{n}-{backend_url.split(':')[0]}" for n in (1, 2))
    async with harness(backend_url, 1) as h, h.worker([cleans_up], [note]):
        one = await h.client.start_workflow(cleans_up, first)
        await eventually(lambda: has_event(h, one.id, "activity_completed"))
        two = await h.client.start_workflow(cleans_up, second)
        await eventually(lambda: has_event(h, two.id, "activity_completed"))
        await eventually(lambda: asyncio.sleep(0, bool(NOTES.get(first))), what="eviction")
        for handle in (one, two):
            await handle.signal("go")
            assert await handle.result(timeout=20) == "done"
            await h.check_replay(cleans_up, handle)
        history = await one.history()
    assert RAN[first] == ["started", "cleanup"]
    assert kinds(history).count("activity_scheduled") == 2
    assert all("disposed" in line for line in NOTES[first])
