"""Versioning with ``workflow.patched`` / ``workflow.deprecate_patch`` across three deploys.

The workflow ``shipping`` exists in three versions:

- v1 ships with the legacy carrier;
- v2 guards the switch to the express carrier with ``patched("express-carrier")``: runs that
  already shipped with v1 keep the legacy path on replay, new runs record a marker and take
  the new one;
- v3, deployed once every v1 run has closed, declares ``deprecate_patch("express-carrier")``
  and only has the new path: it still replays v2's histories (the marker is accepted), and
  new runs record no marker.

Live workers serve each version in turn against every backend (sticky cache and full replay),
and ``ostinato.testing.replay`` checks which histories each version can replay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import ostinato
import pytest
from e2e_support import Harness, harness
from ostinato import activity, workflow
from ostinato.testing import replay


@pytest.fixture(params=[1000, 0], ids=["sticky", "replay"])
def cache_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@activity.defn
async def legacy_ship(order: str) -> str:
    return f"{order}: legacy carrier"


@activity.defn
async def express_ship(order: str) -> str:
    return f"{order}: express carrier"


@activity.defn
async def notify(order: str) -> str:
    return f"{order}: customer notified"


ACTIVITIES = (legacy_ship, express_ship, notify)


async def _finish(order: str, shipped: str) -> list[str]:
    """The part every version shares: wait for delivery, then notify."""
    await workflow.signal_channel("delivered").receive()
    return [shipped, await workflow.execute_activity(notify, order)]


@workflow.defn(name="shipping")
async def shipping_v1(order: str) -> list[str]:
    shipped = await workflow.execute_activity(legacy_ship, order)
    return await _finish(order, shipped)


@workflow.defn(name="shipping")
async def shipping_v2(order: str) -> list[str]:
    if workflow.patched("express-carrier"):
        shipped = await workflow.execute_activity(express_ship, order)
    else:
        shipped = await workflow.execute_activity(legacy_ship, order)
    return await _finish(order, shipped)


@workflow.defn(name="shipping")
async def shipping_v3(order: str) -> list[str]:
    workflow.deprecate_patch("express-carrier")
    shipped = await workflow.execute_activity(express_ship, order)
    return await _finish(order, shipped)


LEGACY = "legacy carrier"
EXPRESS = "express carrier"


async def _waiting(h: Harness, instance_id: str) -> None:
    """Wait until the run has shipped and waits for the delivery signal."""
    deadline = time.monotonic() + 10
    while True:
        history = await h.client.get_handle(instance_id).history()
        if any(e["kind"] == "activity_completed" for e in history):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{instance_id} did not ship: {history}")
        await asyncio.sleep(0.02)


async def _start(h: Harness, instance_id: str) -> ostinato.WorkflowHandle[Any]:
    handle = await h.client.start_workflow("shipping", instance_id, id=instance_id)
    await _waiting(h, instance_id)
    return handle


async def _deliver(handle: ostinato.WorkflowHandle[Any]) -> list[str]:
    await handle.signal("delivered")
    result: list[str] = await handle.result(timeout=20)
    return result


def _markers(history: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in history if e["kind"] == "marker_recorded"]


def _replays(version: Callable[..., Any], history: list[dict[str, Any]]) -> bool:
    try:
        replay(version, history)
    except ostinato.NonDeterminismError:
        return False
    return True


async def test_three_deploys(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        # Deploy v1: a run ships with the legacy carrier and waits for delivery.
        async with h.worker([shipping_v1], ACTIVITIES):
            old = await _start(h, "old")

        # Deploy v2 while "old" is in flight: it keeps the legacy path; new runs switch.
        async with h.worker([shipping_v2], ACTIVITIES):
            assert (await _deliver(old))[0].endswith(LEGACY)
            new = await _start(h, "new")

        # Every v1 run has closed: deploy v3 while "new" (a v2 run) is in flight.
        async with h.worker([shipping_v3], ACTIVITIES):
            assert (await _deliver(new))[0].endswith(EXPRESS)
            newest = await _start(h, "newest")
            assert (await _deliver(newest))[0].endswith(EXPRESS)

        histories = {
            "old": await old.history(),
            "new": await new.history(),
            "newest": await newest.history(),
        }

    assert _markers(histories["old"]) == []
    assert _markers(histories["new"]) == ["express-carrier"]
    assert _markers(histories["newest"]) == []  # deprecate_patch records no marker

    # Which version replays which history: each deploy replays what was in flight when it
    # went out, and v1 cannot replay anything recorded after the change.
    versions = {"v1": shipping_v1, "v2": shipping_v2, "v3": shipping_v3}
    table = {
        (v, name): _replays(fn, history)
        for v, fn in versions.items()
        for name, history in histories.items()
    }
    assert table == {
        ("v1", "old"): True,
        ("v1", "new"): False,
        ("v1", "newest"): False,
        ("v2", "old"): True,
        ("v2", "new"): True,
        ("v2", "newest"): False,  # no rolling back past a deprecation
        ("v3", "old"): False,  # why v3 waits until every v1 run has closed
        ("v3", "new"): True,
        ("v3", "newest"): True,
    }


async def test_deploy_without_patch_blocks_until_fixed(backend_url: str) -> None:
    """Deploying v3 while a v1 run is in flight: the run is blocked, not failed, with the
    reason in ``describe()``; deploying v2 lets it finish on its old path."""
    async with harness(backend_url, 1000) as h:
        async with h.worker([shipping_v1], ACTIVITIES):
            old = await _start(h, "stuck")
        async with h.worker([shipping_v3], ACTIVITIES):
            await old.signal("delivered")
            deadline = time.monotonic() + 10
            while (desc := await old.describe()).blocked_reason is None:
                assert time.monotonic() < deadline, "the run was not marked blocked"
                await asyncio.sleep(0.02)
            assert desc.status == "running" and desc.is_blocked
            assert "NonDeterminismError" in desc.blocked_reason
            assert "legacy_ship" in desc.blocked_reason and "express_ship" in desc.blocked_reason
        async with h.worker([shipping_v2], ACTIVITIES):
            result = await old.result(timeout=20)  # retried after the back-off
        assert result[0].endswith(LEGACY)
        desc = await old.describe()
        assert desc.status == "completed" and desc.blocked_reason is None
        replay(shipping_v2, await old.history())


def test_patched_is_sticky_within_a_run() -> None:
    """A change id that returned True once returns True for the rest of the run, and a
    ``patched()`` that returns False takes no command id (later ids stay aligned)."""

    seen: list[list[bool]] = []

    @workflow.defn(name="checks")
    async def checks() -> None:
        first = workflow.patched("a")
        again = workflow.patched("a")
        await workflow.sleep(0.01)
        seen.append([first, again, workflow.patched("a")])

    history: list[dict[str, Any]] = [
        {"seq": 1, "kind": "task_started", "time": 1_000_000},
        {
            "seq": 2,
            "kind": "workflow_started",
            "name": "checks",
            "input": [],
            "info": {"run_id": "0" * 32},
        },
        {"seq": 3, "kind": "marker_recorded", "id": 1, "name": "a"},
        {"seq": 4, "kind": "timer_started", "id": 2, "fire_at": 1_010_000},
        {"seq": 5, "kind": "task_started", "time": 1_010_000},
        {"seq": 6, "kind": "timer_fired", "id": 2},
        {"seq": 7, "kind": "workflow_completed", "result": None},
    ]
    replay(checks, history)
    assert seen.pop() == [True, True, True]
    # The same history without the marker: the run predates the change.
    old = [dict(e) for e in history if e["kind"] != "marker_recorded"]
    for seq, event in enumerate(old, start=1):
        event["seq"] = seq
    old[2]["id"] = old[4]["id"] = 1
    replay(checks, old)
    assert seen.pop() == [False, False, False]


# ---- patched() keeps its answer for the whole run ---------------------------------------------


@activity.defn
async def step_path(path: str) -> str:
    return path


@workflow.defn(name="two_guards")
async def two_guards_v1() -> list[str]:
    first = await workflow.execute_activity(step_path, "old")
    await workflow.signal_channel("go").receive()
    return [first, await workflow.execute_activity(step_path, "old")]


@workflow.defn(name="two_guards")
async def two_guards_v2() -> list[str]:
    """Two guards on one change: a run must take the same path at both."""
    path = "new" if workflow.patched("two-guards") else "old"
    first = await workflow.execute_activity(step_path, path)
    await workflow.signal_channel("go").receive()
    path = "new" if workflow.patched("two-guards") else "old"
    return [first, await workflow.execute_activity(step_path, path)]


async def test_patched_keeps_its_answer_after_replay_caught_up(
    backend_url: str, cache_size: int
) -> None:
    """A run started before the change replays ``patched()`` as False; a later ``patched()``
    of the same change, run after replay has caught up, must also say False (and record no
    marker), on a live worker and when the whole history is replayed."""
    async with harness(backend_url, cache_size) as h:
        async with h.worker([two_guards_v1], [step_path]):
            old = await h.client.start_workflow("two_guards", id="two-guards-old")
            await _waiting(h, "two-guards-old")
        async with h.worker([two_guards_v2], [step_path]):
            await old.signal("go")
            assert await old.result(timeout=20) == ["old", "old"]
            new = await h.client.start_workflow("two_guards", id="two-guards-new")
            await _waiting(h, "two-guards-new")
            await new.signal("go")
            assert await new.result(timeout=20) == ["new", "new"]
        history = await old.history()
        new_history = await new.history()
    assert _markers(history) == []
    assert _markers(new_history) == ["two-guards"]
    replay(two_guards_v2, history)
    replay(two_guards_v2, new_history)
