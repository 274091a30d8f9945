"""The connections of our pools, and the filter that turns psycopg_pool's per-connection
warnings about one incident into DEBUG lines (ostinato reports the incident once)."""

from __future__ import annotations

import logging
import weakref
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
