"""The SQLite backend's schedule rows (table ``schedules``, migration 0004)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from .._backend import Clock
from ._schedule_store import ScheduleRecord, ScheduleStore

__all__ = ["SqliteSchedules"]

T = TypeVar("T")
_Op = Callable[[sqlite3.Connection, set[Hashable]], T]

_COLUMNS = (
    "schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version, "
    "created_at, updated_at"
)


def _record(row: tuple[Any, ...]) -> ScheduleRecord:
    sid, name, queue, args, spec, state, paused, next_fire_at, version, created, updated = row
    return ScheduleRecord(
        schedule_id=sid,
        workflow_name=name,
        queue=queue,
        args=bytes(args),
        spec=bytes(spec),
        state=bytes(state),
        paused=bool(paused),
        next_fire_at=next_fire_at,
        version=version,
        created_at=created,
        updated_at=updated,
    )


def _in(queues: Sequence[str]) -> str:
    return ", ".join("?" * len(queues))


class SqliteSchedules(ScheduleStore):
    clock: Clock

    async def _call(self, fn: _Op[T], *, write: bool = True) -> T:
        raise NotImplementedError  # provided by SqliteBackend

    async def _read(self, fn: _Op[T]) -> T:
        raise NotImplementedError  # provided by SqliteBackend

    async def create_schedule(self, record: ScheduleRecord) -> bool:
        def op(conn: sqlite3.Connection, wake: set[Hashable]) -> bool:
            now = self.clock()
            cursor = conn.execute(
                f"INSERT INTO schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) "
                "ON CONFLICT (schedule_id) DO NOTHING",
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
        def op(conn: sqlite3.Connection, wake: set[Hashable]) -> ScheduleRecord | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id = ?", (schedule_id,)
            ).fetchone()
            return None if row is None else _record(row)

        return await self._read(op)

    async def list_schedules(
        self, *, after: str | None = None, limit: int = 1000
    ) -> list[ScheduleRecord]:
        def op(conn: sqlite3.Connection, wake: set[Hashable]) -> list[ScheduleRecord]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id > ? "
                "ORDER BY schedule_id LIMIT ?",
                (after or "", limit),
            )
            return [_record(row) for row in rows]

        return await self._read(op)

    async def update_schedule(self, record: ScheduleRecord, expected_version: int) -> bool:
        def op(conn: sqlite3.Connection, wake: set[Hashable]) -> bool:
            cursor = conn.execute(
                "UPDATE schedules SET queue = ?, args = ?, spec = ?, state = ?, paused = ?, "
                "next_fire_at = ?, version = version + 1, updated_at = ? "
                "WHERE schedule_id = ? AND version = ?",
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
        def op(conn: sqlite3.Connection, wake: set[Hashable]) -> bool:
            cursor = conn.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
            return cursor.rowcount == 1

        return await self._call(op)

    async def due_schedules(
        self, queues: Sequence[str], now: float, limit: int
    ) -> list[ScheduleRecord]:
        def op(conn: sqlite3.Connection, wake: set[Hashable]) -> list[ScheduleRecord]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE next_fire_at <= ? "
                f"AND queue IN ({_in(queues)}) ORDER BY next_fire_at, schedule_id LIMIT ?",
                (now, *queues, limit),
            )
            return [_record(row) for row in rows]

        return await self._read(op)

    async def next_schedule_fire(self, queues: Sequence[str]) -> float | None:
        def op(conn: sqlite3.Connection, wake: set[Hashable]) -> float | None:
            row = conn.execute(
                f"SELECT MIN(next_fire_at) FROM schedules WHERE queue IN ({_in(queues)})",
                tuple(queues),
            ).fetchone()
            return None if row is None else row[0]

        return await self._read(op)
