"""PostgreSQL-only behaviour: migrations, LISTEN/NOTIFY, several workers on one database,
reconnecting after a server restart, and keeping credentials out of messages.

The storage contract itself is tested by tests/backends/test_conformance.py (the postgres
parameter); these tests cover what only a real server shows. Run the latency tests with
``-s`` to see the measured wake-up times (printed, never asserted).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import pytest
from backends.helpers import T0, FakeClock, batch, claim_for, ev, new_run, start
from ostinato._backends import postgres as pg
from ostinato._backends.postgres import PostgresBackend, mask_dsn, migrate
from ostinato._errors import WorkflowAlreadyStartedError
from ostinato.backends import NewActivity, OutgoingSignal, RunClose, RunStatus, WorkflowCommit

pytestmark = pytest.mark.postgres

LOGGER = "ostinato.postgres"


@asynccontextmanager
async def backend(url: str, **options: Any) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend(url, **options)
    await b.open()
    try:
        yield b
    finally:
        await b.close()


async def fetch(url: str, query: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(query)  # type: ignore[arg-type]
        return await cur.fetchall()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING
    ]


# ---- SQL files and migrations ---------------------------------------------------------------


def test_sql_files_are_consistent() -> None:
    migrations = pg.load_migrations()
    assert [m[0] for m in migrations] == list(range(1, len(migrations) + 1))
    queries = pg.Queries("ostinato")
    source = "".join(p.read_text() for p in sorted(Path(pg.__file__).parent.glob("*.py")))
    used = set(re.findall(r'(?:_fetchone|_fetchall|_execute)\(\s*conn,\s*"(\w+)"', source))
    used |= set(re.findall(r'self\._q\["(\w+)"\]', source))
    used |= set(re.findall(r'query = "(\w+)" if .* else "(\w+)"', source)[0])
    missing = sorted(name for name in used if name not in queries)
    assert not missing, f"queries used but not defined in queries.sql: {missing}"
    with pytest.raises(ValueError):
        pg.parse_named_blocks("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")


async def test_no_index_covers_what_every_task_rewrites(postgres_url: str) -> None:
    # Claims and commits rewrite these columns of a run twice per workflow task. Named by no
    # index (nor an index condition), the row is updated in place (HOT) without touching the
    # table's indexes: about a fifth of the server's work in the throughput benchmark.
    async with backend(postgres_url):
        pass
    rows = await fetch(
        postgres_url,
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'ostinato' AND tablename = 'runs'",
    )
    assert len(rows) >= 8
    rewritten = ("lease_", "history_length", "updated_at", "sticky_worker", "blocked_reason")
    for (indexdef,) in rows:
        assert not any(column in indexdef for column in rewritten), indexdef
    [(options,)] = await fetch(
        postgres_url, "SELECT reloptions FROM pg_class WHERE oid = 'ostinato.runs'::regclass"
    )
    assert "fillfactor=80" in options


async def test_migrate_is_idempotent(postgres_url: str) -> None:
    latest = len(pg.load_migrations())
    assert await migrate(postgres_url) == list(range(1, latest + 1))
    assert await migrate(postgres_url) == []
    async with backend(postgres_url) as b:
        assert await b.migrate() == []
    rows = await fetch(postgres_url, "SELECT version, name FROM ostinato.schema_version")
    assert [r[0] for r in sorted(rows)] == list(range(1, latest + 1))


async def test_concurrent_migrations_in_one_process(postgres_url: str) -> None:
    results = await asyncio.gather(*(migrate(postgres_url, schema="many") for _ in range(6)))
    assert sorted(map(tuple, results)) == [()] * 5 + [
        tuple(range(1, len(pg.load_migrations()) + 1))
    ]
    # And backends opening at once on a fresh schema: one migrates, all work.
    backends = [PostgresBackend(postgres_url, schema="opened") for _ in range(4)]
    await asyncio.gather(*(b.open() for b in backends))
    try:
        await asyncio.gather(*(start(b, f"wf-{i}") for i, b in enumerate(backends)))
        page, _ = await backends[0].list_runs()
        assert len(page) == 4
    finally:
        await asyncio.gather(*(b.close() for b in backends))


def test_concurrent_migrations_from_several_processes(postgres_url: str) -> None:
    code = (
        "import asyncio, sys, time\n"
        "from ostinato._backends.postgres import migrate\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "print(asyncio.run(migrate(sys.argv[1])))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    go = time.time() + 1.5  # every process starts migrating at the same moment
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, postgres_url, repr(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(5)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    latest = list(range(1, len(pg.load_migrations()) + 1))
    assert sorted(outputs) == sorted(["[]"] * 4 + [str(latest)])


async def test_outdated_schema_without_auto_migrate_is_refused(postgres_url: str) -> None:
    with pytest.raises(RuntimeError, match="ostinato db migrate"):
        await PostgresBackend(postgres_url, auto_migrate=False).open()
    await migrate(postgres_url)
    async with backend(postgres_url, auto_migrate=False) as b:
        await start(b, "ok")


def test_url_options() -> None:
    url, options = pg.split_url_options(
        "postgresql://u:p@h/db?sslmode=require&schema=billing&listen=off&max_pool_size=3"
        "&poll_interval=0.5&prepare_threshold=none"
    )
    assert url == "postgresql://u:p@h/db?sslmode=require"
    assert options == {
        "schema": "billing",
        "listen": False,
        "max_pool_size": 3,
        "poll_interval": 0.5,
        "prepare_threshold": None,
    }
    assert pg.split_url_options("host=h dbname=db") == ("host=h dbname=db", {})
    with pytest.raises(ValueError, match="listen"):
        pg.split_url_options("postgresql://h/db?listen=maybe")


async def test_options_in_the_url(postgres_url: str) -> None:
    url = f"{postgres_url}?schema=from_url&listen=false&max_pool_size=2"
    assert await migrate(url) != []
    async with backend(url) as b:
        assert not b.listening
        await start(b, "in-url")
    assert await fetch(postgres_url, "SELECT instance_id FROM from_url.instances") == [("in-url",)]
    async with backend(url, schema="explicit") as b:  # a keyword argument wins
        assert (await b.list_runs())[0] == []


async def test_least_privileged_worker_role(postgres_url: str) -> None:
    # The GRANTs docs/operations.md gives a worker role are enough for all of its work.
    await migrate(postgres_url)
    role = "ostinato_worker_" + os.urandom(4).hex()
    password = "role-" + os.urandom(8).hex()
    dbname = postgres_url.rsplit("/", 1)[1]
    statements = [
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}'",
        f'GRANT CONNECT ON DATABASE "{dbname}" TO {role}',
        f"GRANT USAGE ON SCHEMA ostinato TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ostinato TO {role}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA ostinato TO {role}",
    ]
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        for statement in statements:
            await admin.execute(statement)  # type: ignore[arg-type]
        try:
            head, tail = postgres_url.split("://", 1)
            worker_url = f"{head}://{role}:{password}@{tail.split('@', 1)[1]}"
            clock = FakeClock()
            async with backend(worker_url, clock=clock, auto_migrate=False) as b:
                await start(b, "least")
                task = await claim_for(b, "least")
                await b.commit_workflow_task(
                    task,
                    WorkflowCommit(
                        new_events=batch(task),
                        consumed_inbox=[i.id for i in task.inbox],
                        activities=[NewActivity(1, "a", "default", b"[]", b"{}")],
                        vars={"v": b"1"},
                        close=RunClose(RunStatus.COMPLETED, b"1"),
                    ),
                )
                assert await b.get_vars("least") == {"v": b"1"}
                await b.delete("least")
                with pytest.raises(psycopg.Error):
                    await b.migrate()  # DDL is not allowed for this role
        finally:
            await admin.execute(f"DROP OWNED BY {role}")  # type: ignore[arg-type]
            await admin.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]


async def test_schemas_are_isolated(postgres_url: str) -> None:
    async with (
        backend(postgres_url, schema="Tenant One") as one,
        backend(postgres_url, schema="tenant_two") as two,
    ):
        await start(one, "same-id")
        await start(two, "same-id")
        assert len((await one.list_runs())[0]) == 1
        await one.claim_workflow_tasks(["default"], 30, 10)
        assert len(await two.claim_workflow_tasks(["default"], 30, 10)) == 1
    rows = await fetch(
        postgres_url,
        "SELECT nspname FROM pg_namespace WHERE nspname IN ('Tenant One', 'tenant_two')",
    )
    assert len(rows) == 2


# ---- payloads ---------------------------------------------------------------------------


async def test_text_fields_with_nul_are_refused_clearly(postgres_url: str) -> None:
    async with backend(postgres_url) as b:
        with pytest.raises(ValueError, match="NUL"):
            await b.create_run(new_run("bad\x00id"))
        with pytest.raises(ValueError, match="NUL"):
            await b.create_run(new_run("ok", queue="q\x00"))
        with pytest.raises(ValueError):
            await b.describe("bad\x00id")
        # Failure reasons are informational: NUL is kept visible, escaped.
        await start(b, "blocked")
        task = await claim_for(b, "blocked")
        await b.fail_workflow_task(task, "bad \x00 byte", T0)
        assert (await b.describe("blocked")).blocked_reason == "bad \\x00 byte"


async def test_payloads_are_bytea_not_jsonb(postgres_url: str) -> None:
    # \u0000 escapes are valid JSON that jsonb refuses; and bytes must come back unchanged.
    payload = b'{"a":"\\u0000","b":"\xc3\xa9","c":1.0000000000000001}'
    clock = FakeClock()
    async with backend(postgres_url, clock=clock) as b:
        await start(b, "raw", started_event=payload)
        task = await claim_for(b, "raw")
        assert task.inbox[0].event == payload
    rows = await fetch(
        postgres_url,
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'ostinato' "
        "AND column_name IN ('event', 'result', 'input', 'options', 'value')",
    )
    assert {r[0] for r in rows} == {"bytea"}


# ---- several workers ----------------------------------------------------------------------


async def test_claims_by_several_backends_never_overlap(postgres_url: str) -> None:
    clock = FakeClock()
    backends = [
        PostgresBackend(postgres_url, clock=clock, max_pool_size=4, listen=False) for _ in range(3)
    ]
    await asyncio.gather(*(b.open() for b in backends))
    try:
        for i in range(150):
            await backends[i % 3].create_run(new_run(f"run-{i:03d}"))

        async def drain(b: PostgresBackend) -> list[str]:
            got: list[str] = []
            while tasks := await b.claim_workflow_tasks(["default"], 60, 5):
                got.extend(t.instance_id for t in tasks)
            return got

        results = await asyncio.gather(*(drain(b) for b in backends for _ in range(3)))
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)) == 150
        print(f"\nworkflow claims per claimer: {[len(r) for r in results]}")

        # Activity tasks the same way.
        await backends[0].create_run(new_run("acts"))
        task = await claim_for(backends[0], "acts")
        acts = [NewActivity(i, "a", "acts", b"[]", b"{}") for i in range(1, 101)]
        await backends[0].commit_workflow_task(
            task,
            WorkflowCommit(
                new_events=batch(task),
                consumed_inbox=[i.id for i in task.inbox],
                activities=acts,
            ),
        )

        async def drain_acts(b: PostgresBackend) -> list[int]:
            got: list[int] = []
            while tasks := await b.claim_activity_tasks(["acts"], 60, 4):
                got.extend(t.activity_id for t in tasks)
            return got

        results_acts = await asyncio.gather(*(drain_acts(b) for b in backends for _ in range(2)))
        ids = [i for r in results_acts for i in r]
        assert sorted(ids) == list(range(1, 101))
    finally:
        await asyncio.gather(*(b.close() for b in backends))


async def test_concurrent_starts_of_one_id(postgres_url: str) -> None:
    # Exactly one start wins, for a new id and for reusing a closed one; the others get
    # WorkflowAlreadyStartedError, never a constraint violation.
    backends = [PostgresBackend(postgres_url, listen=False) for _ in range(4)]
    await asyncio.gather(*(b.open() for b in backends))
    try:
        for round_ in range(3):
            results = await asyncio.gather(
                *(b.create_run(new_run("contested")) for b in backends for _ in range(3)),
                return_exceptions=True,
            )
            errors = [r for r in results if r is not None]
            assert len(errors) == len(results) - 1, results
            assert all(isinstance(e, WorkflowAlreadyStartedError) for e in errors), errors
            await backends[0].terminate("contested", f"round {round_}")
    finally:
        await asyncio.gather(*(b.close() for b in backends))


async def _measure_wakeups(
    waiting: PostgresBackend, writing: PostgresBackend, rounds: int
) -> list[float]:
    """Milliseconds from a write on one backend to the wake-up of a waiter on another."""
    latencies = []
    for i in range(rounds):
        waiter = asyncio.create_task(waiting.wait_for_work("workflow", ["lat"], 60))
        await asyncio.sleep(0.02)  # the waiter is parked
        assert not waiter.done()
        run = new_run(f"lat-{i}", queue="lat")
        await writing.create_run(run)
        written = time.perf_counter()
        await asyncio.wait_for(waiter, 30)
        latencies.append((time.perf_counter() - written) * 1000)
        [task] = await writing.claim_workflow_tasks(["lat"], 60, 1)
        await writing.commit_workflow_task(
            task,
            WorkflowCommit(
                new_events=batch(task),
                consumed_inbox=[i.id for i in task.inbox],
                close=RunClose(RunStatus.COMPLETED, b"null"),
            ),
        )
    return latencies


def _summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms, "
        f"max {ordered[-1]:.2f} ms over {len(ordered)}"
    )


async def test_notify_wakes_another_backend_in_milliseconds(postgres_url: str) -> None:
    # poll_interval and the wait timeout are 60 s: only a notification can wake the waiter
    # before asyncio.wait_for's 30 s. The latency is printed, not asserted.
    async with (
        backend(postgres_url, poll_interval=60) as waiting,
        backend(postgres_url, poll_interval=60) as writing,
    ):
        assert waiting.listening
        latencies = await _measure_wakeups(waiting, writing, 30)
        print(f"\nNOTIFY wake-up latency (other backend): {_summary(latencies)}")

        # wait_closed across backends too.
        run = await start(writing, "closing")
        closed = asyncio.create_task(waiting.wait_closed("closing", run.run_id, 60))
        await asyncio.sleep(0.02)
        task = await claim_for(writing, "closing")
        await writing.commit_workflow_task(
            task,
            WorkflowCommit(
                new_events=batch(task),
                consumed_inbox=[i.id for i in task.inbox],
                close=RunClose(RunStatus.COMPLETED, b"1"),
            ),
        )
        info = await asyncio.wait_for(closed, 30)
        assert info.status is RunStatus.COMPLETED


async def test_polling_without_listen(postgres_url: str) -> None:
    async with (
        backend(postgres_url, listen=False, poll_interval=0.1) as waiting,
        backend(postgres_url) as writing,
    ):
        assert not waiting.listening
        latencies = await _measure_wakeups(waiting, writing, 10)
        print(f"\npolling wake-up latency (listen=False, poll 100 ms): {_summary(latencies)}")


async def test_wait_for_work_wakes_for_delayed_work_of_another_backend(
    postgres_url: str,
) -> None:
    async with backend(postgres_url) as waiting, backend(postgres_url) as writing:
        waiter = asyncio.create_task(waiting.wait_for_work("workflow", ["default"], 30))
        await asyncio.sleep(0.02)
        due = time.time() + 0.3
        await writing.create_run(new_run("delayed", visible_at=due))
        await asyncio.sleep(0.1)
        assert not waiter.done()  # woken by the notification, saw the work is not due yet
        await asyncio.wait_for(waiter, 10)
        assert time.time() >= due - 0.01


# ---- faults ---------------------------------------------------------------------------------


async def test_reconnects_after_server_restart(
    postgres_url: str, pg_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    async with backend(postgres_url) as b, backend(postgres_url, listen=False) as quiet:
        before = await start(b, "before")
        assert b.listening
        await asyncio.to_thread(pg_server.restart)
        # Every kind of operation works again, on both backends.
        await start(b, "after")
        await start(quiet, "after-quiet")
        assert (await b.describe("before")).run_id == before.run_id
        task = await claim_for(b, "before")
        await b.commit_workflow_task(
            task,
            WorkflowCommit(
                new_events=batch(task),
                consumed_inbox=[i.id for i in task.inbox],
                close=RunClose(RunStatus.COMPLETED, b"1"),
            ),
        )
        assert (await quiet.describe("before")).status is RunStatus.COMPLETED
        for _ in range(200):
            if b.listening:
                break
            await asyncio.sleep(0.05)
        assert b.listening, "the LISTEN connection did not come back"
        # ... and notifications flow again.
        latencies = await _measure_wakeups(b, quiet, 3)
        print(f"\nwake-up latency after restart: {_summary(latencies)}")
    warned = warnings_of(caplog)
    print("\n".join(["warnings:", *warned]))
    # One warning per backend for the incident (the listener and the pool of `b` share it).
    assert 1 <= len(warned) <= 2, warned
    assert pg_server.password not in caplog.text


async def test_operation_waits_out_a_short_outage(postgres_url: str, pg_server: Any) -> None:
    async with backend(postgres_url, listen=False) as b:
        await start(b, "outage")
        await asyncio.to_thread(pg_server.stop)
        try:
            pending = asyncio.create_task(b.describe("outage"))
            await asyncio.sleep(0.5)
            assert not pending.done()
        finally:
            await asyncio.to_thread(pg_server.start)
        info = await asyncio.wait_for(pending, 30)
        assert info.status is RunStatus.RUNNING


async def _kill_connection_of(admin_url: str, conn: psycopg.AsyncConnection[Any]) -> None:
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s, 5000)", [conn.info.backend_pid])


async def test_broken_connection_before_commit_is_retried_once_delivered(
    postgres_url: str,
) -> None:
    async with backend(postgres_url) as b:
        await start(b, "safe")
        original = b._send_notifications
        kills = 0

        async def break_before_commit(conn: Any, effects: Any) -> None:
            nonlocal kills
            if kills == 0:
                kills += 1
                await _kill_connection_of(postgres_url, conn)
            await original(conn, effects)

        b._send_notifications = break_before_commit  # type: ignore[method-assign]
        await b.signal("safe", ev("signal_received", name="once", payload=None))
        assert kills == 1
        task = await claim_for(b, "safe")
        assert [orjson_kind(i.event) for i in task.inbox] == ["workflow_started", "signal_received"]


async def test_signal_is_not_retried_when_commit_may_have_happened(postgres_url: str) -> None:
    # The connection breaks at COMMIT: the signal may or may not be stored, so it must not be
    # sent again (it would arrive twice); the caller gets the error. create_run, in the same
    # situation, retries: finding its own run means the first try committed.
    async with backend(postgres_url) as b:
        await start(b, "ambiguous")
        original = b._send_notifications
        kill = True

        async def break_at_commit(conn: Any, effects: Any) -> None:
            nonlocal kill
            await original(conn, effects)
            if kill:
                kill = False
                await _kill_connection_of(postgres_url, conn)

        b._send_notifications = break_at_commit  # type: ignore[method-assign]
        with pytest.raises(psycopg.OperationalError, match="signalling workflow 'ambiguous'"):
            await b.signal("ambiguous", ev("signal_received", name="s", payload=None))
        kill = True
        run = new_run("created-once")
        await b.create_run(run)  # retried after the broken COMMIT
        assert (await b.describe("created-once")).run_id == run.run_id


async def test_signal_external_waits_out_a_commit_closing_its_target(postgres_url: str) -> None:
    # A workflow task signals "target" while a commit of target's own task is in progress
    # (it holds target's row lock) and closes it. The signal must not go into the inbox of
    # the run being closed, where it would be lost: the sender's commit waits that commit
    # out, then reports the target closed (or, after continue-as-new, delivers to the new
    # run). The commit of target is played by hand here, to hold it open at will.
    async with backend(postgres_url) as b:
        await start(b, "target")
        task = await claim_for(b, "target")
        await b.commit_workflow_task(
            task, WorkflowCommit(new_events=batch(task), consumed_inbox=[task.inbox[0].id])
        )
        await start(b, "sender")
        sender = await claim_for(b, "sender")
        async with await psycopg.AsyncConnection.connect(postgres_url) as target_commit:
            await target_commit.execute(
                "SELECT 1 FROM ostinato.runs WHERE instance_id = 'target' FOR NO KEY UPDATE"
            )
            signalled = asyncio.create_task(
                b.commit_workflow_task(
                    sender,
                    WorkflowCommit(
                        new_events=batch(sender),
                        consumed_inbox=[sender.inbox[0].id],
                        signals=[OutgoingSignal("target", ev("signal_received", name="s"), 1)],
                    ),
                )
            )
            await asyncio.sleep(0.3)
            assert not signalled.done(), "the signal did not wait for the commit in progress"
            await target_commit.execute(
                "UPDATE ostinato.runs SET status = 'completed', closed_at = updated_at "
                "WHERE instance_id = 'target'"
            )
            await target_commit.execute("DELETE FROM ostinato.inbox WHERE instance_id = 'target'")
            await target_commit.commit()
        await asyncio.wait_for(signalled, 5)
        assert await fetch(
            postgres_url, "SELECT count(*) FROM ostinato.inbox WHERE instance_id = 'target'"
        ) == [(0,)]
        sender = await claim_for(b, "sender")
        [done] = [orjson.loads(item.event) for item in sender.inbox]
        assert done["kind"] == "signal_external_completed"
        assert done["failure"]["type"] == "WorkflowNotRunningError"


def orjson_kind(event: bytes) -> str:
    import orjson

    kind: str = orjson.loads(event)["kind"]
    return kind


# ---- credentials --------------------------------------------------------------------------


def test_mask_dsn() -> None:
    assert mask_dsn("postgresql://u:s3cret@db:5432/app") == "postgresql://u:***@db:5432/app"
    assert "s3cret" not in mask_dsn("postgresql://u@db/app?password=s3cret&sslmode=require")
    assert "s3cret" not in mask_dsn("host=db user=u password=s3cret dbname=app")
    assert "s 3" not in mask_dsn("host=db password='s 3cret' dbname=app")
    assert "p@ss" not in mask_dsn(f"postgresql://u:{quote('p@ss', safe='')}@db/app")
    assert mask_dsn("postgresql://db/app") == "postgresql://db/app"


async def test_credentials_never_in_errors_or_logs(
    postgres_url: str, pg_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Wr0ng-S3cret-" + os.urandom(4).hex()
    bad_url = postgres_url.replace(quote(pg_server.password, safe=""), quote(secret, safe=""))
    assert secret in bad_url
    bad = PostgresBackend(bad_url, connect_timeout=5)
    assert secret not in repr(bad) and "***" in repr(bad)
    with pytest.raises(psycopg.OperationalError) as err:
        await bad.open()
    text = f"{err.value!s} {err.value!r}"
    assert secret not in text
    assert "password authentication failed" in text
    with pytest.raises(psycopg.OperationalError) as err:
        await migrate(bad_url)
    assert secret not in str(err.value)
    with pytest.raises(ValueError) as bad_dsn:
        PostgresBackend(f"postgresql://u:{secret}@db/app?bogus=1&x=%zz")
    assert secret not in str(bad_dsn.value)
    good = PostgresBackend(postgres_url)
    assert pg_server.password not in repr(good)
    assert secret not in caplog.text and pg_server.password not in caplog.text


# ---- group commit of starts -----------------------------------------------------------------


async def test_concurrent_starts_are_batched_and_exact(postgres_url: str) -> None:
    # Starts made together go in one statement; an id taken before, or twice within the
    # batch, is decided the single way: exactly one start of an id wins, the others get
    # WorkflowAlreadyStartedError, and every created run has exactly its first inbox events.
    clock = FakeClock()
    async with backend(postgres_url, clock=clock) as b:
        batches: list[list[str]] = []
        original = b._start_many

        async def recording(runs: list[Any]) -> list[Any]:
            batches.append([r.instance_id for r in runs])
            return await original(runs)

        b._start_many = recording  # type: ignore[method-assign]
        await start(b, "open-before")
        await start(b, "closed-before")
        await start(b, "refused-before")
        for instance_id in ("closed-before", "refused-before"):
            await b.terminate(instance_id, "make room")
        batches.clear()

        fresh = [new_run(f"new-{i}") for i in range(20)]
        dups = [new_run("dup") for _ in range(4)]
        delayed = new_run("delayed", visible_at=T0 + 60)
        deadline = new_run("deadline", execution_deadline=T0 + 30)
        reuse = new_run("closed-before")
        refused = new_run("refused-before", id_reuse="refuse")
        again = new_run("open-before")
        runs = [*fresh[:10], *dups[:2], delayed, again, reuse, *fresh[10:], *dups[2:], deadline]
        runs.append(refused)
        results = await asyncio.gather(*(b.create_run(r) for r in runs), return_exceptions=True)
        outcome = {id(r): res for r, res in zip(runs, results, strict=True)}

        assert any(len(ids) > 1 for ids in batches), batches
        assert all(len(ids) == len(set(ids)) for ids in batches), batches
        for run in [*fresh, delayed, deadline, reuse]:
            assert outcome[id(run)] is None, (run.instance_id, outcome[id(run)])
            assert (await b.describe(run.instance_id)).run_id == run.run_id
        for run in (again, refused):
            assert isinstance(outcome[id(run)], WorkflowAlreadyStartedError), outcome[id(run)]
        winners = [d for d in dups if outcome[id(d)] is None]
        assert len(winners) == 1, [outcome[id(d)] for d in dups]
        assert all(
            isinstance(outcome[id(d)], WorkflowAlreadyStartedError)
            for d in dups
            if d not in winners
        )
        assert (await b.describe("dup")).run_id == winners[0].run_id
        assert (await b.describe("open-before")).run_id != again.run_id

        claimed = {t.instance_id: t for t in await b.claim_workflow_tasks(["default"], 300, 100)}
        expected = {r.instance_id for r in [*fresh, winners[0], deadline, reuse]} | {"open-before"}
        assert set(claimed) == expected
        for run in [*fresh, winners[0], deadline, reuse]:
            task = claimed[run.instance_id]
            assert task.run_id == run.run_id and task.history_length == 0
            assert [i.event for i in task.inbox] == [run.started_event]
        assert not await b.claim_workflow_tasks(["default"], 300, 100)
        clock.advance(30)  # the deadline's timed_out event, then the delayed start
        await b.release_workflow_task(claimed["deadline"])
        [task] = await b.claim_workflow_tasks(["default"], 300, 100)
        assert [orjson_kind(i.event) for i in task.inbox] == ["workflow_started", "timed_out"]
        clock.advance(30)
        [task] = await b.claim_workflow_tasks(["default"], 300, 100)
        assert (task.instance_id, [orjson_kind(i.event) for i in task.inbox]) == (
            "delayed",
            ["workflow_started"],
        )
        rows = await fetch(
            postgres_url, "SELECT count(*) FROM ostinato.runs WHERE status = 'running'"
        )
        assert rows == [(len(fresh) + 5,)]


async def test_batched_start_retried_after_a_lost_commit(postgres_url: str) -> None:
    # The connection breaks after the batch statement committed: the retry finds the ids
    # taken, and each caller, seeing its own run, succeeds (no false error, no second run).
    async with backend(postgres_url) as b:
        original = b._fetchall
        kill = True

        async def lose_the_answer(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            # The statement commits, then the connection dies before its answer arrives.
            nonlocal kill
            rows = await original(conn, query, *args, **kwargs)
            if query == "create_runs" and kill:
                kill = False
                await _kill_connection_of(postgres_url, conn)
                await conn.execute("SELECT 1")
            return rows

        b._fetchall = lose_the_answer  # type: ignore[method-assign]
        runs = [new_run(f"lost-{i}") for i in range(5)]
        await asyncio.gather(*(b.create_run(r) for r in runs))
        assert not kill
        for run in runs:
            assert (await b.describe(run.instance_id)).run_id == run.run_id
        rows = await fetch(
            postgres_url, "SELECT count(*), count(DISTINCT instance_id) FROM ostinato.runs"
        )
        assert rows == [(5, 5)]
        rows = await fetch(postgres_url, "SELECT count(*) FROM ostinato.inbox")
        assert rows == [(5,)]
