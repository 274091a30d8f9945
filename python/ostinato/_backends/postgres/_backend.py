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

from .._contract import TimeSkipping
from ._activities import _ActivitySide
from ._client import _ClientSide
from ._hooks import _HookSide
from ._retention import _RetentionSide
from ._schedules import _ScheduleSide
from ._workflows import _WorkflowSide


class PostgresBackend(
    _ClientSide,
    _WorkflowSide,
    _ActivitySide,
    _ScheduleSide,
    _HookSide,
    _RetentionSide,
    TimeSkipping,
):
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

    eager_dispatch = True

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
