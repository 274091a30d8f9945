"""Eager dispatch and continuing locally, end to end: a worker serving both a run and its
activities takes them without claims, and falls back to claims when it cannot (no free
slot, a worker without the activities, eager_dispatch=False), with the same histories."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import ostinato
import pytest
from e2e_support import harness
from ostinato import activity, workflow


@activity.defn
async def bump(i: int) -> int:
    await asyncio.sleep(0)
    return i + 1


@workflow.defn
async def three_steps(i: int) -> int:
    for _ in range(3):
        i = await workflow.execute_activity(bump, i)
    return i


@workflow.defn
async def fan_out(i: int) -> list[int]:
    return list(await asyncio.gather(*(workflow.execute_activity(bump, i + k) for k in range(3))))


def count_claims(backend: Any) -> collections.Counter[str]:
    """Counts the tasks the backend's claims hand out, by kind."""
    counts: collections.Counter[str] = collections.Counter()

    def counting(kind: str, claim: Callable[..., Awaitable[list[Any]]]) -> Any:
        async def wrapped(*args: Any, **kwargs: Any) -> list[Any]:
            tasks = await claim(*args, **kwargs)
            counts[kind] += len(tasks)
            return tasks

        return wrapped

    backend.claim_activity_tasks = counting("activity", backend.claim_activity_tasks)
    backend.claim_workflow_tasks = counting("workflow", backend.claim_workflow_tasks)
    return counts


def count_statements(backend: Any) -> collections.Counter[str]:
    """Counts the named statements a PostgreSQL backend sends."""
    seen: collections.Counter[str] = collections.Counter()

    def wrap(call: Callable[..., Awaitable[Any]]) -> Any:
        async def counted(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            seen[query] += 1
            return await call(conn, query, *args, **kwargs)

        return counted

    for name in ("_fetchone", "_fetchall", "_execute"):
        setattr(backend, name, wrap(getattr(backend, name)))
    return seen


def kinds_and_attempts(history: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["kind"], e.get("attempt")) for e in history if e["kind"] != "task_started"]


async def test_one_worker_runs_a_sequence_without_claiming_after_the_start(
    backend_url: str,
) -> None:
    histories = {}
    for eager in (True, False):
        async with harness(backend_url, 100) as h:
            claims = count_claims(h.backend)
            async with h.worker([three_steps], [bump], eager_dispatch=eager) as worker:
                handle = await h.client.start_workflow(three_steps, 1, id=f"seq-{eager}")
                assert await handle.result(timeout=20) == 4
            await h.check_replay(three_steps, handle)
            histories[eager] = kinds_and_attempts(await handle.history())
        if eager:
            # Only the first workflow task was claimed; each activity came with the commit
            # that scheduled it, each later workflow task with the activity's completion.
            assert claims == collections.Counter(workflow=1)
            assert worker.stats["eager_activity_tasks"] == 3
            assert worker.stats["local_workflow_tasks"] == 3
        else:
            assert claims == collections.Counter(workflow=4, activity=3)
            assert worker.stats["eager_activity_tasks"] == 0
            assert worker.stats["local_workflow_tasks"] == 0
        assert worker.stats["replays"] == 0
    # The same history either way, every activity on its first attempt.
    assert histories[True] == histories[False]
    assert [a for k, a in histories[True] if k == "activity_completed"] == [1, 1, 1]


async def test_without_a_free_activity_slot_the_rest_is_claimed(backend_url: str) -> None:
    async with harness(backend_url, 100) as h:
        claims = count_claims(h.backend)
        async with h.worker([fan_out], [bump], max_concurrent_activities=1) as worker:
            handle = await h.client.start_workflow(fan_out, 10)
            assert await handle.result(timeout=20) == [11, 12, 13]
        await h.check_replay(fan_out, handle)
    # One slot: one of the three came with the commit, the others were claimed.
    assert worker.stats["eager_activity_tasks"] == 1
    assert claims["activity"] == 2


async def test_workers_serving_one_side_each_take_the_normal_path(backend_url: str) -> None:
    async with harness(backend_url, 100) as h:
        claims = count_claims(h.backend)
        async with (
            h.worker([three_steps], identity="workflows") as workflows,
            h.worker(activities=[bump], identity="activities") as activities,
        ):
            handles = [await h.client.start_workflow(three_steps, i) for i in range(3)]
            assert [await x.result(timeout=20) for x in handles] == [3, 4, 5]
    for worker in (workflows, activities):
        assert worker.stats["eager_activity_tasks"] == worker.stats["local_workflow_tasks"] == 0
    # Four workflow tasks per run, each claimed but a first one handed over by its start
    # (eager start, docs/start-options.md; not every backend does it).
    started_eagerly = workflows.stats["eager_starts"]
    assert claims == collections.Counter(workflow=12 - started_eagerly, activity=9)


async def test_a_worker_without_the_run_cached_does_not_continue_it(backend_url: str) -> None:
    # No cache: no run is left to the worker, so its completions do not take them.
    async with harness(backend_url, 0) as h, h.worker([three_steps], [bump]) as worker:
        handle = await h.client.start_workflow(three_steps, 1)
        assert await handle.result(timeout=20) == 4
    assert worker.stats["eager_activity_tasks"] == 3
    assert worker.stats["local_workflow_tasks"] == 0
    assert worker.stats["replays"] == 3


def test_eager_dispatch_is_checked() -> None:
    with pytest.raises(ValueError, match="eager_dispatch must be True or False"):
        ostinato.Worker(ostinato.connect("memory://"), workflows=[three_steps], eager_dispatch=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)
async def test_postgres_runs_fewer_statements(backend_url: str) -> None:
    """The statements sent to PostgreSQL for 3 sequential 3-activity workflows, with and
    without eager dispatch: no claim of an activity, one claim per workflow."""
    counts: dict[bool, collections.Counter[str]] = {}
    for eager in (False, True):
        async with harness(backend_url, 100) as h:
            backend: Any = h.backend
            seen = count_statements(backend)
            claims = count_claims(backend)
            # Polling rarely: the statements counted are those the workflows cause.
            async with h.worker(
                [three_steps], [bump], eager_dispatch=eager, poll_interval=10
            ) as worker:
                for i in range(3):
                    handle = await h.client.start_workflow(three_steps, i)
                    assert await handle.result(timeout=20) == i + 3
            counts[eager] = seen
            # A first workflow task handed over by its start (eager start) is not claimed.
            started_eagerly = worker.stats["eager_starts"]
            if eager:
                assert claims == collections.Counter(workflow=3 - started_eagerly)
            else:
                assert claims == collections.Counter(workflow=12 - started_eagerly, activity=9)
    eager, plain = counts[True], counts[False]
    assert eager["complete_activity_claiming"] == 9 and eager["complete_activity"] == 0
    # (Claims are counted above: they go through a pipeline, not the statements counted here.)
    assert sum(eager.values()) < 0.7 * sum(plain.values()), (eager, plain)


async def test_history_records_each_eager_attempt_once(backend_url: str) -> None:
    async with harness(backend_url, 100) as h:
        async with h.worker([three_steps, fan_out], [bump]):
            handles = [await h.client.start_workflow(three_steps, i) for i in range(5)]
            handles += [await h.client.start_workflow(fan_out, i) for i in range(5)]
            for handle in handles:
                await handle.result(timeout=20)
        for handle in handles:
            history = await handle.history()
            assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
            completed = [e["id"] for e in history if e["kind"] == "activity_completed"]
            scheduled = [e["id"] for e in history if e["kind"] == "activity_scheduled"]
            assert sorted(completed) == sorted(scheduled) and len(completed) == 3
            assert orjson.dumps(history)  # plain JSON all the way
