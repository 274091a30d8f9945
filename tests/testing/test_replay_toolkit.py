"""replay / replay_directory / load_history / save_history against recorded histories."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from ostinato import HistoryCorruptError, NonDeterminismError, activity, workflow
from ostinato.testing import (
    WorkflowEnvironment,
    load_history,
    replay,
    replay_directory,
    save_history,
)

START = datetime(2030, 1, 1, tzinfo=timezone.utc)


@activity.defn
async def reserve(sku: str) -> str:
    return f"res-{sku}"


@activity.defn
async def charge(amount: int) -> str:
    return f"paid-{amount}"


@activity.defn
async def notify(text: str) -> None:
    return None


@workflow.defn(name="child.step")
async def child_step(n: int) -> int:
    await workflow.sleep(60)
    return n * 2


# Version 1 of "orders", the one whose histories are recorded.
@workflow.defn(name="orders")
async def orders_v1(sku: str) -> list[Any]:
    token = await workflow.side_effect(lambda: "tok")
    lucky = workflow.random().randint(0, 100)
    r = await workflow.execute_activity(reserve, sku)
    approvals = workflow.signal_channel("approve", bool)
    approved = await approvals.receive(timeout=timedelta(days=2).total_seconds())
    await workflow.sleep(timedelta(days=1))
    doubled = await workflow.execute_child(child_step, 21, id=f"child-{sku}")
    paid = await workflow.execute_activity(charge, 100)
    return [token, lucky, r, approved, doubled, paid]


# A deploy that swapped the order of two steps: not compatible.
@workflow.defn(name="orders")
async def orders_swapped(sku: str) -> list[Any]:
    token = await workflow.side_effect(lambda: "tok")
    lucky = workflow.random().randint(0, 100)
    paid = await workflow.execute_activity(charge, 100)
    r = await workflow.execute_activity(reserve, sku)
    return [token, lucky, r, paid]


# A deploy that added a step in the middle, guarded by patched(): compatible.
@workflow.defn(name="orders")
async def orders_patched(sku: str) -> list[Any]:
    token = await workflow.side_effect(lambda: "tok")
    lucky = workflow.random().randint(0, 100)
    r = await workflow.execute_activity(reserve, sku)
    if workflow.patched("notify-after-reserve"):
        await workflow.execute_activity(notify, "reserved")
    approvals = workflow.signal_channel("approve", bool)
    approved = await approvals.receive(timeout=timedelta(days=2).total_seconds())
    await workflow.sleep(timedelta(days=1))
    doubled = await workflow.execute_child(child_step, 21, id=f"child-{sku}")
    paid = await workflow.execute_activity(charge, 100)
    return [token, lucky, r, approved, doubled, paid]


# The same change without patched(): not compatible.
@workflow.defn(name="orders")
async def orders_unpatched(sku: str) -> list[Any]:
    r = await workflow.execute_activity(reserve, sku)
    await workflow.execute_activity(notify, "reserved")
    return [r]


@workflow.defn(name="other")
async def other(sku: str) -> str:
    return sku


async def record(tmp_path: Path, *skus: str) -> list[list[dict[str, Any]]]:
    """Run orders_v1 for each sku and save the histories under tmp_path/histories."""
    histories = []
    async with WorkflowEnvironment(
        workflows=[orders_v1, child_step], activities=[reserve, charge], start_time=START
    ) as env:
        for sku in skus:
            handle = await env.client.start_workflow(orders_v1, sku, id=f"order-{sku}")
            env.at(timedelta(hours=5), handle.signal, "approve", True)
            result = await handle.result(timeout=10)
            assert result[2:] == [f"res-{sku}", True, 42, "paid-100"]
            await save_history(handle, tmp_path / "histories" / sku / "order.json")
            histories.append(await handle.history())
    return histories


async def test_a_recorded_history_replays_against_the_same_code(tmp_path: Path) -> None:
    (history,) = await record(tmp_path, "book")
    replay(orders_v1, history)  # dicts from handle.history()
    replay(orders_v1, [orjson.dumps(e) for e in history])  # event bytes
    path = tmp_path / "histories" / "book" / "order.json"
    replay(orders_v1, path)  # a saved file
    replay(orders_v1, str(path))
    replay([other, orders_v1], history)  # the history's workflow name picks the code
    assert load_history(path) == load_history(history)


async def test_save_history_writes_a_json_list(tmp_path: Path) -> None:
    (history,) = await record(tmp_path, "lamp")
    saved = orjson.loads((tmp_path / "histories" / "lamp" / "order.json").read_bytes())
    assert saved == history
    assert saved[1]["kind"] == "workflow_started" and saved[-1]["kind"] == "workflow_completed"


async def test_changed_code_raises_nondeterminism_naming_the_event(tmp_path: Path) -> None:
    (history,) = await record(tmp_path, "book")
    with pytest.raises(NonDeterminismError) as info:
        replay(orders_swapped, history)
    error = info.value
    scheduled = [e for e in history if e["kind"] == "activity_scheduled"]
    assert error.seq == scheduled[0]["seq"]  # the first mismatching event
    assert "reserve" in str(error) and "charge" in str(error)

    with pytest.raises(NonDeterminismError) as info:
        replay(orders_unpatched, history)
    assert info.value.seq == 3 and "side_effect" in str(info.value)


async def test_a_patched_change_replays(tmp_path: Path) -> None:
    (history,) = await record(tmp_path, "book")
    replay(orders_patched, history)


async def test_the_first_mismatch_is_reported_when_code_stops_early(tmp_path: Path) -> None:
    @workflow.defn(name="orders")
    async def orders_short(sku: str) -> list[Any]:
        await workflow.side_effect(lambda: "tok")
        workflow.random().randint(0, 100)
        return [await workflow.execute_activity(reserve, sku)]

    (history,) = await record(tmp_path, "book")
    with pytest.raises(NonDeterminismError) as info:
        replay(orders_short, history)
    assert info.value.seq > 0


async def test_a_partial_history_of_a_running_workflow_replays() -> None:
    async with WorkflowEnvironment(
        workflows=[orders_v1, child_step], activities=[reserve, charge], start_time=START
    ) as env:
        handle = await env.client.start_workflow(orders_v1, "book")
        await env.idle()  # blocked on the approval signal
        history = await handle.history()
        assert history[-1]["kind"] != "workflow_completed"
        replay(orders_v1, history)
        with pytest.raises(NonDeterminismError):
            replay(orders_swapped, history)
        await handle.terminate()


async def test_wrong_workflow_is_named(tmp_path: Path) -> None:
    (history,) = await record(tmp_path, "book")
    with pytest.raises(NonDeterminismError, match=r"'orders'.*other"):
        replay(other, history)


def test_unreadable_histories(tmp_path: Path) -> None:
    not_a_list = tmp_path / "bad.json"
    not_a_list.write_text('{"kind": "workflow_started"}')
    with pytest.raises(HistoryCorruptError, match="JSON list"):
        replay(orders_v1, not_a_list)
    with pytest.raises(HistoryCorruptError, match="no workflow_started"):
        replay(orders_v1, [{"seq": 1, "kind": "timer_fired", "id": 1}])
    with pytest.raises(HistoryCorruptError, match="not JSON"):
        replay(orders_v1, [b"{nope"])


async def test_replay_directory_protects_a_deploy(tmp_path: Path) -> None:
    await record(tmp_path, "book", "lamp", "desk")
    directory = tmp_path / "histories"
    files = replay_directory([orders_v1, child_step], directory)
    assert [f.parent.name for f in files] == ["book", "desk", "lamp"]
    assert replay_directory([orders_patched], directory) == files

    with pytest.raises(NonDeterminismError) as info:
        replay_directory([orders_swapped], directory)
    assert "book" in str(info.value) and "order.json" in str(info.value)
    assert info.value.seq > 0


async def test_replay_directory_of_child_histories(tmp_path: Path) -> None:
    async with WorkflowEnvironment(
        workflows=[orders_v1, child_step], activities=[reserve, charge], start_time=START
    ) as env:
        handle = await env.client.start_workflow(orders_v1, "book")
        env.at(0, handle.signal, "approve", False)
        await handle.result(timeout=10)
        child = env.client.get_handle("child-book")
        await save_history(child, tmp_path / "child.json")
        await save_history(handle, tmp_path / "parent.json")
    assert len(replay_directory([orders_v1, child_step], tmp_path)) == 2
    with pytest.raises(NonDeterminismError, match=r"child\.step"):
        replay_directory([orders_v1], tmp_path)


def test_empty_directory_replays_nothing(tmp_path: Path) -> None:
    assert replay_directory([orders_v1], tmp_path) == []


async def test_replay_is_a_plain_function() -> None:
    # Callable from sync code and from inside a running event loop alike.
    assert not asyncio.iscoroutinefunction(replay)
