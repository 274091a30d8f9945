"""The in-memory backend's schedule rows (the reference for the SQL versions)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from ._schedule_store import ScheduleRecord, ScheduleStore
from ._types import Clock

__all__ = ["MemorySchedules"]


class MemorySchedules(ScheduleStore):
    """Schedule rows in a dict, guarded by the backend's lock; copies in and out, so a
    caller's record is never the stored one."""

    clock: Clock
    _lock: threading.RLock
    _schedules: dict[str, ScheduleRecord]

    async def create_schedule(self, record: ScheduleRecord) -> bool:
        with self._lock:
            if record.schedule_id in self._schedules:
                return False
            now = self.clock()
            self._schedules[record.schedule_id] = dataclasses.replace(
                record, version=1, created_at=now, updated_at=now
            )
            return True

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        with self._lock:
            row = self._schedules.get(schedule_id)
            return None if row is None else dataclasses.replace(row)

    async def list_schedules(
        self, *, after: str | None = None, limit: int = 1000
    ) -> list[ScheduleRecord]:
        with self._lock:
            ids = sorted(i for i in self._schedules if after is None or i > after)[:limit]
            return [dataclasses.replace(self._schedules[i]) for i in ids]

    async def update_schedule(self, record: ScheduleRecord, expected_version: int) -> bool:
        with self._lock:
            row = self._schedules.get(record.schedule_id)
            if row is None or row.version != expected_version:
                return False
            self._schedules[record.schedule_id] = dataclasses.replace(
                record,
                workflow_name=row.workflow_name,
                version=expected_version + 1,
                created_at=row.created_at,
                updated_at=self.clock(),
            )
            return True

    async def delete_schedule(self, schedule_id: str) -> bool:
        with self._lock:
            return self._schedules.pop(schedule_id, None) is not None

    async def due_schedules(
        self, queues: Sequence[str], now: float, limit: int
    ) -> list[ScheduleRecord]:
        with self._lock:
            due = [
                row
                for row in self._schedules.values()
                if row.queue in queues and row.next_fire_at is not None and row.next_fire_at <= now
            ]
            due.sort(key=lambda row: (row.next_fire_at, row.schedule_id))
            return [dataclasses.replace(row) for row in due[:limit]]

    async def next_schedule_fire(self, queues: Sequence[str]) -> float | None:
        with self._lock:
            return min(
                (
                    row.next_fire_at
                    for row in self._schedules.values()
                    if row.queue in queues and row.next_fire_at is not None
                ),
                default=None,
            )
