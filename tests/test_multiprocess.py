"""Several worker processes share one database: 1,000 workflows with activities, timers, child
workflows and signals, run by 4 processes at once, each complete exactly once with the right
result, and every history is contiguous with each activity result, timer and signal recorded
once (signals in the order they were sent).

Runs against PostgreSQL and against one SQLite file opened by every process. The workers are
``tests/mp_app.py`` subprocesses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import ostinato
import pytest
from mp_app import Fleet, check_flow

pytestmark = pytest.mark.slow

WORKERS = 4
WORKFLOWS = 1000
SIGNALS = 3

T = TypeVar("T")


async def bounded(limit: int, items: Iterable[T], fn: Callable[[T], Awaitable[Any]]) -> None:
    """``fn(item)`` for every item, at most ``limit`` at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> None:
        async with gate:
            await fn(item)

    await asyncio.gather(*(one(item) for item in items))


@asynccontextmanager
async def fleet(url: str, logdir: Path, *options: str) -> AsyncIterator[Fleet]:
    workers = Fleet(url, logdir, *options)
    try:
        yield workers
    finally:
        workers.close()


async def run_many(url: str, tmp_path: Path) -> None:
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    await backend.open()
    try:
        async with fleet(url, tmp_path) as workers:
            await workers.start(WORKERS)
            began = time.monotonic()
            ids = [f"mp-{i}" for i in range(WORKFLOWS)]

            async def start(i: int) -> None:
                await client.start_workflow("mp_flow", i, SIGNALS, id=ids[i])

            async def signal(i: int) -> None:
                handle = client.get_handle(ids[i])
                for value in range(SIGNALS):  # in order, one after the other
                    await handle.signal("sig", value)

            # Signals race the workflows: some arrive before the first task, some while
            # an activity or the timer is pending, some while the run waits on the channel.
            await bounded(32, range(WORKFLOWS), start)
            await bounded(32, range(WORKFLOWS), signal)
            handles = [client.get_handle(wf) for wf in ids]
            await asyncio.gather(*(h.result(timeout=300) for h in handles))
            elapsed = time.monotonic() - began
            codes = await workers.stop()
            assert codes == dict.fromkeys(codes, 0), codes  # all shut down gracefully
            busy = workers.workers_with_work()
            print(f"\n{WORKFLOWS} workflows on {WORKERS} processes in {elapsed:.1f}s; {busy}")
            # The work was shared (how evenly depends on who claims first).
            assert len(busy) >= 2, busy
            for name in workers.procs:
                assert "Traceback" not in workers.stderr(name), workers.stderr(name)
            runs = workers.activity_runs()
        await bounded(32, range(WORKFLOWS), lambda i: check_flow(client, ids[i], i, SIGNALS))
        # Without crashes every activity body ran once (activities: 2 per workflow, 1 per
        # child); leases are long, so no task was taken over.
        children = WORKFLOWS // 10
        assert sum(runs.values()) == 2 * WORKFLOWS + children
        assert set(runs.values()) == {1}
        # Exactly the runs we started (and their children), each closed once as completed.
        listed, cursor = [], None
        while True:
            page, cursor = await client.list_workflows(limit=500, cursor=cursor)
            listed += page
            if cursor is None:
                break
        assert len(listed) == WORKFLOWS + children
        assert {d.status for d in listed} == {"completed"}
        assert len({d.instance_id for d in listed}) == len(listed)
    finally:
        await backend.close()


@pytest.mark.postgres
async def test_four_processes_postgres(postgres_url: str, tmp_path: Path) -> None:
    await run_many(postgres_url, tmp_path)


async def test_four_processes_sqlite(tmp_path: Path) -> None:
    await run_many(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
