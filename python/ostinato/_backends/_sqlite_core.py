"""The SQLite backend's connection, writer thread and group commit (``SqliteBackend``'s
operations are in ``sqlite``).

Each backend object owns one connection, used only by one writer thread, so the event loop
never blocks on the database. Coroutines queue operations; the thread takes everything that
is queued, runs it in ONE transaction with each operation under its own SAVEPOINT (an
operation that raises rolls back alone and its caller gets the error) and commits once:
*group commit*. One fsync then covers many workflow tasks, which is what makes a high task
rate possible with ``synchronous=FULL``.

Several processes may share the file: write transactions start with ``BEGIN IMMEDIATE``, wait
on SQLite's busy handler and are retried with back-off, so callers never see
``database is locked``. Another process's commits are noticed by the writer thread's
``PRAGMA data_version`` check (every 20 ms while anyone waits), which wakes every waiter.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._contract import Backend
from ._sqlite_sql import QUERIES as Q
from ._sqlite_sql import load_migrations, split_statements
from ._sqlite_store import Wake
from ._types import Clock, system_clock
from ._wakeups import Waiters

__all__ = ["MAX_BATCH", "POLL_MIN", "SAFETY_NET", "Operation", "SqliteCore"]

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection, Wake], T]

POLL_MIN = 0.02
# Longest a waiter sleeps without being woken (in case a wake-up is ever missed).
SAFETY_NET = 1.0
MAX_BATCH = 512

_SQLITE_BUSY = 5  # result codes; the sqlite3 module names them only from Python 3.11
_SQLITE_LOCKED = 6


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    message = str(exc)
    return "locked" in message or "busy" in message


@dataclass(eq=False)
class _Op(Generic[T]):
    fn: Operation[T]
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


def _settle(outcomes: list[tuple[_Op[Any], bool, Any]]) -> None:
    for op, ok, value in outcomes:
        if op.future.done():  # the caller was cancelled
            continue
        if ok:
            op.future.set_result(value)
        else:
            op.future.set_exception(value)


class SqliteCore(Backend):
    """The state and plumbing of ``SqliteBackend``: open/close, migrations, the writer thread
    and its transactions, and ``_call`` / ``_read`` to run an operation on it."""

    def __init__(
        self,
        path: str,
        *,
        clock: Clock = system_clock,
        durable: bool = True,
        busy_timeout: float = 5.0,
        lock_timeout: float = 60.0,
        group_commit: bool = True,
    ) -> None:
        self.path = str(path)
        self.clock = clock
        self.durable = durable
        self.busy_timeout = busy_timeout
        self.lock_timeout = lock_timeout
        self.group_commit = group_commit
        self._waiters = Waiters()
        self._queue: queue.SimpleQueue[_Op[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready: concurrent.futures.Future[None] | None = None
        self._stopped: concurrent.futures.Future[None] | None = None
        self._closed = False
        # Counted on the writer thread: transactions committed and operations they carried.
        self.transactions = 0
        self.operations = 0

    # ---- lifecycle and the writer thread ------------------------------------------------------

    async def open(self) -> None:
        if self._ready is None:
            self._closed = False
            self._ready = concurrent.futures.Future()
            self._stopped = concurrent.futures.Future()
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=self._thread_main,
                args=(self._ready, self._stopped, self._queue),
                name=f"ostinato-sqlite:{self.path}",
                daemon=True,
            )
            self._thread.start()
        ready = self._ready
        try:
            await asyncio.wrap_future(ready)
        except BaseException:
            if ready.done() and self._ready is ready:
                self._ready = None  # let a later open() try again (file fixed, lock gone)
            raise

    async def close(self) -> None:
        ready, stopped = self._ready, self._stopped
        if ready is None or stopped is None:
            return
        self._closed = True
        self._ready = None
        self._queue.put(None)
        await asyncio.wrap_future(stopped)
        self._waiters.notify_all()

    def _thread_main(
        self,
        ready: concurrent.futures.Future[None],
        stopped: concurrent.futures.Future[None],
        ops: queue.SimpleQueue[_Op[Any] | None],
    ) -> None:
        conn: sqlite3.Connection | None = None
        try:
            try:
                conn = self._connect()
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            self._serve(conn, ops)
        finally:
            if conn is not None:
                conn.close()
            stopped.set_result(None)

    def _connect(self) -> sqlite3.Connection:
        try:
            self._create_private()
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # we issue BEGIN / COMMIT ourselves
                cached_statements=256,
            )
        except (OSError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and "unable to open" not in str(exc):
                raise
            raise sqlite3.OperationalError(self._open_error(exc)) from None
        try:
            self._retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            self._retry_busy(lambda: self._migrate(conn))
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_private(self) -> None:
        """Create a new database file readable and writable by its owner only (histories
        hold personal data); SQLite gives its -wal and -shm files the same mode. An
        existing file keeps its mode."""
        if self.path == ":memory:" or self.path.startswith("file:") or not self.path:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        os.close(fd)

    def _open_error(self, exc: BaseException) -> str:
        full = os.path.abspath(self.path)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        folder = os.path.dirname(full)
        if not os.path.isdir(folder):
            reason += f" (the directory {folder!r} does not exist)"
        return (
            f"unable to open SQLite database file {full!r}: {reason}. In a URL, "
            "sqlite:///x.db is relative to the working directory "
            f"({os.getcwd()}) and sqlite:////abs/x.db is absolute"
        )

    def _retry_busy(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying with back-off while another process holds the lock."""
        give_up = time.monotonic() + self.lock_timeout
        delay = 0.001
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > give_up:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrations = load_migrations()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(Q["create_schema_version"])
            applied = {v for (v,) in conn.execute(Q["applied_versions"])}
            newest = max(applied, default=0)
            if newest > len(migrations):
                raise RuntimeError(
                    f"{self.path} has schema version {newest}, newer than this ostinato knows "
                    f"({len(migrations)}); upgrade ostinato to open it"
                )
            for version, name, sql in migrations:
                if version in applied:
                    continue
                for statement in split_statements(sql):
                    conn.execute(statement)
                conn.execute(Q["record_schema_version"], (version, name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _serve(self, conn: sqlite3.Connection, ops: queue.SimpleQueue[_Op[Any] | None]) -> None:
        limit = MAX_BATCH if self.group_commit else 1
        stopping = False
        # Commits by other processes are noticed here, once for every waiter: PRAGMA
        # data_version changes when another connection commits to the file.
        seen_version = conn.execute("PRAGMA data_version").fetchone()[0]
        checked_at = time.monotonic()
        while not stopping:
            now = time.monotonic()
            if now - checked_at >= POLL_MIN and self._waiters.waiting():
                checked_at = now
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != seen_version:
                    seen_version = version
                    self._waiters.notify_all()
            try:
                first = ops.get(timeout=POLL_MIN if self._waiters.waiting() else None)
            except queue.Empty:
                continue
            if first is None:
                break
            batch = [first]
            while len(batch) < limit:
                try:
                    nxt = ops.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._run_batch(conn, batch)
        # Anything queued after close() fails instead of hanging its caller.
        while True:
            try:
                late = ops.get_nowait()
            except queue.Empty:
                break
            if late is not None:
                error = RuntimeError(f"{self!r} is closed")
                late.loop.call_soon_threadsafe(_settle, [(late, False, error)])

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op[Any]]) -> None:
        try:
            outcomes, wake = self._retry_busy(lambda: self._transaction(conn, batch))
            self.transactions += 1
            self.operations += len(batch)
        except Exception as exc:  # the transaction itself failed (disk full, I/O error ...)
            outcomes = [(op, False, _copy_error(exc)) for op in batch]
            wake = set()
        # Waiters first: a caller resuming from its result must not see its own write's
        # wake-up arrive later, in a wait it starts afterwards.
        if wake:
            self._waiters.notify(wake)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Op[Any], bool, Any]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, settled in by_loop.items():
            # RuntimeError: that loop is closed, so nobody awaits these results.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[_Op[Any]]
    ) -> tuple[list[tuple[_Op[Any], bool, Any]], Wake]:
        write = any(op.write for op in batch)
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        outcomes: list[tuple[_Op[Any], bool, Any]] = []
        wake: Wake = set()
        try:
            for op in batch:
                if write:
                    conn.execute("SAVEPOINT op")
                op_wake: Wake = set()
                try:
                    value = op.fn(conn, op_wake)
                except sqlite3.OperationalError as exc:
                    if _is_busy(exc):
                        raise  # retry the whole batch
                    outcomes.append((op, False, exc))
                except Exception as exc:
                    outcomes.append((op, False, exc))
                else:
                    outcomes.append((op, True, value))
                    wake |= op_wake
                    if write:
                        conn.execute("RELEASE op")
                    continue
                if write:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes, wake

    async def _call(self, fn: Operation[T], *, write: bool = True) -> T:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if self._ready is None or not self._ready.done():
            await self.open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Op(fn, write, loop, future))
        return await future

    async def _read(self, fn: Operation[T]) -> T:
        return await self._call(fn, write=False)

    # ---- inspection (tests, ostinato.testing) -----------------------------------------------

    async def pragmas(self) -> dict[str, object]:
        """journal_mode, synchronous (0-3) and busy_timeout (ms) of the connection."""

        def op(conn: sqlite3.Connection, wake: Wake) -> dict[str, object]:
            names = ("journal_mode", "synchronous", "busy_timeout")
            return {n: conn.execute(f"PRAGMA {n}").fetchone()[0] for n in names}

        return await self._read(op)

    async def schema_versions(self) -> list[tuple[int, str]]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[tuple[int, str]]:
            rows = conn.execute(Q["schema_versions"])
            return [(v, n) for v, n in rows]

        return await self._read(op)


def _copy_error(exc: Exception) -> Exception:
    """One exception object per caller: raising the same instance in many tasks would
    chain their tracebacks together."""
    try:
        clone = type(exc)(*exc.args)
    except Exception:
        return exc
    clone.__cause__ = exc
    return clone
