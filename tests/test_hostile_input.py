"""Hostile input and tampered stores, through every public entry point, on every backend.

Bad arguments get a clear error at the call site that names the argument, and nothing is
stored (Client methods, handle methods, SyncClient, ``connect()``, the CLI). A store whose rows
were tampered with says so (the run is shown blocked with the reason) while the rest stays
listable and running. SQLite paths and file modes, PostgreSQL credentials, connect timeouts
and outages, and id conflicts of ``start_workflow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ostinato
import pytest
from ostinato import activity, workflow
from ostinato.testing import replay


@pytest.fixture(params=[1000, 0], ids=["sticky", "replay"])
def cache_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@workflow.defn(name="hostile.waiter")
async def waiter() -> str:
    """Waits for a "go" signal, then returns what it carried."""
    return str(await workflow.signal_channel("go").receive())


@activity.defn(name="hostile.echo")
async def echo(value: str) -> str:
    return value


@workflow.defn(name="hostile.echoes")
async def echoes(value: str) -> str:
    return str(await workflow.execute_activity(echo, value, start_to_close_timeout=10))


@contextlib.asynccontextmanager
async def client_for(url: str) -> AsyncIterator[ostinato.Client]:
    backend = ostinato.connect(url)
    await backend.open()
    try:
        yield ostinato.Client(backend)
    finally:
        await backend.close()


async def all_ids(client: ostinato.Client) -> list[str]:
    page, _ = await client.list_workflows(limit=1000)
    return sorted(d.instance_id for d in page)


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ostinato", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli_bytes(*args: str | bytes) -> tuple[int, str]:
    """The CLI given raw argv bytes (not UTF-8 ones reach Python as lone surrogates)."""
    out = subprocess.run(
        [sys.executable, "-m", "ostinato", *args], capture_output=True, timeout=120, check=False
    )
    return out.returncode, out.stderr.decode(errors="replace")


SURROGATE = "bad\udc80id"
NUL = "bad\x00id"


# ---- 12: bad arguments are refused at the call site, naming the argument ------------------

# (call, error type, text the message must contain)
BAD_CLIENT_CALLS: list[tuple[str, Callable[[ostinato.Client], Any], type[Exception], str]] = [
    ("queue=123", lambda c: c.start_workflow(waiter, id="w", queue=123), TypeError, "queue"),
    ("queue=''", lambda c: c.start_workflow(waiter, id="w", queue=""), ValueError, "queue"),
    ("queue NUL", lambda c: c.start_workflow(waiter, id="w", queue=NUL), ValueError, "queue"),
    ("id=5", lambda c: c.start_workflow(waiter, id=5), TypeError, "id"),
    ("id surrogate", lambda c: c.start_workflow(waiter, id=SURROGATE), ValueError, "id"),
    ("id NUL", lambda c: c.start_workflow(waiter, id=NUL), ValueError, "id"),
    ("name surrogate", lambda c: c.start_workflow(SURROGATE), ValueError, "workflow"),
    (
        "start_delay=inf",
        lambda c: c.start_workflow(waiter, id="w", start_delay=float("inf")),
        ValueError,
        "start_delay",
    ),
    (
        "start_delay=2**70",
        lambda c: c.start_workflow(waiter, id="w", start_delay=2**70),
        ValueError,
        "start_delay",
    ),
    (
        "execution_timeout=nan",
        lambda c: c.start_workflow(waiter, id="w", execution_timeout=float("nan")),
        ValueError,
        "execution_timeout",
    ),
    (
        "id_conflict",
        lambda c: c.start_workflow(waiter, id="w", id_conflict="replace"),
        ValueError,
        "id_conflict",
    ),
    (
        "terminate_existing+refuse",
        lambda c: c.start_workflow(
            waiter, id="w", id_conflict="terminate_existing", id_reuse_policy="refuse"
        ),
        ValueError,
        "id_reuse_policy",
    ),
    (
        "argument 2**70",
        lambda c: c.start_workflow(echoes, 2**70, id="w2"),
        ostinato.PayloadError,
        "argument 1 of workflow",
    ),
    (
        "argument surrogate",
        lambda c: c.start_workflow(echoes, SURROGATE, id="w2"),
        ostinato.PayloadError,
        "argument 1 of workflow",
    ),
    (
        "signal value 2**70",
        lambda c: c.get_handle("w").signal("go", 2**70),
        ostinato.PayloadError,
        "value of signal 'go'",
    ),
    ("limit=2**70", lambda c: c.list_workflows(limit=2**70), ValueError, "limit"),
    ("limit=0", lambda c: c.list_workflows(limit=0), ValueError, "limit"),
    ("limit=True", lambda c: c.list_workflows(limit=True), TypeError, "limit"),
    ("limit='5'", lambda c: c.list_workflows(limit="5"), TypeError, "limit"),
    ("status", lambda c: c.list_workflows(status="zombie"), ValueError, "status"),
    ("cursor", lambda c: c.list_workflows(cursor="r" + "f" * 40), ValueError, "cursor"),
    ("cursor surrogate", lambda c: c.list_workflows(cursor=SURROGATE), ValueError, "cursor"),
    ("workflow filter", lambda c: c.list_workflows(workflow=NUL), ValueError, "workflow"),
    ("get_vars id", lambda c: c.get_vars(SURROGATE), ValueError, "id"),
    ("get_handle id", lambda c: c.get_handle(NUL).describe(), ValueError, "id"),
    ("get_handle run_id", lambda c: c.get_handle("w", run_id=SURROGATE), ValueError, "run_id"),
    ("signal name", lambda c: c.get_handle("w").signal(SURROGATE), ValueError, "signal name"),
    ("signal name int", lambda c: c.get_handle("w").signal(7), TypeError, "signal name"),
    ("cancel reason", lambda c: c.get_handle("w").cancel(SURROGATE), ValueError, "reason"),
    ("terminate reason", lambda c: c.get_handle("w").terminate(NUL), ValueError, "reason"),
    ("terminate reason int", lambda c: c.get_handle("w").terminate(3), TypeError, "reason"),
    ("result timeout", lambda c: c.get_handle("w").result(timeout=-1), ValueError, "timeout"),
    ("result timeout nan", lambda c: c.get_handle("w").result(float("nan")), ValueError, "timeout"),
]


async def _bad_call(call: Callable[[ostinato.Client], Any], client: ostinato.Client) -> None:
    result = call(client)
    if asyncio.iscoroutine(result):
        await result


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CLIENT_CALLS],
)
async def test_client_refuses_bad_arguments(
    backend_url: str, call: Callable[[ostinato.Client], Any], error: type[Exception], names: str
) -> None:
    async with client_for(backend_url) as client:
        handle = await client.start_workflow(waiter, id="w")
        with pytest.raises(error, match=names):
            await _bad_call(call, client)
        # Nothing was stored, and the open run is untouched.
        assert await all_ids(client) == ["w"]
        desc = await handle.describe()
        assert desc.status == "running" and desc.history_length == 0
        assert desc.blocked_reason is None


def test_sync_client_refuses_bad_arguments(backend_url: str) -> None:
    with ostinato.SyncClient(backend_url) as client:
        client.start_workflow(waiter, id="w")
        with pytest.raises(TypeError, match="queue"):
            client.start_workflow(waiter, id="x", queue=123)
        with pytest.raises(ValueError, match="limit"):
            client.list_workflows(limit=2**70)
        with pytest.raises(ValueError, match="reason"):
            client.get_handle("w").terminate(SURROGATE)
        with pytest.raises(ValueError, match="id"):
            client.get_handle(NUL)
        page, _ = client.list_workflows()
        assert [d.instance_id for d in page] == ["w"] and page[0].status == "running"


def test_connect_refuses_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="URL"):
        ostinato.connect(b"sqlite:///x.db")  # type: ignore[arg-type]
    for url in (f"sqlite:///{tmp_path}/a\x00b.db", f"sqlite:///{tmp_path}/a\udc80b.db"):
        with pytest.raises(ValueError, match="url"):
            ostinato.connect(url)
    assert list(tmp_path.iterdir()) == []


async def test_cli_names_the_bad_argument(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    async with client_for(url) as client:
        await client.start_workflow(waiter, id="w")
    for args, names in [
        (["list", url, "--limit", str(2**70)], "limit"),
        (["list", url, "--limit", "-5"], "limit"),
        (["list", url, "--status", "zombie"], "status"),
        # Bytes that are not UTF-8 reach Python as lone surrogates.
        (["describe", url, b"bad\xffid"], "id"),
        (["terminate", url, "w", "--reason", b"no\xff"], "reason"),
        (["cancel", url, b"w\xff"], "id"),
        (["history", url, "w", "--run-id", b"r\xff"], "run_id"),
    ]:
        returncode, stderr = cli_bytes(*args)
        assert returncode == 1, (args, stderr)
        assert names in stderr and "Traceback" not in stderr, (args, stderr)
    async with client_for(url) as client:
        page, _ = await client.list_workflows()
        assert [(d.instance_id, d.status) for d in page] == [("w", "running")]


# ---- 23: id conflicts through the client ----------------------------------------------------


async def test_id_conflict_through_the_client(backend_url: str, cache_size: int) -> None:
    async with client_for(backend_url) as client:
        worker = ostinato.Worker(
            client.backend, workflows=[waiter], workflow_cache_size=cache_size, poll_interval=0.05
        )
        async with worker:
            first = await client.start_workflow(waiter, id="order")
            with pytest.raises(ostinato.WorkflowAlreadyStartedError):
                await client.start_workflow(waiter, id="order")
            same = await client.start_workflow(waiter, id="order", id_conflict="use_existing")
            assert (await same.describe()).run_id == (await first.describe()).run_id
            first_run = (await first.describe()).run_id
            await eventually(
                lambda: _history_length(first), "the first run's first task", timeout=20
            )
            new = await client.start_workflow(waiter, id="order", id_conflict="terminate_existing")
            old = client.get_handle("order", run_id=first_run)
            with pytest.raises(ostinato.WorkflowTerminatedError, match="id_conflict"):
                await old.result(timeout=10)
            await new.signal("go", "second")
            assert await new.result(timeout=20) == "second"
            history = await old.history()
            assert history[-1]["kind"] == "workflow_terminated"
            replay(waiter, history)


async def _history_length(handle: ostinato.WorkflowHandle[Any]) -> int:
    return (await handle.describe()).history_length


# ---- 13 / 14: a tampered store says so; the rest stays listable and running -----------------


def tamper(url: str, sql: str, *params: Any) -> None:
    """Run ``sql`` on the store behind ``url`` directly, as an operator (or an attacker) would.
    Tables are named without schema; PostgreSQL's CHECK on runs.status is dropped first."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        with conn:
            conn.execute(sql.replace("%s", "?"), params)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("SET search_path TO ostinato")
        pg.execute("ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_status_known")
        pg.execute(sql.encode(), params)


def stored(backend_url: str) -> str:
    if backend_url == "memory://":
        pytest.skip("the memory backend has no stored rows to tamper with")
    return backend_url


async def test_run_in_an_unknown_status_is_shown_blocked(backend_url: str) -> None:
    url = stored(backend_url)
    async with client_for(url) as client:
        bad = await client.start_workflow(waiter, id="bad")
        tamper(url, "UPDATE runs SET status = 'zombie' WHERE instance_id = %s", "bad")
        good = await client.start_workflow(echoes, "still works", id="good")
        page, _ = await client.list_workflows()
        by_id = {d.instance_id: d for d in page}
        assert sorted(by_id) == ["bad", "good"]
        assert by_id["bad"].status == "running"
        assert "zombie" in (by_id["bad"].blocked_reason or "")
        desc = await bad.describe()
        assert desc.is_blocked and "corrupt" in (desc.blocked_reason or "")
        with pytest.raises(TimeoutError, match="zombie"):
            await bad.result(timeout=0.2)
        with pytest.raises(TimeoutError, match="zombie"):
            await asyncio.to_thread(_sync_result, url, 0.2, "bad")
        async with ostinato.Worker(
            client.backend, workflows=[echoes, waiter], activities=[echo], poll_interval=0.05
        ):
            assert await good.result(timeout=20) == "still works"
        out = cli("list", url)
        assert out.returncode == 0, out.stderr
        assert "BLOCKED" in out.stdout and "zombie" in out.stdout and "good" in out.stdout


async def test_history_length_that_disagrees_blocks_the_run(
    backend_url: str, cache_size: int
) -> None:
    url = stored(backend_url)
    async with client_for(url) as client:
        worker = ostinato.Worker(
            client.backend,
            workflows=[waiter, echoes],
            activities=[echo],
            workflow_cache_size=cache_size,
            poll_interval=0.05,
        )
        async with worker:
            bad = await client.start_workflow(waiter, id="bad")
            length = await eventually(lambda: _history_length(bad), "the first task")
            tamper(
                url,
                "UPDATE runs SET history_length = history_length + 3 WHERE instance_id = %s",
                "bad",
            )
            await bad.signal("go", "x")

            async def blocked() -> str | None:
                return (await bad.describe()).blocked_reason

            reason = await eventually(blocked, "the run to be blocked")
            assert "corrupt" in reason and f"says {length + 3} events" in reason
            with pytest.raises(ostinato.HistoryCorruptError, match="corrupt"):
                await bad.history()
            with pytest.raises(TimeoutError, match="corrupt"):
                await bad.result(timeout=0.2)
            # The rest of the store keeps running.
            assert await client.start_workflow(echoes, "ok", id="good") is not None
            assert await client.get_handle("good").result(timeout=20) == "ok"
            assert "bad" in await all_ids(client)
        out = cli("history", url, "bad")
        assert out.returncode == 1 and "HistoryCorruptError" in out.stderr


async def test_unreadable_history_event_is_a_corrupt_history_error(backend_url: str) -> None:
    url = stored(backend_url)
    async with client_for(url) as client:
        handle = await client.start_workflow(echoes, "x", id="h")
        async with ostinato.Worker(
            client.backend, workflows=[echoes], activities=[echo], poll_interval=0.05
        ):
            assert await handle.result(timeout=20) == "x"
        tamper(url, "UPDATE history SET event = %s WHERE seq = 2", b"{not json")
        with pytest.raises(ostinato.HistoryCorruptError, match="event #2"):
            await handle.history()
        assert (await handle.describe()).status == "completed"
        tamper(url, "UPDATE runs SET result = %s WHERE instance_id = %s", b"{not json", "h")
        with pytest.raises(ostinato.PayloadError, match="not valid JSON"):
            await client.get_handle("h").result(timeout=5)
        page, _ = await client.list_workflows()
        assert [d.instance_id for d in page] == ["h"]


# ---- 17: SQLite paths and file modes -------------------------------------------------------


async def test_sqlite_unopenable_path_names_it_and_explains_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = ostinato.connect("sqlite:///missing/dir/app.db")
    with pytest.raises(sqlite3.OperationalError) as err:
        await backend.open()
    message = str(err.value)
    assert str(tmp_path / "missing" / "dir" / "app.db") in message
    assert "sqlite:///x.db is relative" in message and "sqlite:////abs/x.db is absolute" in message
    assert "does not exist" in message
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        async with client_for("sqlite:////no/such/dir/app.db") as client:
            await client.list_workflows()
    with pytest.raises(ostinato.WorkflowNotFoundError):  # the path is fixed: it works now
        (tmp_path / "missing" / "dir").mkdir(parents=True)
        async with client_for("sqlite:///missing/dir/app.db") as client:
            await client.get_handle("x").describe()
    out = cli("list", "sqlite:///missing/other/app.db")
    assert out.returncode == 1
    assert "sqlite:////abs/x.db is absolute" in out.stderr and "Traceback" not in out.stderr


async def test_sqlite_files_are_private_to_their_owner(tmp_path: Path, cache_size: int) -> None:
    path = tmp_path / "private.db"
    async with client_for(f"sqlite:///{path}") as client:
        async with ostinato.Worker(
            client.backend,
            workflows=[echoes],
            activities=[echo],
            workflow_cache_size=cache_size,
            poll_interval=0.05,
        ):
            handle = await client.start_workflow(echoes, "card 4111", id="p")
            assert await handle.result(timeout=20) == "card 4111"
        files = sorted(p.name for p in tmp_path.iterdir())
        assert {"private.db", "private.db-wal", "private.db-shm"} <= set(files)
        for name in files:
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode & 0o077 == 0, f"{name} is {mode:o}"
    # An existing file keeps the mode its owner gave it.
    shared = tmp_path / "shared.db"
    shared.touch()
    os.chmod(shared, 0o640)
    async with client_for(f"sqlite:///{shared}") as client:
        await client.list_workflows()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640


# ---- 19: an error for a too-deep value abbreviates its path ---------------------------------


def nested(depth: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return outer


async def test_too_deep_value_error_abbreviates_the_path(backend_url: str) -> None:
    async with client_for(backend_url) as client:
        handle = await client.start_workflow(waiter, id="w")
        with pytest.raises(ostinato.PayloadError) as err:
            await client.start_workflow(echoes, nested(400), id="deep")
        message = str(err.value)
        assert "argument 1 of workflow 'hostile.echoes'" in message
        assert "more levels" in message and "nested too deeply" in message
        assert len(message) < 300 and message.count("[0]") < 16
        with pytest.raises(ostinato.PayloadError, match="more levels") as err:
            await handle.signal("go", {"order": {"lines": nested(400)}})
        assert "['order']['lines'][0]" in str(err.value) and len(str(err.value)) < 300
        assert await all_ids(client) == ["w"]
        assert (await handle.describe()).history_length == 0


# ---- 18: PostgreSQL credentials, connect timeouts and outages -------------------------------

SECRET = "S3cr3t-Pa55"


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
async def test_pg_password_is_masked_in_every_connect_error(pg_server: Any) -> None:
    pytest.importorskip("psycopg")
    port = closed_port()
    real = pg_server.url("postgres")
    wrong_password = real.replace(pg_server.password, SECRET)
    assert SECRET in wrong_password
    urls = [
        f"postgresql://ostinato:{SECRET}@127.0.0.1:{port}/db?connect_timeout=2",
        f"postgres://ostinato:{SECRET}@127.0.0.1:{port}/db",
        wrong_password,
        f"postgresql:/ostinato:{SECRET}@127.0.0.1:{port}/db",
        f"postgres//ostinato:{SECRET}@127.0.0.1:{port}/db",
        f"host=127.0.0.1 port={port} user=ostinato password={SECRET} dbname=db",
        f"postgresql://ostinato:{SECRET}@127.0.0.1:{port}/db\x00",
        f"postgresql://ostinato:{SECRET}@127.0.0.1:notaport/db",
    ]
    for url in urls:
        messages = []
        try:
            backend = ostinato.connect(url)
            assert SECRET not in repr(backend)
            async with client_for(url) as client:
                await client.list_workflows()
        except Exception as exc:
            messages.append(f"{exc!r} {exc.__cause__!r} {exc.__context__!r}")
        else:
            raise AssertionError(f"{url!r} connected")
        with pytest.raises(Exception) as err:
            ostinato.SyncClient(url).list_workflows()
        messages.append(str(err.value))
        if "\x00" not in url:  # not passable as a command-line argument
            out = cli("list", url)
            assert out.returncode == 1
            messages.append(out.stderr)
        for message in messages:
            assert SECRET not in message, message
    out = cli("db", "migrate", wrong_password)
    assert out.returncode == 1 and SECRET not in out.stderr + out.stdout
    assert "***" in out.stderr


@pytest.mark.postgres
async def test_pg_outage_every_client_call_honours_its_timeout(
    pg_server: Any, postgres_url: str
) -> None:
    """With the server down, result(timeout=T) gives up about T seconds later (not after
    every retry has waited its own connect timeout), and other calls after connect_timeout,
    saying so. The bounds are generous: the point is seconds, not the 33-43 s of before."""
    psycopg = pytest.importorskip("psycopg")
    url = f"{postgres_url}?connect_timeout=2"
    async with client_for(url) as client:
        handle = await client.start_workflow(waiter, id="w")
        pg_server.stop()
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="within 3s") as err:
                await handle.result(timeout=3)
            assert time.monotonic() - started < 3 + 5
            assert "could not be read" in str(err.value)
            assert pg_server.password not in str(err.value)
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError, match="connect_timeout=2s") as err:
                await client.start_workflow(waiter, id="x")
            assert time.monotonic() - started < 2 + 5
            assert pg_server.password not in str(err.value)
            with pytest.raises(psycopg.OperationalError, match="connect_timeout"):
                await handle.describe()
            with pytest.raises(TimeoutError, match="within 1s"):
                await asyncio.to_thread(_sync_result, url, 1)
        finally:
            pg_server.start()
        # The same client works again once the server is back (and its connection pool
        # has reconnected: result() with a timeout rides that out by itself).

        async def signalled() -> bool:
            try:
                await handle.signal("go", "back")
            except psycopg.OperationalError:
                return False
            return True

        await eventually(signalled, "the client to reconnect", timeout=60)
        async with ostinato.Worker(client.backend, workflows=[waiter], poll_interval=0.05):
            assert await handle.result(timeout=60) == "back"


@pytest.mark.postgres
async def test_pg_worker_started_while_the_server_is_down_waits(
    pg_server: Any, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(postgres_url) as client:
        handle = await client.start_workflow(echoes, "late", id="late")
    pg_server.stop()
    worker_backend = ostinato.connect(postgres_url, connect_timeout=1)
    worker = ostinato.Worker(
        worker_backend, workflows=[echoes], activities=[echo], poll_interval=0.05
    )
    caplog.set_level("WARNING", logger="ostinato.worker")
    runner = asyncio.create_task(worker.run())
    try:

        async def warned() -> bool:
            return "cannot open its backend" in caplog.text

        await eventually(warned, "the worker to say why it waits")
        assert not runner.done()
        assert pg_server.password not in caplog.text and "***" in caplog.text
        pg_server.start()
        async with client_for(postgres_url) as client:
            assert await client.get_handle("late").result(timeout=60) == "late"
        assert not runner.done()
    finally:
        if not getattr(pg_server, "running", True):
            pg_server.start()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await worker_backend.close()
    del handle


def _sync_result(url: str, timeout: float, id: str = "w") -> Any:
    with ostinato.SyncClient(url) as client:
        return client.get_handle(id).result(timeout=timeout)
