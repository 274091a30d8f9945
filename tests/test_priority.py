"""Priority (docs/queues.md "Priority"): bad input refused at the call site with nothing
stored, higher priority run first by real workers, the priority shown by describe() and kept
by continue-as-new, activity priority replayed from history (incremental and full, including
histories from before priorities), and aging driven by the virtual clock of
``ostinato.testing.WorkflowEnvironment``. The claim order itself is the conformance suite's
``PriorityTests`` (every backend)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import ostinato
import pytest
from ostinato import activity, workflow
from ostinato.testing import WorkflowEnvironment, replay

# ---- bad input ----------------------------------------------------------------------------

BAD_PRIORITIES = [
    (-1, ValueError, "priority must be between 0 and 100"),
    (101, ValueError, "priority must be between 0 and 100"),
    (1.5, TypeError, "priority must be an int, not float"),
    (True, TypeError, "priority must be an int, not bool"),
    ("3", TypeError, "priority must be an int, not str"),
    (None, TypeError, "priority must be an int, not NoneType"),
]


@workflow.defn
async def noop() -> str:
    return "ok"


@pytest.mark.parametrize(("priority", "error", "match"), BAD_PRIORITIES)
async def test_a_bad_start_priority_is_refused_and_nothing_is_stored(
    priority: object, error: type[Exception], match: str
) -> None:
    client = ostinato.Client(ostinato.connect("memory://"))
    with pytest.raises(error, match=match):
        await client.start_workflow(noop, id="w", priority=priority)  # type: ignore[arg-type]
    assert (await client.list_workflows())[0] == []


def test_the_sync_client_takes_and_checks_priority() -> None:
    client = ostinato.SyncClient("memory://")
    try:
        with pytest.raises(ValueError, match="priority must be between 0 and 100"):
            client.start_workflow(noop, id="w", priority=500)
        handle = client.start_workflow(noop, id="w", priority=100)
        assert handle.describe().priority == 100
    finally:
        client.close()


@activity.defn
async def note(label: str) -> str:
    _ran.append(label)
    return label


_ran: list[str] = []


@workflow.defn
async def bad_activity_priority(priority: object) -> str:
    try:
        await workflow.execute_activity(note, "x", priority=priority)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "scheduled"


@workflow.defn
async def bad_child_priority(priority: object) -> str:
    try:
        await workflow.execute_child(noop, priority=priority)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "started"


@pytest.mark.parametrize(("priority", "error", "match"), BAD_PRIORITIES[:3])
async def test_a_bad_activity_or_child_priority_is_refused_where_it_is_given(
    priority: object, error: type[Exception], match: str
) -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with ostinato.Worker(
        backend, workflows=[bad_activity_priority, bad_child_priority, noop], activities=[note]
    ):
        for wf, what in (
            (bad_activity_priority, "start_activity"),
            (bad_child_priority, "start_child"),
        ):
            handle = await client.start_workflow(wf, priority)
            result = await handle.result(timeout=30)
            assert result.startswith(f"{error.__name__}: {what}() priority"), result
            assert match.split(" must ")[1] in result
            kinds = {e["kind"] for e in await handle.history()}
            assert not kinds & {"activity_scheduled", "child_scheduled"}


# ---- run by workers -------------------------------------------------------------------------


@workflow.defn
async def fan_out(priorities: list[int]) -> list[str]:
    calls = [
        workflow.execute_activity(note, f"p{p}-{i}", queue="one-at-a-time", priority=p)
        for i, p in enumerate(priorities)
    ]
    return list(await asyncio.gather(*calls))


async def test_workers_run_higher_priority_activities_first(tmp_path: Path) -> None:
    backend = ostinato.connect(f"sqlite:///{tmp_path / 'p.db'}")
    client = ostinato.Client(backend)
    await client.set_queue_limits("one-at-a-time", max_concurrent=1)
    _ran.clear()
    async with ostinato.Worker(
        backend, workflows=[fan_out], activities=[note], queues=("default", "one-at-a-time")
    ):
        handle = await client.start_workflow(fan_out, [0, 50, 10, 50, 100, 0])
        assert await handle.result(timeout=30) == [
            "p0-0", "p50-1", "p10-2", "p50-3", "p100-4", "p0-5",
        ]  # fmt: skip
        history = await handle.history()
    await backend.close()
    # All were scheduled in one task; one at a time, the highest first, equal ones in order.
    assert _ran == ["p100-4", "p50-1", "p50-3", "p10-2", "p0-0", "p0-5"]
    scheduled = [e for e in history if e["kind"] == "activity_scheduled"]
    assert [e["options"].get("priority", 0) for e in scheduled] == [0, 50, 10, 50, 100, 0]
    # Unprioritised activities' options are what they were before priorities existed.
    assert "priority" not in scheduled[0]["options"]


@workflow.defn
async def counting(n: int) -> int:
    if n > 0:
        workflow.continue_as_new(n - 1)
    return n


async def test_describe_shows_the_priority_and_continue_as_new_keeps_it() -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with ostinato.Worker(backend, workflows=[counting, noop]):
        handle = await client.start_workflow(counting, 2, id="c", priority=42)
        assert await handle.result(timeout=30) == 0
        # 0: the run that returned is the third of the chain, and has the first's priority.
        assert (await handle.describe()).priority == 42
        plain = await client.start_workflow(noop)
        await plain.result(timeout=30)
        assert (await plain.describe()).priority == 0
    listed, _ = await client.list_workflows()
    assert {d.instance_id: d.priority for d in listed}["c"] == 42


# ---- replay ---------------------------------------------------------------------------------


@workflow.defn
async def prioritised_steps(priority: int) -> str:
    first = await workflow.execute_activity(note, "a", priority=priority)
    await workflow.sleep(1)
    second = await workflow.execute_activity(note, "b", priority=priority + 1)
    return first + second


def _without_priorities(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The history as a version of ostinato without priorities wrote it."""
    out = []
    for event in history:
        if event["kind"] == "activity_scheduled":
            options = {k: v for k, v in event["options"].items() if k != "priority"}
            event = {**event, "options": options}
        out.append(event)
    return out


@pytest.mark.parametrize("cache_size", [0, 100])  # every task a full replay / incremental
async def test_activity_priority_replays(tmp_path: Path, cache_size: int) -> None:
    backend = ostinato.connect(f"sqlite:///{tmp_path / 'r.db'}")
    client = ostinato.Client(backend)
    async with ostinato.Worker(
        backend,
        workflows=[prioritised_steps],
        activities=[note],
        workflow_cache_size=cache_size,
    ):
        handle = await client.start_workflow(prioritised_steps, 7)
        assert await handle.result(timeout=30) == "ab"
        history = await handle.history()
    await backend.close()
    scheduled = [e for e in history if e["kind"] == "activity_scheduled"]
    assert [e["options"]["priority"] for e in scheduled] == [7, 8]
    replay(prioritised_steps, history)
    # The recorded command is kept on replay: a history from before priorities (no member,
    # priority 0) replays under code that now gives one, as does a changed priority.
    replay(prioritised_steps, _without_priorities(history))


# ---- aging on the virtual clock --------------------------------------------------------------


async def test_aging_follows_the_virtual_clock() -> None:
    async with WorkflowEnvironment(workflows=[noop]) as env:
        # "later" is served by no worker here: its runs wait, and the claims below show the
        # order a worker would take them in.
        await env.client.start_workflow(noop, id="waited", queue="later")
        await env.sleep(timedelta(minutes=10, seconds=1))  # more than 10 levels' worth
        await env.client.start_workflow(noop, id="urgent", queue="later", priority=10)
        await env.client.start_workflow(noop, id="newer", queue="later", priority=11)
        tasks = []
        while claimed := await env.backend.claim_workflow_tasks(["later"], 30, 1):
            tasks += claimed
        assert [t.instance_id for t in tasks] == ["newer", "waited", "urgent"]
        for task in tasks:
            await env.backend.release_workflow_task(task)
