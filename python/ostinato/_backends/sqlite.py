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

Where things are: the SQL is in ``sql/sqlite/`` (named blocks, loaded by ``_sqlite_sql``);
commits, closes, terminates and starts run the shared algorithm of ``_apply`` over
``_sqlite_store.SqliteStore``; this module holds the writer thread and the operations of its
own (claims, listing, activity tasks, wake-ups).
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ._apply import apply_commit, start_run, terminate_run
from ._contract import Backend, TimeSkipping
from ._rows import check_history_length
from ._sqlite_sql import QUERIES as Q
from ._sqlite_sql import load_migrations, split_statements
from ._sqlite_store import RunRow, SqliteStore, Wake, push
from ._tokens import decode_cursor, encode_cursor, new_lease_token
from ._types import (
    ActivityState,
    ActivityTask,
    Clock,
    InboxEvent,
    NewRun,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
    system_clock,
)
from ._validate import validate_commit, validate_new_run
from ._wakeups import Waiters, wait_on, work_keys

__all__ = ["SqliteBackend", "load_migrations"]

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


def _claimable_params(now: float, worker: str, sticky_wait: float) -> tuple[object, ...]:
    """The parameters of the ``claimable`` fragment of queries.sql."""
    return (now, now, now, worker, sticky_wait, now)


class SqliteBackend(Backend, TimeSkipping):
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
        self._waiters = Waiters()
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

    async def next_visible_time(self) -> float | None:
        """The earliest time after now at which a timer, delayed start, back-off or activity
        retry becomes visible; None when nothing is scheduled."""

        def op(conn: sqlite3.Connection, wake: Wake) -> float | None:
            now = self.clock()
            times = [
                conn.execute(Q[query], (now,))
                for query in ("next_visible_inbox", "next_visible_ready", "next_visible_activity")
            ]
            found = [row[0] for cursor in times for row in cursor if row[0] is not None]
            return min(found, default=None)

        return await self._read(op)

    def wake_waiters(self) -> None:
        """Wake every waiter so it looks again (after moving a virtual clock forward)."""
        self._waiters.notify_all()

    # ---- helpers run on the writer thread ---------------------------------------------------

    @staticmethod
    def _run_row(conn: sqlite3.Connection, instance_id: str, run_id: str | None) -> RunRow:
        if run_id is None:
            row = conn.execute(Q["latest_run"], (instance_id,)).fetchone()
            if row is None:
                raise WorkflowNotFoundError(instance_id)
        else:
            row = conn.execute(Q["run_by_id"], (instance_id, run_id)).fetchone()
            if row is None:
                raise WorkflowNotFoundError(
                    instance_id, f"no workflow with id {instance_id!r} and run id {run_id!r}"
                )
        return RunRow.from_row(row)

    # ---- client side ------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> None:
        validate_new_run(run)

        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            start_run(SqliteStore(conn, wake), run, self.clock())

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
            push(conn, run.pk, run.queue, event, self.clock(), wake)

        await self._call(op)

    async def terminate(self, instance_id: str, reason: str) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._run_row(conn, instance_id, None)
            if not run.status.is_open:
                raise WorkflowNotRunningError(instance_id, run.status.value)
            terminate_run(SqliteStore(conn, wake), run, reason, self.clock())

        await self._call(op)

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        def op(conn: sqlite3.Connection, wake: Wake) -> RunInfo:
            return self._run_row(conn, instance_id, run_id).info()

        return await self._read(op)

    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[bytes]:
            run = self._run_row(conn, instance_id, run_id)
            rows = conn.execute(Q["history"], (run.pk,))
            events = [bytes(event) for (event,) in rows]
            return check_history_length(run.instance_id, run.run_id, run.history_length, events)

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
        filters: list[str] = []
        params: list[object] = []
        if cursor is not None:
            filters.append("filter_before")
            params.append(decode_cursor(cursor))
        if status is not None:
            filters.append("filter_status")
            params.append(RunStatus(status).value)
        if workflow_name is not None:
            filters.append("filter_workflow")
            params.append(workflow_name)
        sql = Q.list_runs(filters)
        params.append(limit + 1)

        def op(conn: sqlite3.Connection, wake: Wake) -> list[RunRow]:
            return [RunRow.from_row(row) for row in conn.execute(sql, params)]

        rows = await self._read(op)
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].pk) if len(rows) > limit else None
        return [row.info() for row in page], next_cursor

    async def delete(self, instance_id: str) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            latest = self._run_row(conn, instance_id, None)
            if latest.status.is_open:
                raise WorkflowAlreadyStartedError(
                    instance_id,
                    f"workflow {instance_id!r} is still running; terminate it before deleting",
                )
            for query in (
                "delete_history", "delete_inbox", "delete_activity_tasks", "delete_vars",
                "delete_runs", "delete_instance",
            ):  # fmt: skip
                conn.execute(Q[query], (instance_id,))

        await self._call(op)

    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        def op(conn: sqlite3.Connection, wake: Wake) -> dict[str, bytes]:
            run = self._run_row(conn, instance_id, None)
            rows = conn.execute(Q["get_vars"], (run.pk,))
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
                if await wait_on(waiter, wait):
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
        find = Q.for_queues("find_claimable_runs", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> list[WorkflowTask]:
            now = self.clock()
            claimable = _claimable_params(now, worker or "", sticky_wait)
            found = conn.execute(find, (*queues, *claimable, max_tasks)).fetchall()
            tasks = []
            for pk, _ in found:
                token = new_lease_token()
                conn.execute(Q["lease_run"], (token, now + lease_seconds, pk))
                row = conn.execute(Q["claimed_run"], (pk,)).fetchone()
                inbox = conn.execute(Q["visible_inbox"], (pk, now))
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

    def _leased_run(self, conn: sqlite3.Connection, task: WorkflowTask) -> RunRow:
        row = conn.execute(Q["run_by_id"], (task.instance_id, task.run_id)).fetchone()
        run = None if row is None else RunRow.from_row(row)
        if run is None or not run.status.is_open or run.lease_token != task.lease_token:
            raise LeaseLostError(
                f"the lease on workflow {task.instance_id!r} (run {task.run_id}) was lost: "
                "another worker took the task over, or the run was closed"
            )
        return run

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            validate_commit(run.instance_id, run.history_length, commit)
            apply_commit(SqliteStore(conn, wake), run, commit, self.clock())

        await self._call(op)

    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            conn.execute(Q["fail_task"], (reason, retry_at, self.clock(), run.pk))
            wake.add(("workflow", run.queue))

        await self._call(op)

    async def release_workflow_task(self, task: WorkflowTask) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            try:
                run = self._leased_run(conn, task)
            except LeaseLostError:
                return
            conn.execute(Q["release_task"], (run.pk,))
            wake.add(("workflow", run.queue))

        await self._call(op)

    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        queues = list(queues)
        if not queues:
            return

        find = Q.for_queues("sticky_queues", len(queues))
        release = Q.for_queues("release_sticky", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            released = conn.execute(find, (worker, *queues)).fetchall()
            conn.execute(release, (worker, *queues))
            wake.update(("workflow", queue) for (queue,) in released)

        await self._call(op)

    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            conn.execute(Q["extend_run_lease"], (self.clock() + lease_seconds, run.pk))

        await self._call(op)

    # ---- activity worker side -----------------------------------------------------------

    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        queues = list(queues)
        if max_tasks < 1 or not queues:
            return []
        drop = Q.for_queues("drop_cancelled_activities", len(queues))
        find = Q.for_queues("find_claimable_activities", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityTask]:
            now = self.clock()
            conn.execute(drop, (*queues, now))
            rows = conn.execute(find, (*queues, now, max_tasks)).fetchall()
            claimed = []
            expires = now + lease_seconds
            for row in rows:
                token = new_lease_token()
                conn.execute(Q["lease_activity"], (token, expires, expires, row[0]))
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
        row = conn.execute(Q["leased_activity"], (task.task_id, task.lease_token)).fetchone()
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
                Q["heartbeat_activity"],
                (None if details is None else bytes(details), expires, expires, task.task_id),
            )
            return bool(cancel_requested)

        return await self._call(op)

    async def complete_activity(self, task: ActivityTask, event: bytes) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run_pk, _ = self._leased_activity(conn, task)
            conn.execute(Q["delete_activity"], (task.task_id,))
            row = conn.execute(Q["open_run_queue_by_pk"], (run_pk,)).fetchone()
            if row is not None:
                push(conn, run_pk, row[0], event, self.clock(), wake)

        await self._call(op)

    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            self._leased_activity(conn, task)
            conn.execute(
                Q["retry_activity"],
                (visible_at, None if failure is None else bytes(failure), task.task_id),
            )
            wake.add(("activity", task.queue))

        await self._call(op)

    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityState]:
            now = self.clock()
            rows = conn.execute(Q["activity_states"], (instance_id, run_id)).fetchall()
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
        n = len(queues)
        Query = tuple[str, Callable[[float], tuple[object, ...]]]
        available: Query
        soonest: list[Query]
        if kind == "workflow":
            available = (
                Q.for_queues("workflow_work_available", n),
                lambda now: (*queues, *_claimable_params(now, worker, sticky_wait)),
            )
            soonest = [
                (Q.for_queues("next_inbox_time", n), lambda now: (*queues, now)),
                (Q.for_queues("next_ready_time", n), lambda now: (*queues, now)),
                (
                    Q.for_queues("next_sticky_time", n),
                    lambda now: (sticky_wait, *queues, worker, now, sticky_wait, now),
                ),
            ]
        else:
            available = (
                Q.for_queues("activity_work_available", n),
                lambda now: (*queues, now),
            )
            soonest = [(Q.for_queues("next_activity_time", n), lambda now: (*queues, now))]

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
        keys = work_keys(kind, queues)
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
                if await wait_on(waiter, wait):
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
