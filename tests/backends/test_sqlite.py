"""What only the SQLite backend promises: files, migrations, pragmas, group commit and
several processes on one file."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import ostinato
import pytest
from ostinato._backends import sqlite as sqlite_module
from ostinato._backends._sql_blocks import parse_named_blocks, read_blocks
from ostinato._backends._sqlite_sql import QUERIES, split_statements
from ostinato._backends.sqlite import SqliteBackend, load_migrations
from ostinato._errors import WorkflowAlreadyStartedError
from ostinato.backends import RunClose, RunStatus

from .helpers import FakeClock, claim_one, full_commit, new_run, start


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


async def test_reopening_keeps_everything(tmp_path: Path) -> None:
    db = tmp_path / "keep.db"
    async with SqliteBackend(str(db), clock=FakeClock()) as b:
        await start(b, "kept")
        task = await claim_one(b)
        await b.commit_workflow_task(task, full_commit(task, vars={"v": b"1"}))
        history = await b.history("kept")
    async with SqliteBackend(str(db), clock=FakeClock()) as b:
        assert await b.history("kept") == history
        assert await b.get_vars("kept") == {"v": b"1"}
        with pytest.raises(WorkflowAlreadyStartedError):
            await start(b, "kept")


async def test_migrations_applied_once_and_recorded(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    expected = [(v, name) for v, name, _ in load_migrations()]
    assert expected[0] == (1, "0001_initial.sql")
    for _ in range(3):
        async with SqliteBackend(str(db)) as b:
            assert await b.schema_versions() == expected
    # Several processes' worth of backends migrating the same new file at once.
    fresh = tmp_path / "race.db"
    backends = [SqliteBackend(str(fresh)) for _ in range(4)]
    await asyncio.gather(*(b.open() for b in backends))
    assert await backends[0].schema_versions() == expected
    await asyncio.gather(*(b.close() for b in backends))


def _used_query_names(source: str) -> set[str]:
    used = set(re.findall(r'Q\["(\w+)"\]', source))
    used |= set(re.findall(r'Q\.for_queues\(\s*"(\w+)"', source))
    used |= set(re.findall(r'filters\.append\("(\w+)"\)', source))
    if "Q.list_runs(" in source:
        used.add("list_runs")
    # Names run in a loop: for query in ("a", "b"): conn.execute(Q[query], ...)
    for names in re.findall(r"for query in \(([^()]*)\)", source):
        used |= set(re.findall(r'"(\w+)"', names))
    return used


def test_sql_blocks_are_consistent_and_valid() -> None:
    # Every block the backend runs exists, every block in queries.sql is run (or is a
    # fragment of others), and every query compiles against the migrated schema, including
    # the ones no other test reaches.
    blocks = read_blocks("sqlite")
    package = Path(sqlite_module.__file__).parent
    source = "".join(p.read_text() for p in sorted(package.glob("*sqlite*.py")))
    used = _used_query_names(source)
    assert not sorted(used - set(blocks)), "used but not defined in queries.sql"
    fragments = {name for text in blocks.values() for name in re.findall(r"\{(\w+)\}", text)}
    assert fragments - set(blocks) == {"queues", "filters"}  # filled in per call
    unused = sorted(set(blocks) - used - fragments)
    assert not unused, f"blocks of queries.sql the backend never runs: {unused}"
    conn = sqlite3.connect(":memory:")
    conn.execute(QUERIES["create_schema_version"])
    for _, _, script in load_migrations():
        for statement in split_statements(script):
            conn.execute(statement)
    for name in sorted(used - {"list_runs"} - {n for n in used if n.startswith("filter_")}):
        text = QUERIES.for_queues(name, 2) if "{queues}" in blocks[name] else QUERIES[name]
        assert "{" not in text, name
        conn.execute(f"EXPLAIN {text}", (None,) * text.count("?"))
    for filters in ([], ["filter_before", "filter_status", "filter_workflow"]):
        text = QUERIES.list_runs(filters)
        conn.execute(f"EXPLAIN {text}", (None,) * text.count("?"))
    with pytest.raises(ValueError, match="defined twice"):
        parse_named_blocks("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    async with SqliteBackend(str(db)):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, '0999_future.sql', 0)")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this ostinato"):
        await SqliteBackend(str(db)).open()


async def test_durable_pragmas(tmp_path: Path) -> None:
    async with SqliteBackend(str(tmp_path / "d.db")) as durable:
        assert await durable.pragmas() == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "busy_timeout": 5000,
        }
    async with SqliteBackend(str(tmp_path / "f.db"), durable=False, busy_timeout=0.25) as fast:
        pragmas = await fast.pragmas()
        assert (pragmas["synchronous"], pragmas["busy_timeout"]) == (1, 250)  # NORMAL


async def test_group_commit_isolates_failing_operations(tmp_path: Path) -> None:
    async with SqliteBackend(str(tmp_path / "g.db")) as b:
        await start(b, "dup-0")
        runs = [new_run(f"dup-{i % 10}" if i < 20 else f"ok-{i}") for i in range(100)]
        results = await asyncio.gather(*(b.create_run(r) for r in runs), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures and all(isinstance(f, WorkflowAlreadyStartedError) for f in failures)
        # dup-0 existed; dup-1..9 were created once each; ok-20..99 all created.
        assert len(failures) == 20 - 9
        page, _ = await b.list_runs(limit=1000)
        assert len(page) == 1 + 9 + 80
        assert b.transactions < b.operations, "operations queued together share a transaction"


async def test_memory_url_and_close(tmp_path: Path) -> None:
    b = SqliteBackend(":memory:")
    await start(b, "m")  # opens on first use
    assert (await b.describe("m")).status is RunStatus.RUNNING
    await b.close()
    await b.close()
    with pytest.raises(RuntimeError, match="closed"):
        await b.describe("m")
    await b.open()  # a new, empty in-memory database
    assert (await b.list_runs())[0] == []
    await b.close()


async def test_cancelled_caller_does_not_break_the_backend(tmp_path: Path) -> None:
    async with SqliteBackend(str(tmp_path / "c.db")) as b:
        pending = asyncio.ensure_future(start(b, "cancelled"))
        pending.cancel()
        await asyncio.sleep(0.01)
        await start(b, "after")
        assert (await b.describe("after")).status is RunStatus.RUNNING


async def test_waits_for_another_connections_write_lock(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    async with SqliteBackend(str(db), busy_timeout=0.01) as b:
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
        release.start()
        started = time.monotonic()
        await start(b, "patient")  # retried until the lock is released, never "locked"
        assert time.monotonic() - started >= 0.15
        release.join()
        holder.close()


async def test_another_process_commits_are_seen_by_polling(tmp_path: Path) -> None:
    db = tmp_path / "xproc.db"
    async with SqliteBackend(str(db)) as b, SqliteBackend(str(db)) as other:
        run = await start(b, "x")
        waiter = asyncio.ensure_future(b.wait_closed("x", run.run_id, 5))
        work = asyncio.ensure_future(b.wait_for_work("activity", ["default"], 5))
        await asyncio.sleep(0.01)
        task = await claim_one(other)
        await other.commit_workflow_task(
            task, full_commit(task, activities=[], close=RunClose(RunStatus.COMPLETED, b"1"))
        )
        started = time.monotonic()
        info = await asyncio.wait_for(waiter, 2)
        assert info.status is RunStatus.COMPLETED
        assert time.monotonic() - started < 1
        assert not work.done()
        work.cancel()


_HAMMER = textwrap.dedent(
    """
    import asyncio, sys
    from ostinato._backends.sqlite import SqliteBackend
    from ostinato.backends import NewRun, RunClose, RunStatus, WorkflowCommit

    async def main(path, prefix, count):
        async with SqliteBackend(path, busy_timeout=0.05) as b:
            for i in range(count):
                await b.create_run(NewRun(f"{prefix}-{i}", f"r-{prefix}-{i}", "wf", "default",
                                          b'{"kind":"workflow_started"}'))
                for task in await b.claim_workflow_tasks(["default"], 30, 5):
                    close = RunClose(RunStatus.COMPLETED, b"1")
                    events = [b'{"seq":%d,"kind":"task_started"}' % (task.history_length + 1)]
                    await b.commit_workflow_task(
                        task, WorkflowCommit(events, [e.id for e in task.inbox], close=close))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def _hammer(path: str, prefix: str, count: int) -> None:
    async with SqliteBackend(path, busy_timeout=0.05) as b:
        for i in range(count):
            await start(b, f"{prefix}-{i}")
            for task in await b.claim_workflow_tasks(["default"], 30, 5):
                await b.commit_workflow_task(
                    task, full_commit(task, close=RunClose(RunStatus.COMPLETED, b"1"))
                )


@pytest.mark.slow
async def test_processes_and_objects_hammering_one_file(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    async with SqliteBackend(db):
        pass  # create the schema first so the processes race on work, not setup
    package_root = os.path.dirname(os.path.dirname(ostinato.__file__))
    env = {**os.environ, "PYTHONPATH": package_root}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HAMMER, db, "proc", "150",
        env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    hammers = [_hammer(db, "a", 150), _hammer(db, "b", 150)]
    await asyncio.gather(*hammers)
    _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    async with SqliteBackend(db) as b:
        # Whatever is left open is finished here; nothing may be lost or doubled.
        while tasks := await b.claim_workflow_tasks(["default"], 30, 100):
            for task in tasks:
                await b.commit_workflow_task(
                    task, full_commit(task, close=RunClose(RunStatus.COMPLETED, b"1"))
                )
        page, _ = await b.list_runs(limit=1000)
        assert len(page) == 450
        assert {r.status for r in page} == {RunStatus.COMPLETED}
        for info in page:
            assert info.history_length >= 1


async def test_open_can_be_retried_after_a_failure(tmp_path: Path) -> None:
    missing_dir = tmp_path / "not-yet"
    backend = SqliteBackend(str(missing_dir / "app.db"))
    with pytest.raises(sqlite3.OperationalError):
        await backend.open()
    missing_dir.mkdir()
    await start(backend, "second-try")
    assert (await backend.describe("second-try")).status is RunStatus.RUNNING
    await backend.close()
