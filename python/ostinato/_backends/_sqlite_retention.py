"""The SQLite backend's retention methods (table ``sweeps``, migration 0005), as a layer
over ``SqliteCore``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from ._retention_store import RetentionStore
from ._sqlite_core import SqliteCore
from ._sqlite_sql import QUERIES as Q
from ._sqlite_store import Wake
from ._types import RunStatus

__all__ = ["SqliteRetention", "DELETE_INSTANCE"]

# The statements removing one instance and everything of it, in order (``delete`` too).
DELETE_INSTANCE = (
    "delete_history", "delete_inbox", "delete_activity_tasks", "delete_vars",
    "delete_runs", "delete_instance",
)  # fmt: skip


class SqliteRetention(SqliteCore, RetentionStore):
    async def delete_closed_instances(
        self, closed_before: float, statuses: Sequence[RunStatus], limit: int
    ) -> int:
        wanted = orjson.dumps([RunStatus(s).value for s in statuses])

        def op(conn: sqlite3.Connection, wake: Wake) -> int:
            rows = conn.execute(Q["closed_instances"], (closed_before, wanted, limit)).fetchall()
            for (instance_id,) in rows:
                for query in DELETE_INSTANCE:
                    conn.execute(Q[query], (instance_id,))
            return len(rows)

        return await self._call(op)

    async def claim_sweep(self, name: str, holder: str, lease_seconds: float) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            now = self.clock()
            cursor = conn.execute(Q["claim_sweep"], (name, holder, now + lease_seconds, now))
            return cursor.rowcount == 1

        return await self._call(op)

    async def release_sweep(self, name: str, holder: str) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            conn.execute(Q["release_sweep"], (name, holder))

        await self._call(op)
