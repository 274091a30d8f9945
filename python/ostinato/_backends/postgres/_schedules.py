"""Schedule rows (table ``schedules``, migration 0006): the ``ScheduleStore`` methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._schedule_store import ScheduleRecord, ScheduleStore
from ._core import _Core, _Effects
from ._pool import Conn

__all__ = ["_ScheduleSide"]


def _fields(record: ScheduleRecord) -> dict[str, Any]:
    return {
        "schedule_id": record.schedule_id,
        "queue": record.queue,
        "args": record.args,
        "spec": record.spec,
        "state": record.state,
        "paused": record.paused,
        "next_fire_at": record.next_fire_at,
    }


class _ScheduleSide(_Core, ScheduleStore):
    async def create_schedule(self, record: ScheduleRecord) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            params = _fields(record) | {
                "workflow_name": record.workflow_name,
                "now": self.clock(),
            }
            return await self._fetchone(conn, "create_schedule", params) is not None

        # Not retried after a connection lost during COMMIT: the row may be there, and a
        # retry would then report the id as taken.
        where = f"creating schedule {record.schedule_id!r}"
        return await self._run(where, body, retry_ambiguous=False)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        async def body(conn: Conn, effects: _Effects) -> ScheduleRecord | None:
            row = await self._fetchone(conn, "get_schedule", {"schedule_id": schedule_id})
            return None if row is None else ScheduleRecord.from_row(row)

        return await self._run(f"reading schedule {schedule_id!r}", body, transaction=False)

    async def list_schedules(
        self, *, after: str | None = None, limit: int = 1000
    ) -> list[ScheduleRecord]:
        async def body(conn: Conn, effects: _Effects) -> list[ScheduleRecord]:
            params = {"after": after or "", "limit": limit}
            return [
                ScheduleRecord.from_row(r)
                for r in await self._fetchall(conn, "list_schedules", params)
            ]

        return await self._run("listing schedules", body, transaction=False)

    async def update_schedule(self, record: ScheduleRecord, expected_version: int) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            params = _fields(record) | {
                "expected_version": expected_version,
                "now": self.clock(),
            }
            return await self._fetchone(conn, "update_schedule", params) is not None

        # A retry after an ambiguous COMMIT finds the version moved and reports False: the
        # caller re-reads the row, as after any lost compare-and-set.
        return await self._run(f"updating schedule {record.schedule_id!r}", body)

    async def delete_schedule(self, schedule_id: str) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            row = await self._fetchone(conn, "delete_schedule", {"schedule_id": schedule_id})
            return row is not None

        where = f"deleting schedule {schedule_id!r}"
        return await self._run(where, body, retry_ambiguous=False)

    async def due_schedules(
        self, queues: Sequence[str], now: float, limit: int
    ) -> list[ScheduleRecord]:
        async def body(conn: Conn, effects: _Effects) -> list[ScheduleRecord]:
            params = {"queues": list(queues), "now": now, "limit": limit}
            return [
                ScheduleRecord.from_row(r)
                for r in await self._fetchall(conn, "due_schedules", params)
            ]

        return await self._run("looking for due schedules", body, transaction=False)

    async def next_schedule_fire(self, queues: Sequence[str]) -> float | None:
        async def body(conn: Conn, effects: _Effects) -> float | None:
            row = await self._fetchone(conn, "next_schedule_fire", {"queues": list(queues)})
            return None if row is None or row[0] is None else float(row[0])

        return await self._run("looking for the next schedule fire", body, transaction=False)
