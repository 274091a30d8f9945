"""Deleting closed workflows: ``Client.delete``, ``Client.delete_closed`` (batched) and a
worker's retention sweep (one worker at a time), on every backend; a sweep SIGKILLed in the
middle resumes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import ostinato
import pytest
from ostinato import _retention, workflow
from ostinato._retention import RetentionSweeper

APP = Path(__file__).with_name("retention_app.py")


@workflow.defn
async def echo(value: str) -> str:
    return value


@workflow.defn
async def boom(value: str) -> str:
    raise ostinato.ApplicationError(f"failed {value}", non_retryable=True)


@workflow.defn
async def waits() -> str:
    return await workflow.signal_channel("go", str).receive()


async def ids(client: ostinato.Client) -> set[str]:
    page, _ = await client.list_workflows(limit=1000)
    return {d.instance_id for d in page}


async def settle(handles: list[ostinato.WorkflowHandle[str]]) -> None:
    for handle in handles:
        with contextlib.suppress(ostinato.WorkflowFailedError):
            await handle.result(timeout=30)


async def test_delete_removes_a_closed_workflow_and_refuses_a_running_one(
    backend_url: str,
) -> None:
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(backend, workflows=[echo, waits], poll_interval=0.05):
            done = await client.start_workflow(echo, "hi", id="done")
            assert await done.result(timeout=30) == "hi"
            running = await client.start_workflow(waits, id="running")
            with pytest.raises(ostinato.WorkflowAlreadyStartedError, match="still running"):
                await client.delete("running")
            await client.delete("done")
            with pytest.raises(ostinato.WorkflowNotFoundError):
                await done.describe()
            with pytest.raises(ostinato.WorkflowNotFoundError):
                await client.delete("done")
            with pytest.raises(TypeError):
                await client.delete(42)  # type: ignore[arg-type]
            await running.signal("go", "now")
            assert await running.result(timeout=30) == "now"
            await client.delete("running")
            assert await ids(client) == set()
            # The id is free again, as if it had never been used.
            again = await client.start_workflow(echo, "again", id="done", id_reuse_policy="refuse")
            assert await again.result(timeout=30) == "again"
    finally:
        await backend.close()


async def test_delete_closed_by_age_status_and_limit_in_batches(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retention, "BATCH", 2)
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(backend, workflows=[echo, boom, waits], poll_interval=0.05):
            handles = [await client.start_workflow(echo, str(i), id=f"ok-{i}") for i in range(5)]
            handles += [await client.start_workflow(boom, "x", id=f"bad-{i}") for i in range(2)]
            await settle(handles)
            await client.start_workflow(waits, id="running")
            batches = []
            original = backend.delete_closed_instances  # type: ignore[attr-defined]

            async def counted(*args: object) -> int:
                done: int = await original(*args)
                batches.append(done)
                return done

            backend.delete_closed_instances = counted  # type: ignore[attr-defined]
            # Nothing closed a day ago yet.
            assert await client.delete_closed(older_than=timedelta(days=1)) == 0
            await asyncio.sleep(0.05)
            # Bad input: a clear error, nothing deleted.
            for bad, error in (
                ({"older_than": -1}, ValueError),
                ({"older_than": None}, TypeError),
                ({"older_than": "30d"}, TypeError),
                ({"statuses": ["running"]}, ValueError),
                ({"statuses": ["finished"]}, ValueError),
                ({"statuses": "completed"}, TypeError),
                ({"statuses": []}, ValueError),
                ({"limit": 0}, ValueError),
                ({"limit": 2.5}, TypeError),
            ):
                with pytest.raises(error):
                    await client.delete_closed(**bad)  # type: ignore[arg-type]
            assert len(await ids(client)) == 8
            batches.clear()
            assert await client.delete_closed(older_than=0, statuses=["failed"]) == 2
            assert await ids(client) == {f"ok-{i}" for i in range(5)} | {"running"}
            assert await client.delete_closed(older_than=0, limit=3) == 3
            # Batches of at most 2: a full one is followed by another look (which found none
            # left of the failed ones); the limit cuts the last batch short.
            assert batches == [2, 0, 2, 1]
            assert await client.delete_closed(older_than=timedelta(0)) == 2
            assert await ids(client) == {"running"}
    finally:
        await backend.close()


async def test_retention_sweeps_with_one_worker_at_a_time(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend_url == "memory://":
        pytest.skip("workers of one memory backend share one process; covered by sqlite")
    monkeypatch.setattr(_retention, "INTERVAL", 0.1)
    monkeypatch.setattr(_retention, "BATCH", 3)
    for bad, error in ((0.5, ValueError), (-1, ValueError), ("1d", TypeError)):
        with pytest.raises(error):
            ostinato.Worker(ostinato.connect("memory://"), workflows=[echo], retention=bad)
    backends = [ostinato.connect(backend_url) for _ in range(3)]
    client = ostinato.Client(backends[0])
    try:
        async with ostinato.Worker(backends[0], workflows=[echo, waits], poll_interval=0.05):
            handles = [await client.start_workflow(echo, str(i), id=f"ok-{i}") for i in range(10)]
            await settle(handles)
            running = await client.start_workflow(waits, id="running")
            # Its first task runs here: the sweepers' workers do not know `waits` (a worker
            # that picks up a workflow it does not know fails the run, which would close it).
            while (await running.describe()).history_length == 0:
                await asyncio.sleep(0.02)
        started = time.monotonic()
        workers = [
            ostinato.Worker(b, workflows=[echo], retention=timedelta(seconds=1), identity=f"w{i}")
            for i, b in enumerate(backends[1:])
        ]
        async with workers[0], workers[1]:
            while await ids(client) != {"running"}:
                assert time.monotonic() - started < 20, (
                    f"the sweep did not delete: {await ids(client)}"
                )
                await asyncio.sleep(0.05)
            sweepers = [w._sweeper for w in workers]
            deleted = sorted(s.deleted for s in sweepers if s is not None)
        assert deleted == [0, 10]  # one sweeper held the lease and did it all
        assert time.monotonic() - started >= 0.5  # not before they were a second old
    finally:
        for b in backends:
            await b.close()


async def test_a_sweep_held_by_a_live_worker_is_not_taken(backend_url: str) -> None:
    backend = ostinato.connect(backend_url)
    try:
        await backend.open()
        first = RetentionSweeper(backend, "first", 60, interval=0.1, lease=5)
        second = RetentionSweeper(backend, "second", 60, interval=0.1, lease=5)
        assert await first.sweep_once() == 0
        assert await second.sweep_once() is None  # first keeps the lease between sweeps
        await first.release()
        assert await second.sweep_once() == 0
    finally:
        await backend.close()


def spawn(db: Path, seconds: float, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(APP), str(db), str(seconds), *extra])


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            "instances": conn.execute("SELECT count(*) FROM instances").fetchone()[0],
            "runs": conn.execute("SELECT count(*) FROM runs").fetchone()[0],
            # Rows left behind by an instance half deleted.
            "orphans": sum(
                conn.execute(
                    f"SELECT count(*) FROM {table} WHERE run NOT IN (SELECT id FROM runs)"
                ).fetchone()[0]
                for table in ("history", "inbox", "vars", "activity_tasks")
            )
            + conn.execute(
                "SELECT count(*) FROM runs WHERE instance_id NOT IN "
                "(SELECT instance_id FROM instances)"
            ).fetchone()[0],
        }


async def test_a_sweep_killed_midway_resumes_in_another_worker(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    backend = ostinato.connect(f"sqlite:///{db}")
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(backend, workflows=[echo, waits], poll_interval=0.05):
            handles = [await client.start_workflow(echo, str(i), id=f"ok-{i}") for i in range(30)]
            await settle(handles)
            await client.start_workflow(waits, id="running")
        await asyncio.sleep(1.1)  # older than the app's retention of one second
        killed = spawn(db, 60, "2")  # killed right after its second batch of 5
        assert await asyncio.to_thread(killed.wait, 60) == -signal.SIGKILL
        counts = table_counts(db)
        assert counts == {"instances": 21, "runs": 21, "orphans": 0}  # 2 batches, whole
        survivor = spawn(db, 3)  # waits for the dead one's lease (1.1 s), then sweeps on
        assert await asyncio.to_thread(survivor.wait, 60) == 0
        assert table_counts(db) == {"instances": 1, "runs": 1, "orphans": 0}
        assert await ids(client) == {"running"}
    finally:
        await backend.close()


# ---- the command line ----------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ostinato", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_delete_and_delete_closed_want_yes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(backend, workflows=[echo, boom, waits], poll_interval=0.05):
            handles = [await client.start_workflow(echo, str(i), id=f"ok-{i}") for i in range(3)]
            handles.append(await client.start_workflow(boom, "x", id="bad"))
            await settle(handles)
            await client.start_workflow(waits, id="running")
        run = asyncio.to_thread
        said = await run(cli, "delete", url, "ok-0")
        assert (said.returncode, said.stdout) == (
            1,
            "this would delete workflow 'ok-0' and all its runs; it cannot be undone: "
            "add --yes to do it\n",
        )
        said = await run(cli, "delete", url, "ok-0", "--yes")
        assert (said.returncode, said.stdout) == (0, "deleted workflow 'ok-0' and all its runs\n")
        said = await run(cli, "delete", url, "running", "--yes")
        assert said.returncode == 1
        assert said.stderr.startswith("ostinato: WorkflowAlreadyStartedError: ")
        said = await run(cli, "delete-closed", url, "--older-than", "1d", "--yes")
        assert (said.returncode, said.stdout) == (0, "deleted 0 closed workflows\n")
        said = await run(cli, "delete-closed", url, "--older-than", "0s", "--status", "failed")
        assert said.returncode == 1 and "would delete every failed workflow" in said.stdout
        assert await ids(client) == {"ok-1", "ok-2", "bad", "running"}
        said = await run(
            cli, "delete-closed", url, "--older-than", "0s", "--status", "failed", "--yes"
        )
        assert (said.returncode, said.stdout) == (0, "deleted 1 closed workflow\n")
        said = await run(cli, "delete-closed", url, "--older-than", "0s", "--limit", "1", "--yes")
        assert (said.returncode, said.stdout) == (0, "deleted 1 closed workflow\n")
        assert len(await ids(client)) == 2
        for bad in (["--older-than", "soon"], ["--older-than", "1d", "--limit", "0"], []):
            said = await run(cli, "delete-closed", url, *bad, "--yes")
            assert said.returncode == 2 and "error:" in said.stderr
        said = await run(cli, "delete-closed", url, "--older-than", "1d", "--status", "running")
        assert said.returncode == 1 and "only closed workflows" in said.stderr  # even so
        said = await run(
            cli, "delete-closed", url, "--older-than", "1d", "--status", "running", "--yes"
        )
        assert said.returncode == 1 and "only closed workflows" in said.stderr
        assert len(await ids(client)) == 2
    finally:
        await backend.close()
