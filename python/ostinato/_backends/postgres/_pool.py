"""The connections of our pools: which are a backend's own (to know its own notifications),
lease-only writes that skip the WAL flush, and the filter that turns psycopg_pool's
per-connection warnings about one incident into DEBUG lines (ostinato reports the incident
once)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

import psycopg

Conn = psycopg.AsyncConnection[Any]


# ---- psycopg_pool's log lines ---------------------------------------------------------------

_POOL_NAME = "ostinato"
# Connections our pools opened (psycopg_pool names the pool in some messages, not in others).
_pool_connections: weakref.WeakSet[Conn] = weakref.WeakSet()
_pool_log = logging.getLogger("psycopg.pool")


class _PoolIncidentFilter(logging.Filter):
    """When the server goes away, psycopg_pool warns once per dead connection and per failed
    reconnection attempt of our pool: several lines (some spanning lines) for one incident
    that ostinato already reports in one line on ``ostinato.postgres``. Those records are
    demoted to DEBUG: dropped unless ``psycopg.pool`` logs DEBUG. Other pools' records and
    the pool's other messages pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not _is_our_pool_noise(record):
            return True
        if not _pool_log.isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _is_our_pool_noise(record: logging.LogRecord) -> bool:
    message, args = record.msg, record.args
    if not isinstance(message, str) or not isinstance(args, tuple) or not args:
        return False
    if message.startswith("error connecting in "):
        return args[0] == _POOL_NAME
    if message.startswith(("discarding closed connection", "discarding broken connection")):
        try:
            return args[0] in _pool_connections
        except TypeError:
            return False
    return False


_pool_filter = _PoolIncidentFilter()


async def _track_pool_connection(conn: Conn) -> None:
    _pool_connections.add(conn)


class OwnConnections:
    """The server process ids of one pool's live connections.

    A backend's own writes wake its waiters when they commit (``_Core._run``) and also send a
    NOTIFY for other processes, which comes back to its own listener: that echo would only
    wake the same waiters again, each to ask the database for work in vain, so it is dropped.
    Only live connections count (a server process id is reused only after its connection
    died; a connection psycopg knows is closed no longer counts).
    """

    def __init__(self) -> None:
        self._by_pid: dict[int, weakref.ref[Conn]] = {}

    async def track(self, conn: Conn) -> None:
        """The pool's ``configure`` callback: a new connection."""
        await _track_pool_connection(conn)
        if len(self._by_pid) > 64:
            self._by_pid = {pid: ref for pid, ref in self._by_pid.items() if _alive(ref)}
        self._by_pid[conn.info.backend_pid] = weakref.ref(conn)

    def sent(self, pid: int) -> bool:
        """Whether a notification from server process ``pid`` came from one of these."""
        ref = self._by_pid.get(pid)
        if ref is None:
            return False
        if not _alive(ref):
            del self._by_pid[pid]
            return False
        return True


def _alive(ref: weakref.ref[Conn]) -> bool:
    conn = ref()
    return conn is not None and not conn.closed


# ---- writes that skip the WAL flush ---------------------------------------------------------

# For the implicit transaction a pipeline's statements run in (up to its sync).
_NO_FLUSH = b"SELECT set_config('synchronous_commit', 'off', true)"


async def fetch_unflushed(
    conn: Conn, query: bytes, params: Mapping[str, Any], *, pipelined: bool
) -> list[Any]:
    """Run one statement that writes nothing but leases in a transaction whose commit does
    not wait for its WAL flush, in one round trip: ``set_config`` and the statement in one
    pipeline are one implicit transaction, and the setting lasts until its end.

    Losing such a commit in a server crash is harmless (docs/backends.md, "Claims without a
    flush"): PostgreSQL flushes its WAL in order, so any later flushed commit makes this one
    durable too; a lost claim leaves the task claimable at once, and the lost lease token
    (random, never reissued) fences every write of the worker that held it. Without
    pipeline mode (libpq < 14) the statement runs alone and is flushed like any write.
    """
    if not pipelined:
        cur = await conn.execute(query, params)
        return await cur.fetchall()
    failed: psycopg.Error | None = None
    async with conn.pipeline():
        try:
            await conn.execute(_NO_FLUSH)
            cur = await conn.execute(query, params)
        except psycopg.Error as exc:
            # Raised after the pipeline's exit, which then raises its own error if it has
            # one (a lost connection): raised inside, psycopg would also log that one as a
            # warning besides ours.
            failed = exc
    if failed is not None:
        raise failed
    return await cur.fetchall()
