"""The SQLite backend's schedule rows (table ``schedules``, migration 0004): the
``ScheduleStore`` methods, as a layer over ``SqliteCore``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._schedule_store import ScheduleRecord, ScheduleStore
from ._sqlite_core import SqliteCore
from ._sqlite_sql import QUERIES as Q
from ._sqlite_store import Wake

__all__ = ["SqliteSchedules"]


class SqliteSchedules(SqliteCore, ScheduleStore):
    async def create_schedule(self, record: ScheduleRecord) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            now = self.clock()
            cursor = conn.execute(
                Q["create_schedule"],
                (
                    record.schedule_id,
                    record.workflow_name,
                    record.queue,
                    record.args,
                    record.spec,
                    record.state,
                    int(record.paused),
                    record.next_fire_at,
                    now,
                    now,
                ),
            )
            return cursor.rowcount == 1

        return await self._call(op)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        def op(conn: sqlite3.Connection, wake: Wake) -> ScheduleRecord | None:
            row = conn.execute(Q["get_schedule"], (schedule_id,)).fetchone()
            return None if row is None else ScheduleRecord.from_row(row)

        return await self._read(op)

    async def list_schedules(
        self, *, after: str | None = None, limit: int = 1000
    ) -> list[ScheduleRecord]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[ScheduleRecord]:
            rows = conn.execute(Q["list_schedules"], (after or "", limit))
            return [ScheduleRecord.from_row(row) for row in rows]

        return await self._read(op)

    async def update_schedule(self, record: ScheduleRecord, expected_version: int) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            cursor = conn.execute(
                Q["update_schedule"],
                (
                    record.queue,
                    record.args,
                    record.spec,
                    record.state,
                    int(record.paused),
                    record.next_fire_at,
                    self.clock(),
                    record.schedule_id,
                    expected_version,
                ),
            )
            return cursor.rowcount == 1

        return await self._call(op)

    async def delete_schedule(self, schedule_id: str) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            return conn.execute(Q["delete_schedule"], (schedule_id,)).rowcount == 1

        return await self._call(op)

    async def due_schedules(
        self, queues: Sequence[str], now: float, limit: int
    ) -> list[ScheduleRecord]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[ScheduleRecord]:
            query = Q.for_queues("due_schedules", len(queues))
            return [
                ScheduleRecord.from_row(row) for row in conn.execute(query, (now, *queues, limit))
            ]

        return await self._read(op)

    async def next_schedule_fire(self, queues: Sequence[str]) -> float | None:
        def op(conn: sqlite3.Connection, wake: Wake) -> float | None:
            query = Q.for_queues("next_schedule_fire", len(queues))
            row = conn.execute(query, tuple(queues)).fetchone()
            return None if row is None else row[0]

        return await self._read(op)
