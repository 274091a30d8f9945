"""The SQLite backend's retention methods (table ``sweeps``, migration 0009), as a layer
over ``SqliteCore``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from .._errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from ._retention_store import RetentionStore, check_same_length, still_running
from ._sqlite_core import SqliteCore
from ._sqlite_sql import QUERIES as Q
from ._sqlite_store import Wake
from ._types import RunStatus

__all__ = ["SqliteRetention", "delete_instance_rows"]


def delete_instance_rows(conn: sqlite3.Connection, instance_id: str) -> None:
    """Remove one instance and everything of it (``delete`` and the batched deletion)."""
    for query in (
        "delete_history", "delete_inbox", "delete_activity_tasks", "delete_vars",
        "delete_runs", "delete_instance",
    ):  # fmt: skip
        conn.execute(Q[query], (instance_id,))


class SqliteRetention(SqliteCore, RetentionStore):
    async def delete_closed_instances(
        self, closed_before: float, statuses: Sequence[RunStatus], limit: int
    ) -> int:
        wanted = orjson.dumps([RunStatus(s).value for s in statuses])

        def op(conn: sqlite3.Connection, wake: Wake) -> int:
            rows = conn.execute(Q["closed_instances"], (closed_before, wanted, limit)).fetchall()
            for (instance_id,) in rows:
                delete_instance_rows(conn, instance_id)
            return len(rows)

        return await self._call(op)

    async def redact_run(self, instance_id: str, run_id: str, history: Sequence[bytes]) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            row = conn.execute(Q["redact_find_run"], (instance_id, run_id)).fetchone()
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            pk, status = row
            if RunStatus(status).is_open:
                raise WorkflowAlreadyStartedError(instance_id, still_running(instance_id))
            seqs = [seq for (seq,) in conn.execute(Q["redact_history_seqs"], (pk,))]
            check_same_length(seqs, history)
            for seq, event in zip(seqs, history, strict=True):
                conn.execute(Q["redact_history_event"], (bytes(event), pk, seq))
            conn.execute(Q["redact_run_row"], (self.clock(), pk))
            conn.execute(Q["redact_run_hook_deliveries"], (pk, pk))
            for query in (
                "redact_run_hook_errors", "redact_run_vars", "redact_run_inbox",
                "redact_run_activities",
            ):  # fmt: skip
                conn.execute(Q[query], (pk,))

        await self._call(op)

    async def closed_runs_to_redact(
        self, closed_before: float, limit: int
    ) -> list[tuple[str, str]]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[tuple[str, str]]:
            rows = conn.execute(Q["closed_runs_to_redact"], (closed_before, limit))
            return [(instance_id, run_id) for instance_id, run_id in rows]

        return await self._read(op)

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
