"""Tags and listing filters end to end: start_workflow(tags=), children's tags,
continue-as-new keeping them, every list_workflows filter on every backend, bad input refused
at the call with nothing stored, and the replay of a run that tags its children."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import ostinato
import pytest
from e2e_support import harness
from ostinato import workflow
from ostinato.testing import replay


@workflow.defn
async def leaf(n: int) -> int:
    return n


@workflow.defn
async def parent_with_tagged_children(n: int) -> list[int]:
    first = await workflow.execute_child(leaf, n, id=f"leaf-{n}", tags={"role": "leaf"})
    second = await workflow.execute_child(leaf, n + 1, id=f"plain-{n}")
    return [first, second]


@workflow.defn
async def countdown(n: int) -> int:
    if n > 0:
        workflow.continue_as_new(n - 1)
    return n


@workflow.defn
async def waits_forever() -> None:
    await workflow.wait_condition(lambda: False)


async def _ids(client: ostinato.Client, **filters: Any) -> list[str]:
    page, _ = await client.list_workflows(**filters)
    return [d.instance_id for d in page]


async def test_tags_on_start_children_and_continue_as_new(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        async with h.worker([parent_with_tagged_children, leaf, countdown]):
            parent = await h.client.start_workflow(
                parent_with_tagged_children, 1, id="p", tags={"customer": "ada"}
            )
            assert await parent.result(timeout=20) == [1, 2]
            loop = await h.client.start_workflow(countdown, 3, id="loop", tags={"plan": "pro"})
            assert await loop.result(timeout=20) == 0
        assert (await parent.describe()).tags == {"customer": "ada"}
        assert (await h.client.get_handle("leaf-1").describe()).tags == {"role": "leaf"}
        assert (await h.client.get_handle("plain-1").describe()).tags == {}
        described = await loop.describe()
        assert described.tags == {"plan": "pro"} and described.history_length > 0
        assert await _ids(h.client, tags={"plan": "pro"}) == ["loop"]
        assert await _ids(h.client, tags={"role": "leaf"}) == ["leaf-1"]
        # A history with a tagged child replays (the tags are part of the command).
        replay(parent_with_tagged_children, await parent.history())


async def test_list_workflows_filters(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        c = h.client
        before = datetime.now(timezone.utc) - timedelta(seconds=1)
        async with h.worker([leaf, waits_forever]):
            done = await c.start_workflow(leaf, 1, id="done", tags={"customer": "ada"})
            await done.result(timeout=20)
            await c.start_workflow(waits_forever, id="open-ada", tags={"customer": "ada"})
            await c.start_workflow(
                waits_forever, id="open-bob", queue="other", tags={"customer": "bob"}
            )
        after = datetime.now(timezone.utc) + timedelta(seconds=1)
        assert await _ids(c, tags={"customer": "ada"}) == ["open-ada", "done"]
        assert await _ids(c, tags={"customer": "ada"}, status="completed") == ["done"]
        assert await _ids(c, name=waits_forever) == ["open-bob", "open-ada"]
        assert await _ids(c, name="leaf") == await _ids(c, workflow=leaf) == ["done"]
        assert await _ids(c, queue="other") == ["open-bob"]
        assert await _ids(c, started_after=before, started_before=after) == [
            "open-bob",
            "open-ada",
            "done",
        ]
        assert await _ids(c, started_after=after) == []
        assert await _ids(c, started_before=before) == []
        assert await _ids(c, closed_after=before) == ["done"]
        assert await _ids(c, closed_after=after) == []
        # Pages under a filter: every match once, newest first.
        page, cursor = await c.list_workflows(tags={"customer": "ada"}, limit=1)
        assert [d.instance_id for d in page] == ["open-ada"] and cursor is not None
        page, cursor = await c.list_workflows(tags={"customer": "ada"}, limit=1, cursor=cursor)
        assert [d.instance_id for d in page] == ["done"] and cursor is None
        assert page[0].tags == {"customer": "ada"}


async def test_list_workflows_blocked(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        await h.client.start_workflow(waits_forever, id="fine")
        await h.client.start_workflow(waits_forever, id="stuck")
        tasks = await h.backend.claim_workflow_tasks(["default"], 30, 10)
        for task in tasks:
            if task.instance_id == "stuck":
                await h.backend.fail_workflow_task(task, "NonDeterminismError: at seq 3", 1e12)
            else:
                await h.backend.release_workflow_task(task)
        blocked, _ = await h.client.list_workflows(status="blocked")
        assert [d.instance_id for d in blocked] == ["stuck"]
        assert blocked[0].is_blocked and "NonDeterminismError" in (blocked[0].blocked_reason or "")
        assert sorted(await _ids(h.client, status="running")) == ["fine", "stuck"]


BAD_TAGS: list[tuple[Any, type[Exception], str]] = [
    ({f"k{i}": "v" for i in range(33)}, ValueError, "at most 32"),
    ({"k" * 65: "v"}, ValueError, "limit is 64"),
    ({"k": "v" * 257}, ValueError, "limit is 256"),
    ({"": "v"}, ValueError, "must not be empty"),
    ({"k": 3}, TypeError, "must be a string"),
    ({3: "v"}, TypeError, "must be a string"),
    ({"k\x00": "v"}, ValueError, "NUL"),
    ([("k", "v")], TypeError, "dict of str to str"),
]


@pytest.mark.parametrize(("tags", "error", "match"), BAD_TAGS)
async def test_bad_tags_are_refused_at_the_call(
    tags: Any, error: type[Exception], match: str
) -> None:
    async with harness("memory://", 1000) as h:
        with pytest.raises(error, match=match):
            await h.client.start_workflow(leaf, 1, id="x", tags=tags)
        with pytest.raises(error, match=match):
            await h.client.list_workflows(tags=tags)
        assert await _ids(h.client) == []


async def test_bad_child_tags_fail_in_the_workflow() -> None:
    @workflow.defn(name="bad_child_tags")
    async def bad_child_tags() -> str:
        try:
            workflow.start_child(leaf, 1, tags={"k": "v" * 300})
        except ValueError as exc:
            return str(exc)
        return "accepted"

    async with harness("memory://", 1000) as h:
        message = await h.run(bad_child_tags)
    assert "start_child() tags" in message and "256" in message


async def test_bad_list_filters_are_refused() -> None:
    async with harness("memory://", 1000) as h:
        c = h.client
        naive = datetime(2026, 1, 1)
        with pytest.raises(ValueError, match="started_after must be timezone-aware"):
            await c.list_workflows(started_after=naive)
        with pytest.raises(TypeError, match="closed_after must be a datetime"):
            await c.list_workflows(closed_after=1234.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name= or workflow="):
            await c.list_workflows(name="a", workflow="b")
        with pytest.raises(ValueError, match="queue must not contain a NUL"):
            await c.list_workflows(queue="q\x00")
        with pytest.raises(ValueError, match="'blocked'"):
            await c.list_workflows(status="stuck")


async def _fill_for_cli(url: str) -> None:
    async with harness(url, 1000) as h:
        await h.client.start_workflow(waits_forever, id="ada-1", tags={"customer": "ada"})
        await h.client.start_workflow(
            waits_forever, id="ada-2", queue="slow", tags={"customer": "ada", "plan": "pro"}
        )
        await h.client.start_workflow(waits_forever, id="bob-1", tags={"customer": "bob"})
        tasks = await h.backend.claim_workflow_tasks(["default"], 30, 10)
        for task in tasks:
            if task.instance_id == "bob-1":
                await h.backend.fail_workflow_task(task, "NonDeterminismError: at seq 3", 1e12)
            else:
                await h.backend.release_workflow_task(task)


def test_cli_list_filters_by_tag_queue_and_blocked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    asyncio.run(_fill_for_cli(url))

    def listed(*args: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-m", "ostinato", "list", url, "--json", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return [w["instance_id"] for w in orjson.loads(out.stdout)["workflows"]]

    assert listed("--tag", "customer=ada") == ["ada-2", "ada-1"]
    assert listed("--tag", "customer=ada", "--tag", "plan=pro") == ["ada-2"]
    assert listed("--queue", "slow") == ["ada-2"]
    assert listed("--status", "blocked") == ["bob-1"]
    bad = subprocess.run(
        [sys.executable, "-m", "ostinato", "list", url, "--tag", "novalue"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "KEY=VALUE tag" in bad.stderr
