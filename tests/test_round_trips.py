"""Round trips saved on a workflow's path (issue 14), each with the behaviour it must keep."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import ostinato
import pytest
from ostinato import _eager_start, workflow
from ostinato.backends import Backend, WorkflowTask


@workflow.defn(name="round_trips.waiter")
async def waiter() -> str:
    return str(await workflow.signal_channel("go").receive())


async def test_result_waits_for_the_run_its_start_created(backend_url: str) -> None:
    """A handle from start_workflow knows its run: result() waits for that run (and the runs
    it continues as), not for whichever run is the id's latest when result() is called."""
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(backend, workflows=[waiter], poll_interval=0.05):
            first = await client.start_workflow(waiter, id="order")
            same = await client.start_workflow(waiter, id="order", id_conflict="use_existing")
            second = await client.start_workflow(
                waiter, id="order", id_conflict="terminate_existing"
            )
            await second.signal("go", "second")
            with pytest.raises(ostinato.WorkflowTerminatedError, match="id_conflict"):
                await first.result(timeout=10)
            # use_existing started nothing: its handle follows the id's latest run.
            assert await same.result(timeout=10) == "second"
            assert await second.result(timeout=10) == "second"
            # Everything else a handle does still goes to the id's latest run.
            assert first.run_id is None
            assert (await first.describe()).run_id == (await second.describe()).run_id
    finally:
        await backend.close()


@workflow.defn(name="round_trips.quick")
async def quick(value: int) -> int:
    return value + 1


async def eventually(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _record_claims(backend: Backend) -> list[str]:
    """The instance ids of the workflow tasks ``backend`` hands out by claim from now on."""
    claimed: list[str] = []
    claim = backend.claim_workflow_tasks

    async def recording(*args: Any, **kwargs: Any) -> list[WorkflowTask]:
        tasks = await claim(*args, **kwargs)
        claimed.extend(task.instance_id for task in tasks)
        return tasks

    backend.claim_workflow_tasks = recording  # type: ignore[method-assign]
    return claimed


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/eager.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("eager", [True, False])
async def test_eager_start_hands_the_first_task_to_the_worker_without_a_claim(
    store_url: str, eager: bool
) -> None:
    backend = ostinato.connect(store_url)
    client = ostinato.Client(backend, eager_start=eager)
    try:
        async with ostinato.Worker(backend, workflows=[quick], poll_interval=0.05) as worker:
            await eventually(lambda: worker.takes_start("round_trips.quick", "default"))
            claimed = _record_claims(backend)
            handles = [await client.start_workflow(quick, i, id=f"q-{i}") for i in range(5)]
            assert [await h.result(timeout=10) for h in handles] == [1, 2, 3, 4, 5]
            # A workflow the worker does not know is started the usual way (and claimed).
            await client.start_workflow("round_trips.unknown", id="other")
            await eventually(lambda: "other" in claimed)
        expected = [] if eager else [f"q-{i}" for i in range(5)]
        assert sorted(claimed) == sorted([*expected, "other"])
    finally:
        await backend.close()


async def test_eager_start_on_another_backend_object_or_without_workers(store_url: str) -> None:
    """Only a worker on the very same backend object takes a start eagerly."""
    worker_side = ostinato.connect(store_url)
    client_side = ostinato.connect(store_url)
    client = ostinato.Client(client_side)
    try:
        handle = await client.start_workflow(quick, 1, id="before")  # no worker at all
        async with ostinato.Worker(worker_side, workflows=[quick], poll_interval=0.05):
            claimed = _record_claims(worker_side)
            assert await handle.result(timeout=10) == 2
            second = await client.start_workflow(quick, 2, id="elsewhere")
            assert await second.result(timeout=10) == 3
        assert sorted(claimed) == ["before", "elsewhere"]
    finally:
        await worker_side.close()
        await client_side.close()


class _FakeWorker:
    """A worker of this process as eager start sees it (``_eager_start.EagerWorker``)."""

    def __init__(self, backend: Backend, lease: float, *, accepts: bool) -> None:
        self.backend, self.workflow_lease, self.accepts = backend, lease, accepts
        self.taken: list[WorkflowTask] = []

    def takes_start(self, workflow_name: str, queue: str) -> bool:
        return True

    def accept_start(self, task: WorkflowTask) -> bool:
        self.taken.append(task)
        return self.accepts


async def test_an_eager_start_whose_worker_died_is_taken_over_after_its_lease(
    store_url: str,
) -> None:
    """The worker of the starting process takes the first task and dies before running it:
    the lease expires and another worker runs the run."""
    mine, theirs = ostinato.connect(store_url), ostinato.connect(store_url)
    dying = _FakeWorker(mine, 1.0, accepts=True)
    _eager_start.register(dying)
    try:
        handle = await ostinato.Client(mine).start_workflow(quick, 41, id="orphan")
        _eager_start.unregister(dying)
        [task] = dying.taken
        assert (task.instance_id, task.history_length) == ("orphan", 0)
        assert await theirs.claim_workflow_tasks(["default"], 30, 10) == []  # leased
        began = time.monotonic()
        async with ostinato.Worker(theirs, workflows=[quick], poll_interval=0.05):
            assert await handle.result(timeout=15) == 42
        assert time.monotonic() - began >= 0.5  # it waited for the lease to expire
    finally:
        _eager_start.unregister(dying)
        await mine.close()
        await theirs.close()


async def test_an_eager_start_the_worker_refuses_is_released_at_once(store_url: str) -> None:
    """A worker that can no longer take the task (it began to shut down) gets it released:
    another worker claims it at once, without waiting for the lease."""
    mine, theirs = ostinato.connect(store_url), ostinato.connect(store_url)
    leaving = _FakeWorker(mine, 600.0, accepts=False)
    _eager_start.register(leaving)
    try:
        await ostinato.Client(mine).start_workflow(quick, 1, id="released")
        [refused] = leaving.taken
        [task] = await theirs.claim_workflow_tasks(["default"], 30, 10)
        assert task.instance_id == "released"
        assert [e.id for e in task.inbox] == [e.id for e in refused.inbox]
    finally:
        _eager_start.unregister(leaving)
        await mine.close()
        await theirs.close()


def test_eager_start_option_is_checked() -> None:
    with pytest.raises(TypeError, match="eager_start"):
        ostinato.Client(ostinato.connect("memory://"), eager_start="yes")  # type: ignore[arg-type]
