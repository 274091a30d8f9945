"""What every operation of the PostgreSQL backend stands on: the settings and the pool,
opening and closing, running an operation with retries when its connection breaks,
LISTEN/NOTIFY wake-ups, and the pieces the client and worker sides share."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ... import _events
from ..._errors import (
    WorkflowNotFoundError,
)
from .._backend_events import (
    CONFLICT_TERMINATE_REASON,
    child_closed_event,
    closed_mark_event,
    started_in_inbox,
    terminated_failure,
    timed_out_event,
    workflow_terminated_event,
)
from .._contract import Backend
from .._rows import run_info, tags_json
from .._types import (
    ActivityTask,
    Clock,
    LocalClaim,
    NewRun,
    ParentRef,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
    system_clock,
)
from .._wakeups import Waiters, wait_on, work_keys
from ._batch import _Batcher
from ._pool import (
    _POOL_NAME,
    Conn,
    OwnConnections,
    _pool_filter,
    _pool_log,
    fetch_unflushed,
)
from ._sql import Queries, _apply_migrations, _schema_version, load_migrations
from ._url import (
    DEFAULT_SCHEMA,
    _connection_options,
    _pick,
    _scrub,
    _secrets_of,
    mask_dsn,
    split_url_options,
)

log = logging.getLogger("ostinato.postgres")

T = TypeVar("T")

# Pauses before the retries of an operation whose connection broke.
_RETRY_DELAYS = (0.05, 0.5, 2.0)
# While LISTEN works, waiters still look every so often (a notification lost in a reconnect).
_SAFETY_POLL = 15.0
# Retries of a transaction that met another run's commit in progress (about 2 s in all).
_CONTENTION_RETRIES = 100
# The listener checks its connection when no notification came for this long.
_LISTENER_PING = 30.0
# Connection failures within this many seconds of a warning count as the same incident.
_INCIDENT_QUIET = 10.0
# pg_notify refuses payloads of 8000 bytes or more; longer ones are sent empty ("wake all").
_MAX_PAYLOAD = 7000
# Outcomes of a start in a batch: created, or to be started the single way (the id is known;
# after a retry, possibly because the first try created this very run).
_CREATED, _KNOWN, _KNOWN_AFTER_RETRY = "created", "known", "known after a retry"
# The array parameters of the commit_workflow_tasks statement.
_COMMIT_BATCH_ARRAYS = (
    *("instance_ids", "run_ids", "lease_tokens", "history_lengths", "closings"),
    *("close_statuses", "results", "event_from", "event_to", "consumed_from", "consumed_to"),
    *("activity_from", "activity_to", "timer_from", "timer_to", "var_from", "var_to"),
    *("events", "consumed", "a_activity_ids", "a_names", "a_queues", "a_inputs", "a_options"),
    *(
        "a_deadlines",
        "a_priorities",
        "m_timer_ids",
        "m_fire_ats",
        "m_events",
        "v_names",
        "v_values",
    ),
    "sticky_workers",
    *("a_eager_tokens", "a_eager_expires", "release_payloads"),
)


# An activity task, its outcome event, and whether its run's next task is asked for.
_Completion = tuple[ActivityTask, bytes, LocalClaim | None]


# ---- wake-ups -------------------------------------------------------------------------------


class _Effects:
    """What one operation changed that others should hear about once it commits."""

    __slots__ = ("attempt", "keys", "notifications")

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt  # 0 on the first try; > 0 when retrying after a lost connection
        self.keys: set[Hashable] = set()
        self.notifications: set[tuple[str, str]] = set()


class _Core(Backend):
    """The state and plumbing of ``PostgresBackend``; the operations are in the mixins of
    ``_client``, ``_workflows`` and ``_activities``."""

    def __init__(
        self,
        dsn: str,
        *,
        clock: Clock = system_clock,
        min_pool_size: int = 1,
        max_pool_size: int = 10,
        schema: str = DEFAULT_SCHEMA,
        listen: bool = True,
        poll_interval: float = 1.0,
        connect_timeout: float = 10.0,
        auto_migrate: bool = True,
        prepare_threshold: int | None = 5,
    ) -> None:
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be a string, not {type(dsn).__name__}")
        self._secrets = _secrets_of(dsn)
        dsn, from_url = split_url_options(dsn)
        min_pool_size = _pick(from_url, "min_pool_size", min_pool_size)
        max_pool_size = _pick(from_url, "max_pool_size", max_pool_size)
        schema = _pick(from_url, "schema", schema)
        listen = _pick(from_url, "listen", listen)
        poll_interval = _pick(from_url, "poll_interval", poll_interval)
        connect_timeout = _pick(from_url, "connect_timeout", connect_timeout)
        auto_migrate = _pick(from_url, "auto_migrate", auto_migrate)
        prepare_threshold = _pick(from_url, "prepare_threshold", prepare_threshold)
        try:
            conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise ValueError(
                f"invalid PostgreSQL connection string {mask_dsn(dsn)!r}: "
                f"{_scrub(str(exc), self._secrets)}"
            ) from None
        if not 0 < min_pool_size <= max_pool_size:
            raise ValueError(
                f"need 0 < min_pool_size <= max_pool_size, got {min_pool_size}, {max_pool_size}"
            )
        if not schema or len(schema.encode()) > 63:
            raise ValueError(f"schema must be a name of 1 to 63 bytes, not {schema!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, not {poll_interval}")
        if (
            not isinstance(connect_timeout, (int, float))
            or isinstance(connect_timeout, bool)
            or not 0 < connect_timeout <= 3600
        ):
            raise ValueError(
                f"connect_timeout must be seconds between 0 and 3600, not {connect_timeout!r}"
            )
        self.clock = clock
        self._dsn = dsn
        self._masked = mask_dsn(dsn)
        self._min_pool_size = min_pool_size
        self._max_pool_size = max_pool_size
        self._schema = schema
        self._listen = listen
        self._poll_interval = poll_interval
        self._connect_timeout = connect_timeout
        self._auto_migrate = auto_migrate
        self._prepare_threshold = prepare_threshold
        self._conn_kwargs = _connection_options(dsn, connect_timeout)
        # Lease-only writes skip the WAL flush in a pipeline (libpq 14+; without it they
        # are flushed like any other write).
        self._pipelined = psycopg.Pipeline.is_supported()
        self._q = Queries(schema)
        self._channels = {
            kind: f"ostinato:{kind}:{schema}"[:63] for kind in ("workflow", "activity", "closed")
        }
        self._kind_of_channel = {channel: kind for kind, channel in self._channels.items()}
        self._waiters = Waiters()
        self._own = OwnConnections()
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._open_lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        self._incident = False
        self._last_warning = -_INCIDENT_QUIET
        self._is_closed = False
        # Outcome: the eagerly leased activity tasks, or None (to be committed the general way).
        self._commits: _Batcher[tuple[WorkflowTask, WorkflowCommit], list[ActivityTask] | None] = (
            _Batcher(self._apply_commits, lambda item: (item[0].instance_id, item[0].run_id))
        )
        # Outcome: the workflow task leased by continuing locally, if any.
        self._completions: _Batcher[_Completion, WorkflowTask | None] = _Batcher(
            self._apply_completions, lambda item: item[0].task_id
        )
        self._starts: _Batcher[NewRun, str] = _Batcher(
            self._apply_starts, lambda run: run.instance_id
        )
        # Eager starts in a batch, by run id: lease token and seconds, then the started
        # event's inbox id once created (see _ClientSide.create_run_leased).
        self._start_leases: dict[str, tuple[str, float, list[int]]] = {}

    # Group commit: each side applies its own batches (see ``_Batcher``).

    @abc.abstractmethod
    async def _apply_commits(
        self, items: list[tuple[WorkflowTask, WorkflowCommit]]
    ) -> list[list[ActivityTask] | BaseException | None]: ...

    @abc.abstractmethod
    async def _apply_completions(
        self, items: list[_Completion]
    ) -> list[WorkflowTask | BaseException | None]: ...

    @abc.abstractmethod
    async def _apply_starts(self, runs: list[NewRun]) -> list[str | BaseException]: ...

    # ---- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._open_lock:
            if self._pool is not None:
                return
            self._is_closed = False
            # One direct connection first: it reports the real reason a connection fails
            # (the pool would only time out), and it runs the migrations.
            conn = await self._connect("opening the database")
            async with conn:
                await self._check_schema(conn)
            pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                self._dsn,
                min_size=self._min_pool_size,
                max_size=self._max_pool_size,
                kwargs={**self._conn_kwargs, "prepare_threshold": self._prepare_threshold},
                open=False,
                name=_POOL_NAME,
                timeout=self._connect_timeout,
                configure=self._own.track,
            )
            if _pool_filter not in _pool_log.filters:
                _pool_log.addFilter(_pool_filter)
            try:
                await pool.open(wait=True, timeout=self._connect_timeout)
            except psycopg.Error as exc:
                await pool.close()
                raise self._connection_error("opening the connection pool", exc) from None
            self._pool = pool
            if self._listen:
                ready = asyncio.get_running_loop().create_future()
                self._listener = asyncio.create_task(
                    self._listen_forever(ready), name="ostinato-postgres-listener"
                )
                # Wait for the first LISTEN, so work created right after open() wakes us.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(ready), self._connect_timeout)

    async def close(self) -> None:
        # Writes already handed to a batch are finished (or fail) before the pool goes.
        for batcher in (self._starts, self._commits, self._completions):
            with contextlib.suppress(Exception):
                await batcher.drain()
        async with self._open_lock:
            self._is_closed = True
            listener, self._listener = self._listener, None
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            self._listening = False
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()
            self._waiters.notify_all()

    async def _connect(self, action: str) -> Conn:
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, **self._conn_kwargs)
        except psycopg.Error as exc:
            raise self._connection_error(action, exc) from None

    def _connection_error(self, action: str, exc: BaseException) -> psycopg.OperationalError:
        message = " ".join(_scrub(str(exc), self._secrets).split())
        if isinstance(exc, PoolTimeout) or "timeout" in message.lower():
            message += (
                f" (gave up after connect_timeout={self._connect_timeout:g}s: set it with "
                "connect(url, connect_timeout=SECONDS) or ?connect_timeout= in the URL)"
            )
        return psycopg.OperationalError(
            f"PostgreSQL at {self._masked} failed while {action}: {message}"
        )

    def is_transient(self, exc: BaseException) -> bool:
        """A server that is down, restarting or unreachable (or refuses us for now)."""
        return isinstance(exc, psycopg.OperationalError)

    async def _check_schema(self, conn: Conn) -> None:
        latest = len(load_migrations())
        current = await _schema_version(conn, self._schema)
        if current is not None and current >= latest:
            return
        if not self._auto_migrate:
            raise RuntimeError(
                f"the ostinato schema {self._schema!r} in {self._masked} is at version "
                f"{current or 0}, this ostinato needs {latest}: run `ostinato db migrate` "
                "(or open the backend with auto_migrate=True)"
            )
        await _apply_migrations(conn, self._schema)

    async def migrate(self) -> list[int]:
        """Apply missing migrations now; the versions applied."""
        conn = await self._connect("migrating the schema")
        async with conn:
            return await _apply_migrations(conn, self._schema)

    def wake_waiters(self) -> None:
        """Wake every ``wait_for_work`` / ``wait_closed`` caller so it looks again."""
        self._waiters.notify_all()

    # ---- running operations ---------------------------------------------------------------

    async def _get_pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            if self._is_closed:
                raise RuntimeError(f"{self!r} was closed; call open() again before using it")
            await self.open()
        assert self._pool is not None
        return self._pool

    async def _run(
        self,
        action: str,
        body: Callable[[Conn, _Effects], Awaitable[T]],
        *,
        transaction: bool = True,
        retry_ambiguous: bool = True,
    ) -> T:
        """Run ``body`` on a pooled connection (in a transaction unless told otherwise),
        retrying on a broken connection, then wake local waiters and notify the others.

        Retrying is always safe while the transaction surely did not commit. When the
        connection broke during COMMIT (or during a statement run outside a transaction) the
        write may have happened: only operations with ``retry_ambiguous`` are retried then
        (their retry is harmless: reads, claims, and writes fenced by a lease token).
        """
        attempt = contended = 0
        pool = await self._get_pool()  # opening reports its own errors, unretried
        # Waiting for a connection and retrying after broken ones share one connect_timeout:
        # during an outage an operation fails after about that long, not after every retry
        # has waited for it in turn.
        give_up = time.monotonic() + self._connect_timeout
        while True:
            effects = _Effects(attempt)
            maybe_written = not transaction
            try:
                wait = max(give_up - time.monotonic(), 0.05)
                async with pool.connection(timeout=wait) as conn:
                    if transaction:
                        async with conn.transaction():
                            result = await body(conn, effects)
                            await self._send_notifications(conn, effects)
                            maybe_written = True
                    else:
                        result = await body(conn, effects)
                        await self._send_notifications(conn, effects)
            except psycopg.DataError as exc:
                # e.g. a NUL character in a text field: the caller's input, not the database.
                raise ValueError(f"{action}: {_scrub(str(exc), self._secrets)}") from exc
            except psycopg.errors.LockNotAvailable:
                # A NOWAIT lock (deliver_to_open_run) met a commit in progress on another
                # run: nothing was written; try again once that commit is through.
                contended += 1
                if contended > _CONTENTION_RETRIES:
                    raise
                await asyncio.sleep(min(0.001 * 2 ** min(contended, 6), 0.05) * random.random())
                continue
            except psycopg.OperationalError as exc:
                if maybe_written and effects.keys:  # its notifications may have gone out
                    self._waiters.notify(effects.keys)
                retry = (
                    attempt < len(_RETRY_DELAYS)
                    and (retry_ambiguous or not maybe_written)
                    and time.monotonic() + _RETRY_DELAYS[attempt] < give_up
                )
                self._report_incident(action, exc, retry)
                if not retry:
                    raise self._connection_error(action, exc) from exc
                await self._recover(_RETRY_DELAYS[attempt])
                attempt += 1
                continue
            self._report_recovery()
            if effects.keys:
                self._waiters.notify(effects.keys)
            return result

    async def _send_notifications(self, conn: Conn, effects: _Effects) -> None:
        if effects.notifications:
            channels, payloads = zip(*sorted(effects.notifications), strict=True)
            await conn.execute(
                self._q["notify"], {"channels": list(channels), "payloads": list(payloads)}
            )

    async def _recover(self, delay: float) -> None:
        pool = self._pool
        if pool is not None:
            # Drop the pool's connections that died with the server, so the retry gets a
            # fresh one instead of the next dead one.
            with contextlib.suppress(Exception):
                await pool.check()
        await asyncio.sleep(delay)

    def _report_incident(self, action: str, exc: BaseException, retrying: bool) -> None:
        if self._incident:
            return
        self._incident = True
        message = " ".join(_scrub(str(exc), self._secrets).split())  # libpq's is multi-line
        now = time.monotonic()
        # The pool and the listener notice one server restart separately, possibly after the
        # other already recovered: within the quiet period it is the same incident.
        quiet = now - self._last_warning < _INCIDENT_QUIET
        if not quiet:
            self._last_warning = now
        (log.debug if quiet else log.warning)(
            "PostgreSQL at %s: %s while %s (%s)%s",
            self._masked,
            type(exc).__name__,
            action,
            message,
            "; reconnecting and retrying" if retrying else "",
        )

    def _report_recovery(self) -> None:
        if self._incident:
            self._incident = False
            log.info("PostgreSQL at %s: connection is working again", self._masked)

    async def _fetchone(self, conn: Conn, query: str, params: dict[str, Any]) -> Any:
        cur = await conn.execute(self._q[query], params)
        return await cur.fetchone()

    async def _fetchall(
        self, conn: Conn, query: str, params: dict[str, Any], *, prepare: bool | None = None
    ) -> list[Any]:
        cur = await conn.execute(self._q[query], params, prepare=prepare)
        return await cur.fetchall()

    async def _execute(self, conn: Conn, query: str, params: dict[str, Any]) -> None:
        await conn.execute(self._q[query], params)

    async def _fetchall_unflushed(
        self, conn: Conn, query: str, params: dict[str, Any]
    ) -> list[Any]:
        """One statement that writes nothing but leases, committed without waiting for its
        WAL flush (``fetch_unflushed``; why that is safe: docs/backends.md)."""
        return await fetch_unflushed(conn, self._q[query], params, pipelined=self._pipelined)

    # ---- notifications --------------------------------------------------------------------

    def _work(
        self, effects: _Effects, kind: str, queue: str, *, sql_notifies: bool = False
    ) -> None:
        effects.keys.add((kind, queue))
        if not sql_notifies:
            payload = queue if len(queue.encode()) <= _MAX_PAYLOAD else ""
            effects.notifications.add((self._channels[kind], payload))

    def _closed(self, effects: _Effects, instance_id: str, run_id: str) -> None:
        effects.keys.add(("closed", instance_id, run_id))
        payload = json.dumps([instance_id, run_id])
        if len(payload.encode()) > _MAX_PAYLOAD:
            payload = ""
        effects.notifications.add((self._channels["closed"], payload))

    def _on_notification(self, channel: str, payload: str, pid: int | None = None) -> None:
        kind = self._kind_of_channel.get(channel)
        if kind is None or (pid is not None and self._own.sent(pid)):
            return  # (our own write's: its waiters were woken when it committed, in _run)
        if not payload:
            self._waiters.notify_all()
        elif kind == "closed":
            try:
                instance_id, run_id = json.loads(payload)
            except ValueError:
                self._waiters.notify_all()
                return
            self._waiters.notify([("closed", instance_id, run_id)])
        else:
            self._waiters.notify([(kind, payload)])

    async def _listen_forever(self, ready: asyncio.Future[None]) -> None:
        """Keep one LISTEN connection up; reconnect with back-off when it breaks."""
        delay = 0.1
        while not self._is_closed:
            conn: Conn | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(self._dsn, **self._conn_kwargs)
                for channel in self._channels.values():
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                self._listening = True
                if not ready.done():
                    ready.set_result(None)
                if self._incident and self._pool is not None:
                    # The server is back; the pool's idle connections likely died with it.
                    # Replace them now rather than fail the next operation on one.
                    with contextlib.suppress(Exception):
                        await self._pool.check()
                self._report_recovery()
                # Notifications sent while we were away are lost: everyone looks again.
                self._waiters.notify_all()
                delay = 0.1
                while True:
                    async for notify in conn.notifies(timeout=_LISTENER_PING):
                        self._on_notification(notify.channel, notify.payload, notify.pid)
                    # Is the connection still alive? (A dead peer may not say so.)
                    await asyncio.wait_for(conn.execute("SELECT 1"), _LISTENER_PING / 3)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._is_closed:
                    return
                self._report_incident("listening for notifications", exc, True)
                if not ready.done():
                    ready.set_result(None)  # open() goes on; waiters poll meanwhile
            finally:
                self._listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            self._waiters.notify_all()  # waiters switch to polling
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    # ---- shared pieces --------------------------------------------------------------------

    def _row_to_info(self, row: Sequence[Any]) -> RunInfo:
        # A tampered row (unknown status ...) reads as an open run blocked with the reason.
        return run_info(row)

    async def _lock_latest_run(self, conn: Conn, instance_id: str) -> tuple[str, str] | None:
        """Lock the instance and its latest run: (run id, status), None for an unknown id."""
        row = await self._fetchone(conn, "lock_instance", {"instance_id": instance_id})
        if row is None:
            return None
        row = await self._fetchone(conn, "lock_run", {"instance_id": instance_id, "run_id": row[0]})
        return None if row is None else (row[0], row[1])

    async def _insert_run(self, conn: Conn, effects: _Effects, run: NewRun, now: float) -> None:
        visible_ats = [now if run.visible_at is None else run.visible_at]
        events = [bytes(run.started_event)]
        if run.execution_deadline is not None:
            visible_ats.append(run.execution_deadline)
            events.append(timed_out_event())
        parent = run.parent
        await self._execute(
            conn,
            "insert_run",
            {
                "instance_id": run.instance_id,
                "run_id": run.run_id,
                "workflow_name": run.workflow_name,
                "queue": run.queue,
                "now": now,
                "ready_at": run.visible_at,
                "parent_instance_id": None if parent is None else parent.instance_id,
                "parent_run_id": None if parent is None else parent.run_id,
                "parent_command_id": None if parent is None else parent.command_id,
                "tags": tags_json(run.tags),
                "priority": run.priority,
                "visible_ats": visible_ats,
                "events": events,
            },
        )
        self._work(effects, "workflow", run.queue)

    async def _start_run(
        self, conn: Conn, effects: _Effects, run: NewRun, now: float
    ) -> tuple[bool, bool, bool]:
        """Create ``run`` unless its id is taken. Returns (started, refused because an open
        run exists, the same run id exists already)."""
        inserted = await self._fetchone(
            conn, "insert_instance", {"instance_id": run.instance_id, "run_id": run.run_id}
        )
        if inserted is None:
            latest_run_id = None
            row = await self._fetchone(conn, "lock_instance", {"instance_id": run.instance_id})
            if row is not None:
                latest_run_id = row[0]
                row = await self._fetchone(
                    conn,
                    "latest_run_state",
                    {
                        "instance_id": run.instance_id,
                        "run_id": run.run_id,
                        "latest_run_id": latest_run_id,
                    },
                )
            if row is not None:
                status, run_id_taken = row
                if status == RunStatus.RUNNING.value and run.id_conflict == "use_existing":
                    return True, False, bool(run_id_taken)
                if status == RunStatus.RUNNING.value and run.id_conflict == "terminate_existing":
                    assert latest_run_id is not None
                    await self._terminate_tree(
                        conn, effects, run.instance_id, latest_run_id,
                        CONFLICT_TERMINATE_REASON, now,
                    )  # fmt: skip
                    status = RunStatus.TERMINATED.value
                if status == RunStatus.RUNNING.value:
                    return False, True, bool(run_id_taken)
                if run.id_reuse == "refuse" or run_id_taken:
                    return False, False, bool(run_id_taken)
            await self._execute(
                conn, "set_latest_run", {"instance_id": run.instance_id, "run_id": run.run_id}
            )
        await self._insert_run(conn, effects, run, now)
        return True, False, False

    async def _deliver_to_open_run(
        self,
        conn: Conn,
        effects: _Effects,
        instance_id: str,
        event: bytes,
        now: float,
        *,
        wait: bool = False,
    ) -> bool:
        """Deliver to the instance's open run. ``wait`` (only for a transaction that holds no
        run lock) waits for a commit in progress on that run instead of racing it."""
        params = {"instance_id": instance_id, "event": bytes(event), "now": now}
        query = "deliver_to_open_run_waiting" if wait else "deliver_to_open_run"
        for _ in range(100):
            row = await self._fetchone(conn, query, params)
            if row is not None:
                break
            # The open run may have just continued as new: the statement waited for that
            # commit, then saw the old run closed and not (in its snapshot) the new one.
            latest = await self._fetchone(conn, "latest_status", {"instance_id": instance_id})
            if latest is None or latest[0] != RunStatus.RUNNING.value:
                return False
        else:
            return False
        self._work(effects, "workflow", row[0])
        return True

    async def _deliver_to_run(
        self, conn: Conn, effects: _Effects, parent: ParentRef, event: bytes, now: float
    ) -> None:
        row = await self._fetchone(
            conn,
            "deliver_to_run",
            {
                "instance_id": parent.instance_id,
                "run_id": parent.run_id,
                "event": event,
                "now": now,
            },
        )
        if row is not None:
            self._work(effects, "workflow", row[0])

    async def _drop_pending_work(
        self, conn: Conn, instance_id: str, run_id: str, now: float
    ) -> None:
        """A closed run's inbox goes; its queued activities too, running ones are asked to
        cancel."""
        params = {"instance_id": instance_id, "run_id": run_id}
        await self._execute(conn, "delete_run_inbox", params)
        await self._execute(
            conn, "cancel_activity_tasks", {**params, "activity_ids": None, "now": now}
        )

    async def _terminate_tree(
        self,
        conn: Conn,
        effects: _Effects,
        instance_id: str,
        run_id: str,
        reason: str,
        now: float,
    ) -> None:
        """Terminate the run and, after it, its open children, recursively."""
        pending = [(instance_id, run_id, reason)]
        while pending:
            target_instance, target_run, why = pending.pop(0)
            failure = terminated_failure(target_instance, why)
            row = await self._fetchone(
                conn,
                "terminate_run",
                {
                    "instance_id": target_instance,
                    "run_id": target_run,
                    "failure": failure,
                    "now": now,
                },
            )
            if row is None:
                continue  # closed meanwhile
            seq, parent_instance, parent_run, parent_command = row
            await self._execute(
                conn,
                "append_history",
                {
                    "instance_id": target_instance,
                    "run_id": target_run,
                    "first_seq": seq,
                    "events": [workflow_terminated_event(seq, why)],
                },
            )
            ids = {"instance_id": target_instance, "run_id": target_run}
            started = None
            if seq == 1:  # no task took the run: its workflow_started is in the inbox
                first = await self._fetchall(conn, "run_first_inbox_events", ids)
                started = started_in_inbox([bytes(r[0]) for r in first])
            await self._drop_pending_work(conn, target_instance, target_run, now)
            # No workflow task reports this close: a worker claims it (claim_closed_runs).
            await self._execute(conn, "keep_closed", {**ids, "mark": closed_mark_event(started)})
            self._closed(effects, target_instance, target_run)
            if parent_instance is not None:
                event = child_closed_event(
                    parent_command, target_instance, RunStatus.TERMINATED, failure
                )
                await self._deliver_to_run(
                    conn,
                    effects,
                    ParentRef(parent_instance, parent_run, parent_command),
                    event,
                    now,
                )
            children = await self._fetchall(
                conn, "open_children", {"instance_id": target_instance, "run_id": target_run}
            )
            for child_instance, child_run in children:
                pending.append(
                    (child_instance, child_run, f"parent workflow was terminated: {why}")
                )

    # ---- wake-ups --------------------------------------------------------------------------

    async def _next_work_at(
        self, kind: str, queues: Sequence[str], worker: str | None, sticky_wait: float
    ) -> float | None:
        params: dict[str, Any] = {"queues": list(queues)}
        if kind == "workflow":
            query = "next_workflow_work"
            params.update(worker=worker or "", sticky_wait=sticky_wait, now=self.clock())
        else:
            query = "next_activity_work"
        pool = await self._get_pool()
        async with pool.connection() as conn:
            row = await self._fetchone(conn, query, params)
        return None if row is None or row[0] is None else float(row[0])

    async def next_visible_time(self) -> float | None:
        """The earliest time after now at which a timer, delayed start, back-off or activity
        retry becomes visible, on any queue; None when nothing is scheduled (for drivers of
        a virtual clock, like ``MemoryBackend.next_visible_time``)."""

        async def body(conn: Conn, effects: _Effects) -> float | None:
            row = await self._fetchone(conn, "next_visible_time", {"now": self.clock()})
            return None if row is None or row[0] is None else float(row[0])

        return await self._run("looking for scheduled work", body, transaction=False)

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
        if not keys:
            await asyncio.sleep(max(0.0, timeout))
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self._waiters.register(keys)
        try:
            while True:
                if self._is_closed:
                    return
                try:
                    next_at: float | None = await self._next_work_at(
                        kind, queues, worker, sticky_wait
                    )
                    unknown = False
                except psycopg.OperationalError as exc:
                    self._report_incident("waiting for work", exc, True)
                    next_at, unknown = None, True
                now = self.clock()
                if next_at is not None and next_at <= now:
                    return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                # Even while listening, look now and then: a pooler in transaction mode, or a
                # silently dead connection, can swallow notifications.
                wait = min(remaining, _SAFETY_POLL)
                if next_at is not None:
                    wait = min(wait, next_at - now)
                if unknown or not self._listening:
                    wait = min(wait, self._poll_interval)
                if await wait_on(waiter, wait):
                    # Woken: look again with a fresh waiter, so nothing is missed meanwhile.
                    old, waiter = waiter, self._waiters.register(keys)
                    self._waiters.unregister(old)
                elif unknown:
                    return  # let the caller try (and see the error) rather than sit here
        finally:
            self._waiters.unregister(waiter)


def _not_found(instance_id: str, run_id: str | None) -> WorkflowNotFoundError:
    if run_id is None:
        return WorkflowNotFoundError(instance_id)
    return WorkflowNotFoundError(
        instance_id, f"no workflow with id {instance_id!r} and run id {run_id!r}"
    )


def _fits_one_statement(commit: WorkflowCommit) -> bool:
    """Whether the commit_workflow_task statement can apply ``commit``: nothing that touches
    other runs or cancels, and a close only without new activities or timers (their rows
    would escape the close's clean-up in the same statement) and not as continue-as-new."""
    if (
        commit.children
        or commit.signals
        or commit.cancel_instances
        or commit.cancel_activities
        or commit.cancel_timers
    ):
        return False
    close = commit.close
    return close is None or (close.next_run is None and not commit.activities and not commit.timers)


def _no_nul(what: str, value: str) -> None:
    if "\x00" in value:
        raise ValueError(
            f"{what} {value!r} contains a NUL character, which PostgreSQL cannot store"
        )


def _check_text_fields(run: NewRun) -> None:
    _no_nul("workflow id", run.instance_id)
    _no_nul("run id", run.run_id)
    _no_nul("workflow name", run.workflow_name)
    _no_nul("queue", run.queue)


def _carries_over(event: bytes) -> bool:
    """Inbox events addressed to the instance rather than to one run: a continue-as-new
    hands them to the next run."""
    return _events.carries_over(event)


def _with_parent(run: NewRun, parent: ParentRef) -> NewRun:
    return dataclasses.replace(run, parent=parent)
