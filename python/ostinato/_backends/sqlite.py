"""The SQLite backend (stdlib ``sqlite3``): one file, many processes, fsync on commit.

Concurrency model
-----------------
Each backend object owns one connection, used only by one writer thread, so the event loop
never blocks on the database. Coroutines queue operations; the thread takes everything that
is queued, runs it in ONE transaction with each operation under its own SAVEPOINT (an
operation that raises rolls back alone and its caller gets the error) and commits once:
*group commit*. One fsync then covers many workflow tasks, which is what makes a high task
rate possible with ``synchronous=FULL``.

Several processes may share the file: write transactions start with ``BEGIN IMMEDIATE``, wait
on SQLite's busy handler and are retried with back-off, so callers never see
``database is locked``. Claims run inside those transactions, so they are atomic across
processes. Another process's commits are noticed by polling (20-200 ms, adaptive); commits in
this process wake waiters at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib.resources
import os
import queue
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from .._backend import (
    ActivityState,
    ActivityTask,
    Backend,
    BackendStats,
    Clock,
    InboxEvent,
    NewRun,
    ParentRef,
    QueueBacklog,
    RunCount,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
    system_clock,
)
from .._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from . import _common as c

__all__ = ["SqliteBackend", "load_migrations"]

T = TypeVar("T")
Wake = set[Hashable]
Operation = Callable[[sqlite3.Connection, Wake], T]

POLL_MIN = 0.02
# Longest a waiter sleeps without being woken (in case a wake-up is ever missed).
SAFETY_NET = 1.0
MAX_BATCH = 512

_SQLITE_BUSY = 5  # result codes; the sqlite3 module names them only from Python 3.11
_SQLITE_LOCKED = 6
_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped with the package, in order."""
    folder = importlib.resources.files(__package__ or "ostinato._backends") / "sql" / "sqlite"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"SQLite migrations are not numbered 1..n: {versions}")
    return found


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit mid-transaction)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    statements: list[str] = []
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {pending[:80]!r}")
    return statements


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


_RUN_COLUMNS = (
    "id, instance_id, run_id, workflow_name, queue, status, created_at, updated_at, closed_at, "
    "history_length, result, blocked_reason, parent_instance_id, parent_run_id, "
    "parent_command_id, next_run_id, lease_token"
)


@dataclass(frozen=True, slots=True)
class _RunRow:
    pk: int
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    status: RunStatus
    created_at: float
    updated_at: float
    closed_at: float | None
    history_length: int
    result: bytes | None
    blocked_reason: str | None
    parent: ParentRef | None
    next_run_id: str | None
    lease_token: str | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> _RunRow:
        # A tampered row (unknown status, a text where a number belongs) reads as an open
        # run blocked with the reason, so listing and describing keep working.
        i = c.run_info(row[1:16])
        return cls(
            row[0], i.instance_id, i.run_id, i.workflow_name, i.queue, i.status, i.created_at,
            i.updated_at, i.closed_at, i.history_length, i.result, i.blocked_reason, i.parent,
            i.next_run_id, row[16],
        )  # fmt: skip

    def info(self) -> RunInfo:
        return RunInfo(
            instance_id=self.instance_id,
            run_id=self.run_id,
            workflow_name=self.workflow_name,
            queue=self.queue,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            closed_at=self.closed_at,
            history_length=self.history_length,
            result=self.result,
            blocked_reason=self.blocked_reason,
            parent=self.parent,
            next_run_id=self.next_run_id,
        )


# An inbox event ``i`` of run ``r`` that a worker may claim now: visible, its run open, not
# under a live lease, not delayed, and not left to another worker that has the run cached
# (until it has waited sticky_wait). Parameters: _claimable_params(now, worker, sticky_wait).
_CLAIMABLE = (
    "i.visible_at <= ? AND r.status = 'running' "
    "AND (r.lease_token IS NULL OR r.lease_expires_at <= ?) "
    "AND (r.ready_at IS NULL OR r.ready_at <= ?) "
    "AND (r.sticky_worker IS NULL OR r.sticky_worker = ? OR i.visible_at + ? <= ?)"
)


def _claimable_params(now: float, worker: str, sticky_wait: float) -> tuple[object, ...]:
    return (now, now, now, worker, sticky_wait, now)


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _carries_over(event: bytes) -> bool:
    """Inbox events addressed to the instance rather than to one run (see _close)."""
    kind = orjson.loads(event).get("kind")
    return kind in ("signal_received", "cancel_requested")


class SqliteBackend(Backend):
    """Workflows in one SQLite file (or ``":memory:"``).

    ``durable=True`` (default) runs with ``synchronous=FULL``: a committed workflow task
    survives a power loss. ``durable=False`` uses ``synchronous=NORMAL``: still safe against
    process crashes, but the last commits may be lost if the machine loses power; it saves
    one fsync per commit.
    ``busy_timeout`` is how long SQLite waits for another process's write lock in one try;
    ``lock_timeout`` bounds the total retrying before an operation fails.
    ``group_commit=False`` commits every operation on its own (for benchmarks).
    """

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
        self._waiters = c.Waiters()
        self._queue: queue.SimpleQueue[_Op[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready: concurrent.futures.Future[None] | None = None
        self._stopped: concurrent.futures.Future[None] | None = None
        self._closed = False
        # Counted on the writer thread: transactions committed and operations they carried.
        self.transactions = 0
        self.operations = 0

    def __repr__(self) -> str:
        return f"SqliteBackend({self.path!r}, durable={self.durable})"

    async def __aenter__(self) -> SqliteBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

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
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            applied = {v for (v,) in conn.execute("SELECT version FROM schema_version")}
            newest = max(applied, default=0)
            if newest > len(migrations):
                raise RuntimeError(
                    f"{self.path} has schema version {newest}, newer than this ostinato knows "
                    f"({len(migrations)}); upgrade ostinato to open it"
                )
            for version, name, sql in migrations:
                if version in applied:
                    continue
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
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
            rows = conn.execute("SELECT version, name FROM schema_version ORDER BY version")
            return [(v, n) for v, n in rows]

        return await self._read(op)

    async def next_visible_time(self) -> float | None:
        """The earliest time after now at which a timer, delayed start, back-off or activity
        retry becomes visible; None when nothing is scheduled."""

        def op(conn: sqlite3.Connection, wake: Wake) -> float | None:
            now = self.clock()
            times = [
                conn.execute("SELECT MIN(visible_at) FROM inbox WHERE visible_at > ?", (now,)),
                conn.execute(
                    "SELECT MIN(ready_at) FROM runs WHERE ready_at > ? AND status = 'running'",
                    (now,),
                ),
                conn.execute(
                    "SELECT MIN(visible_at) FROM activity_tasks WHERE lease_token IS NULL "
                    "AND visible_at > ? AND cancel_requested = 0",
                    (now,),
                ),
            ]
            found = [row[0] for cursor in times for row in cursor if row[0] is not None]
            return min(found, default=None)

        return await self._read(op)

    def wake_waiters(self) -> None:
        """Wake every waiter so it looks again (after moving a virtual clock forward)."""
        self._waiters.notify_all()

    # ---- helpers run on the writer thread ---------------------------------------------------

    @staticmethod
    def _run_row(conn: sqlite3.Connection, instance_id: str, run_id: str | None) -> _RunRow:
        if run_id is None:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = "
                "(SELECT latest_run FROM instances WHERE instance_id = ?)",
                (instance_id,),
            ).fetchone()
            if row is None:
                raise WorkflowNotFoundError(instance_id)
        else:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE instance_id = ? AND run_id = ?",
                (instance_id, run_id),
            ).fetchone()
            if row is None:
                raise WorkflowNotFoundError(
                    instance_id, f"no workflow with id {instance_id!r} and run id {run_id!r}"
                )
        return _RunRow.from_row(row)

    @staticmethod
    def _open_run(conn: sqlite3.Connection, instance_id: str) -> tuple[int, str] | None:
        """(pk, queue) of the instance's open run, if it has one."""
        row = conn.execute(
            "SELECT r.id, r.queue FROM instances i JOIN runs r ON r.id = i.latest_run "
            "WHERE i.instance_id = ? AND r.status = 'running'",
            (instance_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    @staticmethod
    def _push(
        conn: sqlite3.Connection,
        run: int,
        queue: str,
        event: bytes,
        visible_at: float,
        wake: Wake,
        timer_id: int | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO inbox (run, queue, visible_at, timer_id, event) VALUES (?, ?, ?, ?, ?)",
            (run, queue, visible_at, timer_id, bytes(event)),
        )
        wake.add(("workflow", queue))

    @staticmethod
    def _start_refusal(conn: sqlite3.Connection, new: NewRun) -> tuple[bool, bool]:
        """(refused, because an open run exists) for a run about to be created."""
        row = conn.execute(
            "SELECT r.status FROM instances i JOIN runs r ON r.id = i.latest_run "
            "WHERE i.instance_id = ?",
            (new.instance_id,),
        ).fetchone()
        if row is None:
            return False, False
        if row[0] == RunStatus.RUNNING.value:
            return True, True
        if new.id_reuse == "refuse":
            return True, False
        taken = conn.execute(
            "SELECT 1 FROM runs WHERE instance_id = ? AND run_id = ?",
            (new.instance_id, new.run_id),
        ).fetchone()
        return taken is not None, False

    def _insert_run(self, conn: sqlite3.Connection, new: NewRun, now: float, wake: Wake) -> int:
        parent = new.parent
        cursor = conn.execute(
            "INSERT INTO runs (instance_id, run_id, workflow_name, queue, status, created_at, "
            "updated_at, ready_at, parent_instance_id, parent_run_id, parent_command_id) "
            "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
            (
                new.instance_id, new.run_id, new.workflow_name, new.queue, now, now,
                new.visible_at,
                None if parent is None else parent.instance_id,
                None if parent is None else parent.run_id,
                None if parent is None else parent.command_id,
            ),
        )  # fmt: skip
        pk = cursor.lastrowid
        assert pk is not None
        conn.execute(
            "INSERT INTO instances (instance_id, latest_run) VALUES (?, ?) "
            "ON CONFLICT (instance_id) DO UPDATE SET latest_run = excluded.latest_run",
            (new.instance_id, pk),
        )
        start = now if new.visible_at is None else new.visible_at
        self._push(conn, pk, new.queue, new.started_event, start, wake)
        if new.execution_deadline is not None:
            self._push(conn, pk, new.queue, c.timed_out_event(), new.execution_deadline, wake)
        return pk

    def _close(
        self,
        conn: sqlite3.Connection,
        run: _RunRow,
        status: RunStatus,
        result: bytes | None,
        now: float,
        wake: Wake,
        next_run: NewRun | None = None,
    ) -> None:
        conn.execute(
            "UPDATE runs SET status = ?, result = ?, closed_at = ?, updated_at = ?, "
            "lease_token = NULL, lease_expires_at = NULL, ready_at = NULL WHERE id = ?",
            (status.value, result, now, now, run.pk),
        )
        # Signals and cancel requests that arrived while the last task ran are meant for the
        # instance: they move to the next run of a continue-as-new, else they end here.
        carried: list[bytes] = []
        if status is RunStatus.CONTINUED_AS_NEW:
            rows = conn.execute("SELECT event FROM inbox WHERE run = ? ORDER BY id", (run.pk,))
            carried = [bytes(row[0]) for row in rows if _carries_over(bytes(row[0]))]
        conn.execute("DELETE FROM inbox WHERE run = ?", (run.pk,))
        conn.execute(
            "DELETE FROM activity_tasks WHERE run = ? "
            "AND (lease_token IS NULL OR lease_expires_at <= ?)",
            (run.pk, now),
        )
        conn.execute("UPDATE activity_tasks SET cancel_requested = 1 WHERE run = ?", (run.pk,))
        wake.add(("closed", run.instance_id, run.run_id))
        if status is RunStatus.CONTINUED_AS_NEW:
            assert next_run is not None
            if next_run.parent is None and run.parent is not None:
                next_run = dataclasses.replace(next_run, parent=run.parent)
            pk = self._insert_run(conn, next_run, now, wake)
            for event in carried:
                self._push(conn, pk, next_run.queue, event, now, wake)
            conn.execute("UPDATE runs SET next_run_id = ? WHERE id = ?", (next_run.run_id, run.pk))
        elif run.parent is not None:
            self._notify_parent(conn, run.parent, run.instance_id, status, result, now, wake)

    def _notify_parent(
        self,
        conn: sqlite3.Connection,
        parent: ParentRef,
        instance_id: str,
        status: RunStatus,
        result: bytes | None,
        now: float,
        wake: Wake,
    ) -> None:
        row = conn.execute(
            "SELECT id, queue FROM runs WHERE instance_id = ? AND run_id = ? "
            "AND status = 'running'",
            (parent.instance_id, parent.run_id),
        ).fetchone()
        if row is not None:
            event = c.child_closed_event(parent.command_id, instance_id, status, result)
            self._push(conn, row[0], row[1], event, now, wake)

    def _terminate(
        self, conn: sqlite3.Connection, run: _RunRow, reason: str, now: float, wake: Wake
    ) -> None:
        seq = run.history_length + 1
        conn.execute(
            "INSERT INTO history (run, seq, event) VALUES (?, ?, ?)",
            (run.pk, seq, c.workflow_terminated_event(seq, reason)),
        )
        conn.execute("UPDATE runs SET history_length = ? WHERE id = ?", (seq, run.pk))
        failure = c.terminated_failure(run.instance_id, reason)
        # Closed before its children, so their child_failed events (to a closed run) drop.
        self._close(conn, run, RunStatus.TERMINATED, failure, now, wake)
        children = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE parent_instance_id = ? "
            "AND parent_run_id = ? AND status = 'running' ORDER BY id",
            (run.instance_id, run.run_id),
        ).fetchall()
        for child in children:
            child_reason = f"parent workflow was terminated: {reason}"
            self._terminate(conn, _RunRow.from_row(child), child_reason, now, wake)

    # ---- client side ------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> None:
        c.validate_new_run(run)

        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            refused, open_run = self._start_refusal(conn, run)
            if open_run and run.id_conflict == "use_existing":
                return
            if open_run and run.id_conflict == "terminate_existing":
                now = self.clock()
                existing = self._run_row(conn, run.instance_id, None)
                self._terminate(conn, existing, c.CONFLICT_TERMINATE_REASON, now, wake)
                refused, open_run = self._start_refusal(conn, run)
            if refused:
                if open_run:
                    raise WorkflowAlreadyStartedError(run.instance_id)
                raise WorkflowAlreadyStartedError(
                    run.instance_id,
                    f"workflow id {run.instance_id!r} was used before and this start refuses "
                    "id reuse (id_reuse='refuse')",
                )
            self._insert_run(conn, run, self.clock(), wake)

        await self._call(op)

    async def signal(self, instance_id: str, event: bytes) -> None:
        await self._deliver(instance_id, event)

    async def request_cancel(self, instance_id: str, event: bytes) -> None:
        await self._deliver(instance_id, event)

    async def _deliver(self, instance_id: str, event: bytes) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._run_row(conn, instance_id, None)
            if not run.status.is_open:
                raise WorkflowNotRunningError(instance_id, run.status.value)
            self._push(conn, run.pk, run.queue, event, self.clock(), wake)

        await self._call(op)

    async def terminate(self, instance_id: str, reason: str) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._run_row(conn, instance_id, None)
            if not run.status.is_open:
                raise WorkflowNotRunningError(instance_id, run.status.value)
            self._terminate(conn, run, reason, self.clock(), wake)

        await self._call(op)

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        def op(conn: sqlite3.Connection, wake: Wake) -> RunInfo:
            return self._run_row(conn, instance_id, run_id).info()

        return await self._read(op)

    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[bytes]:
            run = self._run_row(conn, instance_id, run_id)
            rows = conn.execute("SELECT event FROM history WHERE run = ? ORDER BY seq", (run.pk,))
            events = [bytes(event) for (event,) in rows]
            return c.check_history_length(run.instance_id, run.run_id, run.history_length, events)

        return await self._read(op)

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[RunInfo], str | None]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        where = ["1"]
        params: list[object] = []
        if cursor is not None:
            where.append("i.latest_run < ?")
            params.append(c.decode_cursor(cursor))
        if status is not None:
            where.append("r.status = ?")
            params.append(RunStatus(status).value)
        if workflow_name is not None:
            where.append("r.workflow_name = ?")
            params.append(workflow_name)
        columns = ", ".join(f"r.{name.strip()}" for name in _RUN_COLUMNS.split(","))
        sql = (
            f"SELECT {columns} FROM instances i JOIN runs r ON r.id = i.latest_run "
            f"WHERE {' AND '.join(where)} ORDER BY i.latest_run DESC LIMIT ?"
        )
        params.append(limit + 1)

        def op(conn: sqlite3.Connection, wake: Wake) -> list[_RunRow]:
            return [_RunRow.from_row(row) for row in conn.execute(sql, params)]

        rows = await self._read(op)
        page = rows[:limit]
        next_cursor = c.encode_cursor(page[-1].pk) if len(rows) > limit else None
        return [row.info() for row in page], next_cursor

    async def stats(self) -> BackendStats:
        def op(conn: sqlite3.Connection, wake: Wake) -> BackendStats:
            now = self.clock()
            runs = [
                RunCount(name, RunStatus(status), bool(blocked), count)
                for name, status, blocked, count in conn.execute(
                    "SELECT r.workflow_name, r.status, r.blocked_reason IS NOT NULL, COUNT(*) "
                    "FROM instances i JOIN runs r ON r.id = i.latest_run "
                    "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
                )
            ]
            # queue -> [workflow tasks, activity tasks, oldest ready at]
            queues: dict[str, list[Any]] = {}
            workflow_rows = conn.execute(
                "SELECT queue, COUNT(*), MIN(since) FROM ("
                "  SELECT r.queue AS queue, MAX(MIN(i.visible_at), COALESCE(r.ready_at, 0)) "
                "  AS since FROM inbox i JOIN runs r ON r.id = i.run "
                f"  WHERE {_CLAIMABLE} GROUP BY r.id"
                ") GROUP BY queue",
                # Stickiness aside: any worker may take these runs, if not at once.
                _claimable_params(now, "", 0.0),
            )
            for queue_name, count, since in workflow_rows:
                queues[queue_name] = [count, 0, since]
            activity_rows = conn.execute(
                "SELECT queue, COUNT(*), MIN(visible_at) FROM activity_tasks "
                "WHERE visible_at <= ? AND cancel_requested = 0 GROUP BY queue",
                (now,),
            )
            for queue_name, count, since in activity_rows:
                entry = queues.setdefault(queue_name, [0, 0, since])
                entry[1] = count
                entry[2] = since if entry[2] is None else min(entry[2], since)
            backlog = [QueueBacklog(q, *queues[q]) for q in sorted(queues)]
            return BackendStats(now=now, runs=runs, backlog=backlog)

        return await self._read(op)

    async def delete(self, instance_id: str) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            latest = self._run_row(conn, instance_id, None)
            if latest.status.is_open:
                raise WorkflowAlreadyStartedError(
                    instance_id,
                    f"workflow {instance_id!r} is still running; terminate it before deleting",
                )
            runs = "(SELECT id FROM runs WHERE instance_id = ?)"
            for table in ("history", "inbox", "activity_tasks", "vars"):
                conn.execute(f"DELETE FROM {table} WHERE run IN {runs}", (instance_id,))
            conn.execute("DELETE FROM runs WHERE instance_id = ?", (instance_id,))
            conn.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))

        await self._call(op)

    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        def op(conn: sqlite3.Connection, wake: Wake) -> dict[str, bytes]:
            run = self._run_row(conn, instance_id, None)
            rows = conn.execute("SELECT name, value FROM vars WHERE run = ?", (run.pk,))
            return {name: value for name, value in rows}

        return await self._read(op)

    async def wait_closed(self, instance_id: str, run_id: str, timeout: float | None) -> RunInfo:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        waiter = self._waiters.register([("closed", instance_id, run_id)])
        try:
            while True:
                info = await self.describe(instance_id, run_id)
                if not info.status.is_open:
                    return info
                # Woken by in-process commits at once and by other processes' commits
                # through the writer thread's data_version check; the timeout is a safety net.
                wait = SAFETY_NET
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return info
                    wait = min(wait, remaining)
                if await c.wait_on(waiter, wait):
                    self._waiters.unregister(waiter)
                    waiter = self._waiters.register([("closed", instance_id, run_id)])
        finally:
            self._waiters.unregister(waiter)

    # ---- workflow worker side -----------------------------------------------------------

    async def claim_workflow_tasks(
        self,
        queues: Sequence[str],
        lease_seconds: float,
        max_tasks: int,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> list[WorkflowTask]:
        queues = list(queues)
        if max_tasks < 1 or not queues:
            return []
        find = (
            "SELECT i.run, MIN(i.id) AS first FROM inbox i JOIN runs r ON r.id = i.run "
            f"WHERE i.queue IN ({_marks(queues)}) AND {_CLAIMABLE} "
            "GROUP BY i.run ORDER BY first LIMIT ?"
        )

        def op(conn: sqlite3.Connection, wake: Wake) -> list[WorkflowTask]:
            now = self.clock()
            claimable = _claimable_params(now, worker or "", sticky_wait)
            found = conn.execute(find, (*queues, *claimable, max_tasks)).fetchall()
            tasks = []
            for pk, _ in found:
                token = c.new_lease_token()
                conn.execute(
                    "UPDATE runs SET lease_token = ?, lease_expires_at = ? WHERE id = ?",
                    (token, now + lease_seconds, pk),
                )
                row = conn.execute(
                    "SELECT instance_id, run_id, workflow_name, queue, history_length, "
                    "failed_attempts FROM runs WHERE id = ?",
                    (pk,),
                ).fetchone()
                inbox = conn.execute(
                    "SELECT id, event FROM inbox WHERE run = ? AND visible_at <= ? ORDER BY id",
                    (pk, now),
                )
                tasks.append(
                    WorkflowTask(
                        instance_id=row[0],
                        run_id=row[1],
                        workflow_name=row[2],
                        queue=row[3],
                        lease_token=token,
                        history_length=row[4],
                        inbox=[InboxEvent(i, e) for i, e in inbox],
                        failed_attempts=row[5],
                    )
                )
            return tasks

        return await self._call(op)

    def _leased_run(self, conn: sqlite3.Connection, task: WorkflowTask) -> _RunRow:
        row = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE instance_id = ? AND run_id = ?",
            (task.instance_id, task.run_id),
        ).fetchone()
        run = None if row is None else _RunRow.from_row(row)
        if run is None or not run.status.is_open or run.lease_token != task.lease_token:
            raise LeaseLostError(
                f"the lease on workflow {task.instance_id!r} (run {task.run_id}) was lost: "
                "another worker took the task over, or the run was closed"
            )
        return run

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            c.validate_commit(run.instance_id, run.history_length, commit)
            self._apply_commit(conn, run, commit, self.clock(), wake)

        await self._call(op)

    def _apply_commit(
        self,
        conn: sqlite3.Connection,
        run: _RunRow,
        commit: WorkflowCommit,
        now: float,
        wake: Wake,
    ) -> None:
        pk = run.pk
        base = run.history_length
        conn.executemany(
            "INSERT INTO history (run, seq, event) VALUES (?, ?, ?)",
            [(pk, base + n, bytes(e)) for n, e in enumerate(commit.new_events, start=1)],
        )
        conn.executemany(
            "DELETE FROM inbox WHERE run = ? AND id = ?",
            [(pk, inbox_id) for inbox_id in commit.consumed_inbox],
        )
        if commit.activities:
            conn.executemany(
                "INSERT INTO activity_tasks (run, activity_id, name, queue, input, options, "
                "visible_at, scheduled_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (pk, a.activity_id, a.name, a.queue, bytes(a.input), bytes(a.options),
                     now, now, a.deadline)
                    for a in commit.activities
                ],
            )  # fmt: skip
            wake.update(("activity", a.queue) for a in commit.activities)
        for activity_id in commit.cancel_activities:
            conn.execute(
                "DELETE FROM activity_tasks WHERE run = ? AND activity_id = ? "
                "AND (lease_token IS NULL OR lease_expires_at <= ?)",
                (pk, activity_id, now),
            )
            conn.execute(
                "UPDATE activity_tasks SET cancel_requested = 1 WHERE run = ? AND activity_id = ?",
                (pk, activity_id),
            )
        for timer in commit.timers:
            self._push(conn, pk, run.queue, timer.event, timer.fire_at, wake, timer.timer_id)
        conn.executemany(
            "DELETE FROM inbox WHERE run = ? AND timer_id = ?",
            [(pk, timer_id) for timer_id in commit.cancel_timers],
        )
        for child in commit.children:
            assert child.parent is not None
            refused, open_run = self._start_refusal(conn, child)
            if refused:
                event = c.child_start_refused_event(
                    child.parent.command_id, child.instance_id, open_run
                )
                self._push(conn, pk, run.queue, event, now, wake)
            else:
                self._insert_run(conn, child, now, wake)
        for target_id, event in commit.cancel_instances:
            target = self._open_run(conn, target_id)
            if target is not None:
                self._push(conn, target[0], target[1], event, now, wake)
        for signal in commit.signals:
            target = self._open_run(conn, signal.target_instance_id)
            failure = None
            if target is not None:
                self._push(conn, target[0], target[1], signal.event, now, wake)
            else:
                exists = conn.execute(
                    "SELECT 1 FROM instances WHERE instance_id = ?", (signal.target_instance_id,)
                ).fetchone()
                failure = c.signal_target_missing(signal.target_instance_id, exists is not None)
            done = c.signal_external_completed_event(signal.command_id, failure)
            self._push(conn, pk, run.queue, done, now, wake)
        if commit.vars:
            conn.executemany(
                "INSERT INTO vars (run, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT (run, name) DO UPDATE SET value = excluded.value",
                [(pk, name, bytes(value)) for name, value in commit.vars.items()],
            )
        conn.execute(
            "UPDATE runs SET history_length = ?, updated_at = ?, lease_token = NULL, "
            "lease_expires_at = NULL, ready_at = NULL, blocked_reason = NULL, "
            "failed_attempts = 0, sticky_worker = ? WHERE id = ?",
            (base + len(commit.new_events), now, commit.sticky_worker, pk),
        )
        wake.add(("workflow", run.queue))
        close = commit.close
        if close is not None:
            result = None if close.result is None else bytes(close.result)
            self._close(conn, run, close.status, result, now, wake, close.next_run)

    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            conn.execute(
                "UPDATE runs SET lease_token = NULL, lease_expires_at = NULL, "
                "sticky_worker = NULL, blocked_reason = ?, ready_at = ?, "
                "failed_attempts = failed_attempts + 1, updated_at = ? WHERE id = ?",
                (reason, retry_at, self.clock(), run.pk),
            )
            wake.add(("workflow", run.queue))

        await self._call(op)

    async def release_workflow_task(self, task: WorkflowTask) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            try:
                run = self._leased_run(conn, task)
            except LeaseLostError:
                return
            conn.execute(
                "UPDATE runs SET lease_token = NULL, lease_expires_at = NULL, "
                "sticky_worker = NULL WHERE id = ?",
                (run.pk,),
            )
            wake.add(("workflow", run.queue))

        await self._call(op)

    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        queues = list(queues)
        if not queues:
            return

        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            where = f"sticky_worker = ? AND status = 'running' AND queue IN ({_marks(queues)})"
            released = conn.execute(
                f"SELECT DISTINCT queue FROM runs WHERE {where}", (worker, *queues)
            ).fetchall()
            conn.execute(f"UPDATE runs SET sticky_worker = NULL WHERE {where}", (worker, *queues))
            wake.update(("workflow", queue) for (queue,) in released)

        await self._call(op)

    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            conn.execute(
                "UPDATE runs SET lease_expires_at = ? WHERE id = ?",
                (self.clock() + lease_seconds, run.pk),
            )

        await self._call(op)

    # ---- activity worker side -----------------------------------------------------------

    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        queues = list(queues)
        if max_tasks < 1 or not queues:
            return []
        marks = _marks(queues)

        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityTask]:
            now = self.clock()
            # Cancelled while running and its worker is gone: never run it again.
            conn.execute(
                f"DELETE FROM activity_tasks WHERE queue IN ({marks}) AND visible_at <= ? "
                "AND cancel_requested = 1",
                (*queues, now),
            )
            rows = conn.execute(
                "SELECT a.id, r.instance_id, r.run_id, a.activity_id, a.name, a.queue, a.input, "
                "a.options, a.attempt, a.scheduled_at, a.deadline, a.heartbeat_details, "
                "r.workflow_name FROM activity_tasks a JOIN runs r ON r.id = a.run "
                f"WHERE a.queue IN ({marks}) AND a.visible_at <= ? AND a.cancel_requested = 0 "
                "ORDER BY a.visible_at, a.id LIMIT ?",
                (*queues, now, max_tasks),
            ).fetchall()
            claimed = []
            expires = now + lease_seconds
            for row in rows:
                token = c.new_lease_token()
                conn.execute(
                    "UPDATE activity_tasks SET attempt = attempt + 1, lease_token = ?, "
                    "lease_expires_at = ?, visible_at = ? WHERE id = ?",
                    (token, expires, expires, row[0]),
                )
                claimed.append(
                    ActivityTask(
                        task_id=row[0],
                        instance_id=row[1],
                        run_id=row[2],
                        activity_id=row[3],
                        name=row[4],
                        queue=row[5],
                        input=row[6],
                        options=row[7],
                        attempt=row[8] + 1,
                        lease_token=token,
                        scheduled_at=row[9],
                        deadline=row[10],
                        heartbeat_details=row[11],
                        workflow_name=row[12],
                    )
                )
            return claimed

        return await self._call(op)

    @staticmethod
    def _leased_activity(conn: sqlite3.Connection, task: ActivityTask) -> tuple[int, int]:
        """(run pk, cancel_requested) of the task, if ``task`` still holds its lease."""
        row = conn.execute(
            "SELECT run, cancel_requested FROM activity_tasks WHERE id = ? AND lease_token = ?",
            (task.task_id, task.lease_token),
        ).fetchone()
        if row is None:
            raise LeaseLostError(
                f"the lease on activity {task.name!r} (id {task.activity_id}) of workflow "
                f"{task.instance_id!r}, attempt {task.attempt}, was lost: the task was "
                "completed, retried or claimed again by another worker"
            )
        return row[0], row[1]

    async def heartbeat_activity(
        self, task: ActivityTask, details: bytes | None, lease_seconds: float
    ) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            _, cancel_requested = self._leased_activity(conn, task)
            expires = self.clock() + lease_seconds
            conn.execute(
                # A lease tick without details (NULL) keeps the stored ones.
                "UPDATE activity_tasks SET heartbeat_details = coalesce(?, heartbeat_details), "
                "lease_expires_at = ?, "
                "visible_at = ? WHERE id = ?",
                (None if details is None else bytes(details), expires, expires, task.task_id),
            )
            return bool(cancel_requested)

        return await self._call(op)

    async def complete_activity(self, task: ActivityTask, event: bytes) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run_pk, _ = self._leased_activity(conn, task)
            conn.execute("DELETE FROM activity_tasks WHERE id = ?", (task.task_id,))
            row = conn.execute(
                "SELECT queue FROM runs WHERE id = ? AND status = 'running'", (run_pk,)
            ).fetchone()
            if row is not None:
                self._push(conn, run_pk, row[0], event, self.clock(), wake)

        await self._call(op)

    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            self._leased_activity(conn, task)
            conn.execute(
                "UPDATE activity_tasks SET lease_token = NULL, lease_expires_at = NULL, "
                "visible_at = ?, last_failure = coalesce(?, last_failure) WHERE id = ?",
                (visible_at, None if failure is None else bytes(failure), task.task_id),
            )
            wake.add(("activity", task.queue))

        await self._call(op)

    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityState]:
            now = self.clock()
            rows = conn.execute(
                "SELECT a.activity_id, a.name, a.attempt, a.scheduled_at, a.visible_at, "
                "a.lease_expires_at, a.cancel_requested, a.heartbeat_details, a.last_failure "
                "FROM activity_tasks a JOIN runs r ON r.id = a.run "
                "WHERE r.instance_id = ? AND r.run_id = ? ORDER BY a.activity_id",
                (instance_id, run_id),
            ).fetchall()
            return [
                ActivityState(
                    activity_id=row[0],
                    name=row[1],
                    attempt=row[2],
                    scheduled_at=row[3],
                    visible_at=row[4],
                    running=row[5] is not None and row[5] > now,
                    cancel_requested=bool(row[6]),
                    heartbeat_details=row[7],
                    last_failure=row[8],
                )
                for row in rows
            ]

        return await self._read(op)

    # ---- wake-ups --------------------------------------------------------------------------

    def _work_probe(
        self, kind: str, queues: list[str], worker: str, sticky_wait: float
    ) -> Callable[[sqlite3.Connection, Wake], tuple[bool, float | None]]:
        """(work is claimable now, earliest future time some becomes claimable). Each query
        comes with its parameters as a function of ``now``."""
        marks = _marks(queues)
        Query = tuple[str, Callable[[float], tuple[object, ...]]]
        available: Query
        soonest: list[Query]
        if kind == "workflow":
            available = (
                "SELECT 1 FROM inbox i JOIN runs r ON r.id = i.run "
                f"WHERE i.queue IN ({marks}) AND {_CLAIMABLE} LIMIT 1",
                lambda now: (*queues, *_claimable_params(now, worker, sticky_wait)),
            )
            soonest = [
                (
                    f"SELECT MIN(visible_at) FROM inbox WHERE queue IN ({marks}) "
                    "AND visible_at > ?",
                    lambda now: (*queues, now),
                ),
                (
                    f"SELECT MIN(ready_at) FROM runs WHERE queue IN ({marks}) AND ready_at > ? "
                    "AND status = 'running'",
                    lambda now: (*queues, now),
                ),
                # Work left to the worker that has the run cached: ours sticky_wait later.
                (
                    "SELECT MIN(i.visible_at) + ? FROM inbox i JOIN runs r ON r.id = i.run "
                    f"WHERE i.queue IN ({marks}) AND r.status = 'running' "
                    "AND r.lease_token IS NULL AND r.sticky_worker <> ? "
                    "AND i.visible_at <= ? AND i.visible_at + ? > ?",
                    lambda now: (sticky_wait, *queues, worker, now, sticky_wait, now),
                ),
            ]
        else:
            available = (
                f"SELECT 1 FROM activity_tasks WHERE queue IN ({marks}) AND visible_at <= ? "
                "AND cancel_requested = 0 LIMIT 1",
                lambda now: (*queues, now),
            )
            soonest = [
                (
                    f"SELECT MIN(visible_at) FROM activity_tasks WHERE queue IN ({marks}) "
                    "AND visible_at > ? AND cancel_requested = 0",
                    lambda now: (*queues, now),
                )
            ]

        def op(conn: sqlite3.Connection, wake: Wake) -> tuple[bool, float | None]:
            now = self.clock()
            sql, params = available
            if conn.execute(sql, params(now)).fetchone():
                return True, None
            times = [conn.execute(sql, params(now)).fetchone()[0] for sql, params in soonest]
            return False, min((t for t in times if t is not None), default=None)

        return op

    async def wait_for_work(
        self,
        kind: str,
        queues: Sequence[str],
        timeout: float,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> None:
        keys = c.work_keys(kind, queues)
        probe = self._work_probe(kind, list(queues), worker or "", sticky_wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self._waiters.register(keys)
        try:
            while True:
                available, soonest = await self._read(probe) if queues else (False, None)
                remaining = deadline - loop.time()
                if available or remaining <= 0:
                    return
                wait = min(remaining, SAFETY_NET)
                if soonest is not None:
                    wait = min(wait, max(soonest - self.clock(), 0.0))
                if await c.wait_on(waiter, wait):
                    if not waiter.broad:
                        return
                    # Another process committed something: probe again.
                    self._waiters.unregister(waiter)
                    waiter = self._waiters.register(keys)
        finally:
            self._waiters.unregister(waiter)


def _copy_error(exc: Exception) -> Exception:
    """One exception object per caller: raising the same instance in many tasks would
    chain their tracebacks together."""
    try:
        clone = type(exc)(*exc.args)
    except Exception:
        return exc
    clone.__cause__ = exc
    return clone
