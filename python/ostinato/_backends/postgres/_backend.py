"""The PostgreSQL backend: several workers on several hosts share one database.

psycopg 3 (async) with a connection pool. The SQL lives in ``sql/postgres/``: numbered
migrations (``0001_initial.sql`` ...) applied automatically on ``open()`` under an advisory
lock, and ``queries.sql`` with one named block per query. Every write a worker makes is
fenced by its lease token inside the same transaction; claims use ``FOR ... SKIP LOCKED`` so
concurrent workers take disjoint batches.

Wake-ups: writes ``NOTIFY`` one channel per kind of work (workflow tasks, activity tasks, run
closed) with the queue (or run) as payload; a dedicated connection ``LISTEN``s and wakes the
local waiters, so an idle worker reacts within milliseconds. Delayed work (timers, start
delays, retries, back-off) is found by asking the database for the next visible time. Without
LISTEN (``listen=False``, for transaction-mode poolers such as PgBouncer, or while the listener
reconnects) waiters poll every ``poll_interval`` seconds.

Connections that break (server restart, failover, network) are replaced by the pool and the
operation is retried when that is safe: always when the transaction surely did not commit, and
for operations whose retry is harmless (reads, claims, fenced writes) even when the connection
broke during COMMIT. One warning per incident goes to the ``ostinato.postgres`` logger;
credentials never appear in messages (``***``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..._backend import (
    ActivityState,
    ActivityTask,
    Backend,
    Clock,
    InboxEvent,
    NewRun,
    ParentRef,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
    system_clock,
)
from ..._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from .. import _common as c
from ._batch import _Batcher
from ._pool import _POOL_NAME, Conn, _pool_filter, _pool_log, _track_pool_connection
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
    *("a_deadlines", "m_timer_ids", "m_fire_ats", "m_events", "v_names", "v_values"),
    "sticky_workers",
)


# ---- wake-ups -------------------------------------------------------------------------------


class _Effects:
    """What one operation changed that others should hear about once it commits."""

    __slots__ = ("attempt", "keys", "notifications")

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt  # 0 on the first try; > 0 when retrying after a lost connection
        self.keys: set[Hashable] = set()
        self.notifications: set[tuple[str, str]] = set()


# ---- the backend ----------------------------------------------------------------------------


class PostgresBackend(Backend):
    """Runs, history, inboxes and task queues in a PostgreSQL database (13 or newer).

    ``dsn``: a libpq connection string or ``postgresql://`` URL. ``schema``: where the tables
    live (created on first ``open()``). ``listen=False`` turns LISTEN/NOTIFY off (required
    behind transaction-mode poolers); waiters then poll every ``poll_interval`` seconds.
    ``auto_migrate=False`` refuses to start on an outdated schema instead of migrating it
    (when workers' database role may not run DDL: run ``ostinato db migrate`` first).
    ``prepare_threshold``: psycopg's server-side prepared statements (None turns them off, for
    poolers that do not support them).

    These options can also be given in a URL's query string, next to libpq's own:
    ``postgresql://host/db?schema=billing&listen=false&sslmode=require`` (handy for the
    command line). A keyword argument with a non-default value wins over the URL.
    """

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
        self._q = Queries(schema)
        self._channels = {
            kind: f"ostinato:{kind}:{schema}"[:63] for kind in ("workflow", "activity", "closed")
        }
        self._kind_of_channel = {channel: kind for kind, channel in self._channels.items()}
        self._waiters = c.Waiters()
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._open_lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        self._incident = False
        self._last_warning = -_INCIDENT_QUIET
        self._is_closed = False
        self._commits: _Batcher[tuple[WorkflowTask, WorkflowCommit], bool] = _Batcher(
            self._apply_commits, lambda item: (item[0].instance_id, item[0].run_id)
        )
        self._completions: _Batcher[tuple[ActivityTask, bytes], None] = _Batcher(
            self._apply_completions, lambda item: item[0].task_id
        )
        self._starts: _Batcher[NewRun, str] = _Batcher(
            self._apply_starts, lambda run: run.instance_id
        )

    def __repr__(self) -> str:
        return f"PostgresBackend({self._masked!r}, schema={self._schema!r})"

    async def __aenter__(self) -> PostgresBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up (wake-ups by notification, not polling)."""
        return self._listening

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
                configure=_track_pool_connection,
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

    def _on_notification(self, channel: str, payload: str) -> None:
        kind = self._kind_of_channel.get(channel)
        if kind is None:
            return
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
                        self._on_notification(notify.channel, notify.payload)
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
        return c.run_info(row)

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
            events.append(c.timed_out_event())
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
                        c.CONFLICT_TERMINATE_REASON, now,
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
            failure = c.terminated_failure(target_instance, why)
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
                    "events": [c.workflow_terminated_event(seq, why)],
                },
            )
            await self._drop_pending_work(conn, target_instance, target_run, now)
            self._closed(effects, target_instance, target_run)
            if parent_instance is not None:
                event = c.child_closed_event(
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

    # ---- client side ------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> None:
        c.validate_new_run(run)
        _check_text_fields(run)
        retried = False
        if run.parent is None:
            # Group commit: concurrent starts of new ids go in the same statement. An id
            # that is known already is started the single way, which decides the error.
            outcome = await self._starts.submit(run)
            if outcome == _CREATED:
                return
            retried = outcome == _KNOWN_AFTER_RETRY
        await self._create_run_alone(run, retried)

    async def _create_run_alone(self, run: NewRun, retried: bool) -> None:
        """Start ``run`` in a transaction of its own. ``retried``: a batch statement that may
        have created it already was retried after its connection broke."""

        async def body(conn: Conn, effects: _Effects) -> None:
            started, open_run, same_run = await self._start_run(conn, effects, run, self.clock())
            if started or (same_run and (retried or effects.attempt > 0)):
                return  # (a retry finding its own run: the first try did commit)
            if open_run:
                raise WorkflowAlreadyStartedError(run.instance_id)
            raise WorkflowAlreadyStartedError(
                run.instance_id,
                f"workflow id {run.instance_id!r} was used before and this start refuses "
                "id reuse (id_reuse='refuse')",
            )

        await self._run(f"starting workflow {run.instance_id!r}", body)

    async def _apply_starts(self, runs: list[NewRun]) -> list[str | BaseException]:
        """One batch of ``_starts``: per run ``_CREATED``, or ``_KNOWN`` /
        ``_KNOWN_AFTER_RETRY`` when it must be started the single way (nothing was written
        for it)."""
        try:
            return await self._start_many(runs)
        except psycopg.OperationalError:
            raise  # outcome unknown: every caller gets the error
        except (psycopg.Error, ValueError):
            # One run's error failed the statement, which wrote nothing: each is started the
            # single way, so the error reaches only its own caller.
            return [_KNOWN] * len(runs)

    async def _start_many(self, runs: list[NewRun]) -> list[str | BaseException]:
        """Create the runs whose ids are new in one statement (one round trip, one
        transaction, one notification per queue)."""
        p: dict[str, list[Any]] = {
            "instance_ids": [r.instance_id for r in runs],
            "run_ids": [r.run_id for r in runs],
            "workflow_names": [r.workflow_name for r in runs],
            "queues": [r.queue for r in runs],
            "ready_ats": [r.visible_at for r in runs],
            "events": [bytes(r.started_event) for r in runs],
            "deadlines": [r.execution_deadline for r in runs],
        }
        attempts = 0

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            nonlocal attempts
            attempts = effects.attempt + 1
            now = self.clock()
            for run in runs:
                self._work(effects, "workflow", run.queue)
            # The statement sends them itself, once for the batch, if it creates a run.
            notifications = sorted(effects.notifications)
            effects.notifications.clear()
            return await self._fetchall(
                conn,
                "create_runs",
                {
                    **p,
                    "now": now,
                    "visible_ats": [now if r.visible_at is None else r.visible_at for r in runs],
                    "timed_out": c.timed_out_event(),
                    "channels": [channel for channel, _ in notifications],
                    "payloads": [payload for _, payload in notifications],
                },
                prepare=False,
            )

        # One statement: atomic without a transaction block. After a lost COMMIT the retry
        # finds the ids taken: those callers look again the single way, where finding their
        # own run id means the first try did commit.
        rows = await self._run(f"starting {len(runs)} workflows", body, transaction=False)
        created = {k for k, _ in rows}
        known = _KNOWN_AFTER_RETRY if attempts > 1 else _KNOWN
        return [_CREATED if k in created else known for k in range(1, len(runs) + 1)]

    async def signal(self, instance_id: str, event: bytes) -> None:
        await self._deliver(f"signalling workflow {instance_id!r}", instance_id, event)

    async def request_cancel(self, instance_id: str, event: bytes) -> None:
        await self._deliver(f"cancelling workflow {instance_id!r}", instance_id, event)

    async def _deliver(self, action: str, instance_id: str, event: bytes) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            if await self._deliver_to_open_run(
                conn, effects, instance_id, event, self.clock(), wait=True
            ):
                return
            row = await self._fetchone(conn, "latest_status", {"instance_id": instance_id})
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            raise WorkflowNotRunningError(instance_id, row[0])

        # Not retried once COMMIT may have happened: the event would arrive twice.
        await self._run(action, body, retry_ambiguous=False)

    async def terminate(self, instance_id: str, reason: str) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._lock_latest_run(conn, instance_id)
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            run_id, status = row
            if status != RunStatus.RUNNING.value:
                if effects.attempt > 0 and status == RunStatus.TERMINATED.value:
                    return  # the first try did commit
                raise WorkflowNotRunningError(instance_id, status)
            await self._terminate_tree(conn, effects, instance_id, run_id, reason, self.clock())

        await self._run(f"terminating workflow {instance_id!r}", body)

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        async def body(conn: Conn, effects: _Effects) -> RunInfo:
            if run_id is None:
                row = await self._fetchone(conn, "describe_latest", {"instance_id": instance_id})
            else:
                row = await self._fetchone(
                    conn, "describe_run", {"instance_id": instance_id, "run_id": run_id}
                )
            if row is None:
                raise _not_found(instance_id, run_id)
            return self._row_to_info(row)

        return await self._run(f"describing workflow {instance_id!r}", body, transaction=False)

    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        async def body(conn: Conn, effects: _Effects) -> list[bytes]:
            if run_id is None:
                rows = await self._fetchall(conn, "history_latest", {"instance_id": instance_id})
            else:
                rows = await self._fetchall(
                    conn, "history_run", {"instance_id": instance_id, "run_id": run_id}
                )
            if not rows:
                raise _not_found(instance_id, run_id)
            events = [bytes(event) for (event, *_) in rows if event is not None]
            _, found_run_id, history_length = rows[0]
            return c.check_history_length(instance_id, found_run_id, history_length, events)

        return await self._run(
            f"reading the history of workflow {instance_id!r}", body, transaction=False
        )

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
        before = c.decode_cursor(cursor) if cursor is not None else None
        params = {
            "status": None if status is None else RunStatus(status).value,
            "workflow_name": workflow_name,
            "before": before,
            "limit": limit + 1,
        }

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            return await self._fetchall(conn, "list_runs", params)

        rows = await self._run("listing workflows", body, transaction=False)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = c.encode_cursor(rows[-1][15]) if more else None
        return [self._row_to_info(row) for row in rows], next_cursor

    async def delete(self, instance_id: str) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._lock_latest_run(conn, instance_id)
            if row is None:
                if effects.attempt > 0:
                    return  # the first try did commit
                raise WorkflowNotFoundError(instance_id)
            if row[1] == RunStatus.RUNNING.value:
                raise WorkflowAlreadyStartedError(
                    instance_id,
                    f"workflow {instance_id!r} is still running; terminate it before deleting",
                )
            await self._execute(conn, "delete_instance", {"instance_id": instance_id})

        await self._run(f"deleting workflow {instance_id!r}", body)

    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        async def body(conn: Conn, effects: _Effects) -> dict[str, bytes]:
            rows = await self._fetchall(conn, "get_vars", {"instance_id": instance_id})
            if not rows:
                raise WorkflowNotFoundError(instance_id)
            return {bytes(name).decode(): bytes(value) for name, value in rows if name is not None}

        return await self._run(
            f"reading the variables of workflow {instance_id!r}", body, transaction=False
        )

    async def wait_closed(self, instance_id: str, run_id: str, timeout: float | None) -> RunInfo:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        key = ("closed", instance_id, run_id)
        while True:
            waiter = self._waiters.register([key])
            try:
                info = await self.describe(instance_id, run_id)
                if not info.status.is_open:
                    return info
                poll = _SAFETY_POLL if self._listening else self._poll_interval
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return info
                    poll = min(poll, remaining)
                await c.wait_on(waiter, poll)
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
        if max_tasks < 1 or not queues:
            return []

        async def body(conn: Conn, effects: _Effects) -> list[WorkflowTask]:
            now = self.clock()
            rows = await self._fetchall(
                conn,
                "claim_workflow_tasks",
                {
                    "queues": list(queues),
                    "now": now,
                    "lease_seconds": lease_seconds,
                    "max_tasks": max_tasks,
                    "worker": worker or "",
                    "sticky_wait": sticky_wait,
                },
            )
            if not rows:
                return []
            rows.sort(key=lambda r: (r[7], r[8]))  # oldest pending event first
            inbox_rows = await self._fetchall(
                conn,
                "visible_inbox",
                {
                    "instance_ids": [r[0] for r in rows],
                    "run_ids": [r[1] for r in rows],
                    "now": now,
                },
            )
            inboxes: dict[tuple[str, str], list[InboxEvent]] = {}
            for instance_id, run_id, event_id, event in inbox_rows:
                inboxes.setdefault((instance_id, run_id), []).append(
                    InboxEvent(event_id, bytes(event))
                )
            return [
                WorkflowTask(
                    instance_id=instance_id,
                    run_id=run_id,
                    workflow_name=workflow_name,
                    queue=queue,
                    lease_token=lease_token,
                    history_length=history_length,
                    inbox=inboxes.get((instance_id, run_id), []),
                    failed_attempts=failed_attempts,
                )
                for (
                    instance_id,
                    run_id,
                    workflow_name,
                    queue,
                    lease_token,
                    history_length,
                    failed_attempts,
                    _,
                    _,
                ) in rows
            ]

        # No transaction block: the claim commits on its own, then the inbox is read
        # under the lease (no one else consumes it meanwhile), in a fresh snapshot that sees
        # every event committed before the claim. Two round trips instead of four.
        return await self._run("claiming workflow tasks", body, transaction=False)

    def _lease_lost(self, task: WorkflowTask) -> LeaseLostError:
        return LeaseLostError(
            f"the lease on workflow {task.instance_id!r} (run {task.run_id}) was lost: "
            "another worker took the task over, or the run was closed"
        )

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> None:
        if _fits_one_statement(commit):
            c.validate_commit(task.instance_id, task.history_length, commit)
            for act in commit.activities:
                _no_nul("activity queue", act.queue)
            # Group commit: concurrent commits of other runs go in the same statement.
            if await self._commits.submit((task, commit)):
                return
        await self._commit_in_general(task, commit)

    async def _commit_in_general(self, task: WorkflowTask, commit: WorkflowCommit) -> None:
        """Any commit, statement by statement in one transaction."""

        async def body(conn: Conn, effects: _Effects) -> None:
            now = self.clock()
            run = {"instance_id": task.instance_id, "run_id": task.run_id}
            row = await self._fetchone(
                conn, "lock_leased_run", {**run, "lease_token": task.lease_token}
            )
            if row is None:
                raise self._lease_lost(task)
            history_length, queue, parent_instance, parent_run, parent_command = row
            c.validate_commit(task.instance_id, history_length, commit)
            for child in commit.children:
                _check_text_fields(child)
            if commit.close is not None and commit.close.next_run is not None:
                _check_text_fields(commit.close.next_run)
            for act in commit.activities:
                _no_nul("activity queue", act.queue)
            if commit.new_events:
                await self._execute(
                    conn,
                    "append_history",
                    {
                        **run,
                        "first_seq": history_length + 1,
                        "events": [bytes(e) for e in commit.new_events],
                    },
                )
            if commit.consumed_inbox:
                await self._execute(
                    conn, "delete_inbox_events", {**run, "ids": list(commit.consumed_inbox)}
                )
            if commit.activities:
                acts = commit.activities
                await self._execute(
                    conn,
                    "insert_activity_tasks",
                    {
                        **run,
                        "now": now,
                        "activity_ids": [a.activity_id for a in acts],
                        "names": [a.name.encode() for a in acts],
                        "queues": [a.queue for a in acts],
                        "inputs": [bytes(a.input) for a in acts],
                        "options": [bytes(a.options) for a in acts],
                        "deadlines": [a.deadline for a in acts],
                    },
                )
                for activity in acts:
                    self._work(effects, "activity", activity.queue)
            if commit.cancel_activities:
                await self._execute(
                    conn,
                    "cancel_activity_tasks",
                    {**run, "activity_ids": list(commit.cancel_activities), "now": now},
                )
            if commit.timers:
                timers = commit.timers
                await self._execute(
                    conn,
                    "insert_inbox_events",
                    {
                        **run,
                        "timer_ids": [t.timer_id for t in timers],
                        "fire_ats": [t.fire_at for t in timers],
                        "events": [bytes(t.event) for t in timers],
                    },
                )
            if commit.cancel_timers:
                await self._execute(
                    conn, "cancel_timers", {**run, "timer_ids": list(commit.cancel_timers)}
                )
            # Events for this run's own inbox, in the order they happen.
            own: list[bytes] = []
            for child in commit.children:
                assert child.parent is not None  # validate_commit checked
                started, open_run, _ = await self._start_run(conn, effects, child, now)
                if not started:
                    own.append(
                        c.child_start_refused_event(
                            child.parent.command_id, child.instance_id, open_run
                        )
                    )
            for target, event in commit.cancel_instances:
                await self._deliver_to_open_run(conn, effects, target, event, now)
            for signal in commit.signals:
                target = signal.target_instance_id
                failure = None
                if not await self._deliver_to_open_run(conn, effects, target, signal.event, now):
                    exists = await self._fetchone(conn, "latest_status", {"instance_id": target})
                    failure = c.signal_target_missing(target, exists is not None)
                own.append(c.signal_external_completed_event(signal.command_id, failure))
            if own:
                await self._execute(
                    conn,
                    "insert_inbox_events",  # no timer id, visible now
                    {
                        **run,
                        "timer_ids": [None] * len(own),
                        "fire_ats": [now] * len(own),
                        "events": own,
                    },
                )
            if commit.vars:
                names = list(commit.vars)
                await self._execute(
                    conn,
                    "upsert_vars",
                    {
                        **run,
                        "names": [n.encode() for n in names],
                        "values": [bytes(commit.vars[n]) for n in names],
                    },
                )
            await self._execute(
                conn,
                "finish_workflow_task",
                {
                    **run,
                    "new_events": len(commit.new_events),
                    "now": now,
                    "sticky_worker": commit.sticky_worker,
                },
            )
            # Released: events that arrived during the task (or timers) make it claimable.
            self._work(effects, "workflow", queue)
            close = commit.close
            if close is not None:
                result = None if close.result is None else bytes(close.result)
                next_run = close.next_run
                await self._execute(
                    conn,
                    "close_run",
                    {
                        **run,
                        "status": close.status.value,
                        "result": result,
                        "now": now,
                        "next_run_id": None if next_run is None else next_run.run_id,
                    },
                )
                carried: list[bytes] = []
                if next_run is not None:
                    # Signals and cancel requests that arrived while this task ran are meant
                    # for the instance: they move to the next run.
                    rows = await self._fetchall(
                        conn,
                        "visible_inbox",
                        {
                            "instance_ids": [task.instance_id],
                            "run_ids": [task.run_id],
                            "now": now + 1e9,  # every event, whatever its visible_at
                        },
                    )
                    carried = [bytes(r[3]) for r in rows if _carries_over(bytes(r[3]))]
                await self._drop_pending_work(conn, task.instance_id, task.run_id, now)
                self._closed(effects, task.instance_id, task.run_id)
                parent = None
                if parent_instance is not None:
                    parent = ParentRef(parent_instance, parent_run, parent_command)
                if next_run is not None:
                    if next_run.parent is None and parent is not None:
                        next_run = _with_parent(next_run, parent)
                    await self._execute(
                        conn,
                        "set_latest_run",
                        {"instance_id": next_run.instance_id, "run_id": next_run.run_id},
                    )
                    await self._insert_run(conn, effects, next_run, now)
                    if carried:
                        await self._execute(
                            conn,
                            "insert_inbox_events",  # no timer id, visible now
                            {
                                "instance_id": next_run.instance_id,
                                "run_id": next_run.run_id,
                                "timer_ids": [None] * len(carried),
                                "fire_ats": [now] * len(carried),
                                "events": carried,
                            },
                        )
                elif parent is not None:
                    event = c.child_closed_event(
                        parent.command_id, task.instance_id, close.status, result
                    )
                    await self._deliver_to_run(conn, effects, parent, event, now)

        await self._run(f"committing a task of workflow {task.instance_id!r}", body)

    async def _apply_commits(
        self, items: list[tuple[WorkflowTask, WorkflowCommit]]
    ) -> list[bool | BaseException]:
        """One batch of ``_commits``: per item True (done), False (to be done the general
        way: nothing was written) or the caller's exception."""
        if len(items) > 1:
            try:
                return await self._commit_many(items)
            except psycopg.OperationalError:
                raise  # outcome unknown: every caller gets the error
            except (psycopg.Error, ValueError):
                # One item's error failed the statement, which wrote nothing: apply them one
                # by one, so the error reaches only its own caller.
                pass
        outcomes: list[bool | BaseException] = []
        for task, commit in items:
            try:
                outcomes.append(await self._commit_in_one_statement(task, commit))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    async def _commit_many(
        self, items: list[tuple[WorkflowTask, WorkflowCommit]]
    ) -> list[bool | BaseException]:
        """Several runs' commits (each of the ``_fits_one_statement`` shape) in one
        statement, each fenced on its own."""
        p: dict[str, list[Any]] = {name: [] for name in _COMMIT_BATCH_ARRAYS}
        for task, commit in items:
            close = commit.close
            p["instance_ids"].append(task.instance_id)
            p["run_ids"].append(task.run_id)
            p["lease_tokens"].append(task.lease_token)
            p["history_lengths"].append(task.history_length)
            p["closings"].append(close is not None)
            p["close_statuses"].append(None if close is None else close.status.value)
            p["results"].append(
                None if close is None or close.result is None else bytes(close.result)
            )
            # 1-based inclusive slices of the flat arrays (from > to: none).
            p["event_from"].append(len(p["events"]) + 1)
            p["events"].extend(bytes(e) for e in commit.new_events)
            p["event_to"].append(len(p["events"]))
            p["consumed_from"].append(len(p["consumed"]) + 1)
            p["consumed"].extend(commit.consumed_inbox)
            p["consumed_to"].append(len(p["consumed"]))
            p["activity_from"].append(len(p["a_activity_ids"]) + 1)
            for a in commit.activities:
                p["a_activity_ids"].append(a.activity_id)
                p["a_names"].append(a.name.encode())
                p["a_queues"].append(a.queue)
                p["a_inputs"].append(bytes(a.input))
                p["a_options"].append(bytes(a.options))
                p["a_deadlines"].append(a.deadline)
            p["activity_to"].append(len(p["a_activity_ids"]))
            p["timer_from"].append(len(p["m_timer_ids"]) + 1)
            for t in commit.timers:
                p["m_timer_ids"].append(t.timer_id)
                p["m_fire_ats"].append(t.fire_at)
                p["m_events"].append(bytes(t.event))
            p["timer_to"].append(len(p["m_timer_ids"]))
            p["var_from"].append(len(p["v_names"]) + 1)
            for name, value in commit.vars.items():
                p["v_names"].append(name.encode())
                p["v_values"].append(bytes(value))
            p["var_to"].append(len(p["v_names"]))
            p["sticky_workers"].append(commit.sticky_worker)

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            for task, commit in items:
                for activity in commit.activities:
                    self._work(effects, "activity", activity.queue)
                # Released: events that arrived during the task make it claimable.
                self._work(effects, "workflow", task.queue)
                if commit.close is not None:
                    self._closed(effects, task.instance_id, task.run_id)
            # The statement sends them itself, once for the batch, if any fence holds.
            notifications = sorted(effects.notifications)
            effects.notifications.clear()
            return await self._fetchall(
                conn,
                "commit_workflow_tasks",
                {
                    **p,
                    "now": self.clock(),
                    "channels": [channel for channel, _ in notifications],
                    "payloads": [payload for _, payload in notifications],
                },
                prepare=False,
            )

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the leases released and reports LeaseLostError; nothing is written twice.
        rows = await self._run(f"committing {len(items)} workflow tasks", body, transaction=False)
        held = {k: ok for k, ok, _ in rows}
        outcomes: list[bool | BaseException] = []
        for k, (task, _) in enumerate(items, 1):
            ok = held.get(k)
            outcomes.append(self._lease_lost(task) if ok is None else bool(ok))
        return outcomes

    async def _commit_in_one_statement(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        """The common commits (see ``_fits_one_statement``, validated by the caller) as one
        statement: one round trip instead of about eight. False when it must be done the
        general way after all (it closes a run that has a parent: nothing was written then)."""
        acts, timers, close = commit.activities, commit.timers, commit.close
        names = list(commit.vars)

        async def body(conn: Conn, effects: _Effects) -> bool:
            now = self.clock()
            for activity in acts:
                self._work(effects, "activity", activity.queue)
            # Released: events that arrived during the task (or timers) make it claimable.
            self._work(effects, "workflow", task.queue)
            if close is not None:
                self._closed(effects, task.instance_id, task.run_id)
            # The statement sends them itself, and only when the fence holds.
            notifications = sorted(effects.notifications)
            effects.notifications.clear()
            row = await self._fetchone(
                conn,
                "commit_workflow_task",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "history_length": task.history_length,
                    "now": now,
                    "events": [bytes(e) for e in commit.new_events],
                    "consumed": list(commit.consumed_inbox),
                    "activity_ids": [a.activity_id for a in acts],
                    "names": [a.name.encode() for a in acts],
                    "queues": [a.queue for a in acts],
                    "inputs": [bytes(a.input) for a in acts],
                    "options": [bytes(a.options) for a in acts],
                    "deadlines": [a.deadline for a in acts],
                    "timer_ids": [t.timer_id for t in timers],
                    "fire_ats": [t.fire_at for t in timers],
                    "timer_events": [bytes(t.event) for t in timers],
                    "var_names": [n.encode() for n in names],
                    "var_values": [bytes(commit.vars[n]) for n in names],
                    "sticky_worker": commit.sticky_worker,
                    "closing": close is not None,
                    "close_status": None if close is None else close.status.value,
                    "result": None
                    if close is None or close.result is None
                    else bytes(close.result),
                    "channels": [channel for channel, _ in notifications],
                    "payloads": [payload for _, payload in notifications],
                },
            )
            if row is None:
                raise self._lease_lost(task)
            if not row[0]:
                effects.keys.clear()
                return False
            return True

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the lease released and reports LeaseLostError; nothing is written twice.
        return await self._run(
            f"committing a task of workflow {task.instance_id!r}", body, transaction=False
        )

    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "fail_workflow_task",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "reason": reason.replace("\x00", "\\x00"),  # text holds no NUL
                    "retry_at": retry_at,
                    "now": self.clock(),
                    "channel": self._channels["workflow"],
                },
            )
            if row is None:
                raise self._lease_lost(task)
            self._work(effects, "workflow", row[0], sql_notifies=True)

        await self._run(f"failing a task of workflow {task.instance_id!r}", body, transaction=False)

    async def release_workflow_task(self, task: WorkflowTask) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "release_workflow_task",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "channel": self._channels["workflow"],
                },
            )
            if row is not None:
                self._work(effects, "workflow", row[0], sql_notifies=True)

        await self._run(
            f"releasing a task of workflow {task.instance_id!r}", body, transaction=False
        )

    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        if not queues:
            return

        async def body(conn: Conn, effects: _Effects) -> None:
            rows = await self._fetchall(
                conn,
                "release_sticky",
                {"worker": worker, "queues": list(queues), "channel": self._channels["workflow"]},
            )
            for queue, _ in rows:
                self._work(effects, "workflow", queue, sql_notifies=True)

        await self._run("releasing a worker's cached runs", body, transaction=False)

    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "extend_workflow_lease",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "lease_seconds": lease_seconds,
                    "now": self.clock(),
                },
            )
            if row is None:
                raise self._lease_lost(task)

        await self._run(
            f"extending the lease of workflow {task.instance_id!r}", body, transaction=False
        )

    # ---- activity worker side -----------------------------------------------------------

    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        if max_tasks < 1 or not queues:
            return []

        async def body(conn: Conn, effects: _Effects) -> list[ActivityTask]:
            now = self.clock()
            rows = await self._fetchall(
                conn,
                "claim_activity_tasks",
                {
                    "queues": list(queues),
                    "now": now,
                    "lease_seconds": lease_seconds,
                    "max_tasks": max_tasks,
                },
            )
            rows.sort(key=lambda r: (r[13], r[0]))  # visible_at, task_id
            return [
                ActivityTask(
                    task_id=r[0],
                    instance_id=r[1],
                    run_id=r[2],
                    activity_id=r[3],
                    name=bytes(r[4]).decode(),
                    queue=r[5],
                    input=bytes(r[6]),
                    options=bytes(r[7]),
                    attempt=r[8],
                    lease_token=r[9],
                    scheduled_at=r[10],
                    deadline=r[11],
                    heartbeat_details=None if r[12] is None else bytes(r[12]),
                    workflow_name=r[14],
                )
                for r in rows
            ]

        # One statement: atomic without a transaction block (one round trip, not four).
        return await self._run("claiming activity tasks", body, transaction=False)

    def _activity_lease_lost(self, task: ActivityTask) -> LeaseLostError:
        return LeaseLostError(
            f"the lease on activity {task.name!r} (id {task.activity_id}) of workflow "
            f"{task.instance_id!r}, attempt {task.attempt}, was lost: the task was "
            "completed, retried or claimed again by another worker"
        )

    async def heartbeat_activity(
        self, task: ActivityTask, details: bytes | None, lease_seconds: float
    ) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            row = await self._fetchone(
                conn,
                "heartbeat_activity",
                {
                    "task_id": task.task_id,
                    "lease_token": task.lease_token,
                    "details": None if details is None else bytes(details),
                    "lease_seconds": lease_seconds,
                    "now": self.clock(),
                },
            )
            if row is None:
                raise self._activity_lease_lost(task)
            return bool(row[0])

        return await self._run(
            f"recording a heartbeat of activity {task.name!r}", body, transaction=False
        )

    async def complete_activity(self, task: ActivityTask, event: bytes) -> None:
        # Group commit: concurrent completions go in the same statement.
        await self._completions.submit((task, bytes(event)))

    async def _apply_completions(
        self, items: list[tuple[ActivityTask, bytes]]
    ) -> list[BaseException | None]:
        """One batch of ``_completions``: per item None (done) or the caller's exception."""
        if len(items) > 1:
            try:
                return await self._complete_many(items)
            except psycopg.OperationalError:
                raise  # outcome unknown: every caller gets the error
            except (psycopg.Error, ValueError):
                pass  # nothing was written: one by one, each caller gets its own outcome
        outcomes: list[BaseException | None] = []
        for task, event in items:
            try:
                await self._complete_one(task, event)
            except Exception as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    async def _complete_many(
        self, items: list[tuple[ActivityTask, bytes]]
    ) -> list[BaseException | None]:
        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            rows = await self._fetchall(
                conn,
                "complete_activities",
                {
                    "task_ids": [task.task_id for task, _ in items],
                    "lease_tokens": [task.lease_token for task, _ in items],
                    "events": [event for _, event in items],
                    "now": self.clock(),
                    "channel": self._channels["workflow"],
                },
                prepare=False,
            )
            for _, queue, _ in rows:
                if queue is not None:
                    self._work(effects, "workflow", queue, sql_notifies=True)
            return rows

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the tasks gone and reports LeaseLostError; nothing is written twice.
        rows = await self._run(f"completing {len(items)} activities", body, transaction=False)
        done = {k for k, _, _ in rows}
        return [
            None if k in done else self._activity_lease_lost(task)
            for k, (task, _) in enumerate(items, 1)
        ]

    async def _complete_one(self, task: ActivityTask, event: bytes) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "complete_activity",
                {
                    "task_id": task.task_id,
                    "lease_token": task.lease_token,
                    "event": bytes(event),
                    "now": self.clock(),
                    "channel": self._channels["workflow"],
                },
            )
            if row is None or not row[0]:
                raise self._activity_lease_lost(task)
            if row[1] is not None:
                self._work(effects, "workflow", row[1], sql_notifies=True)

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the task gone and reports LeaseLostError; nothing is written twice.
        await self._run(
            f"completing activity {task.name!r} of workflow {task.instance_id!r}",
            body,
            transaction=False,
        )

    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "retry_activity",
                {
                    "task_id": task.task_id,
                    "lease_token": task.lease_token,
                    "visible_at": visible_at,
                    "failure": None if failure is None else bytes(failure),
                    "channel": self._channels["activity"],
                },
            )
            if row is None:
                raise self._activity_lease_lost(task)
            self._work(effects, "activity", row[0], sql_notifies=True)

        await self._run(f"scheduling a retry of activity {task.name!r}", body, transaction=False)

    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        async def body(conn: Conn, effects: _Effects) -> list[ActivityState]:
            rows = await self._fetchall(
                conn,
                "activity_states",
                {"instance_id": instance_id, "run_id": run_id, "now": self.clock()},
            )
            return [
                ActivityState(
                    activity_id=activity_id,
                    name=bytes(name).decode(),
                    attempt=attempt,
                    scheduled_at=scheduled_at,
                    visible_at=visible_at,
                    running=running,
                    cancel_requested=cancel_requested,
                    heartbeat_details=None if details is None else bytes(details),
                    last_failure=None if failure is None else bytes(failure),
                )
                for (
                    activity_id,
                    name,
                    attempt,
                    scheduled_at,
                    visible_at,
                    running,
                    cancel_requested,
                    details,
                    failure,
                ) in rows
            ]

        return await self._run(
            f"reading the activities of workflow {instance_id!r}", body, transaction=False
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
        keys = c.work_keys(kind, queues)
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
                if await c.wait_on(waiter, wait):
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
    kind = orjson.loads(event).get("kind")
    return kind in ("signal_received", "cancel_requested")


def _with_parent(run: NewRun, parent: ParentRef) -> NewRun:
    return NewRun(
        instance_id=run.instance_id,
        run_id=run.run_id,
        workflow_name=run.workflow_name,
        queue=run.queue,
        started_event=run.started_event,
        visible_at=run.visible_at,
        parent=parent,
        id_reuse=run.id_reuse,
        execution_deadline=run.execution_deadline,
    )
