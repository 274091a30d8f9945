"""What a backend stores for schedules: one row per schedule, updated by compare-and-set.

The backend keeps the rows and answers "which schedules are due"; it does not interpret them.
The spec and the state are JSON documents owned by ``ostinato._schedules``. Every write of a
row is a compare-and-set on ``version``, so two workers (or a worker and a client pausing the
schedule) never both apply a change computed from the same row: the loser re-reads.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ScheduleRecord", "ScheduleStore"]


@dataclass
class ScheduleRecord:
    schedule_id: str
    workflow_name: str
    queue: str
    # The encoded workflow arguments, as start_workflow stores them.
    args: bytes
    # JSON: the schedule's spec (cron/every, time zone, policies).
    spec: bytes
    # JSON: the driver's state (last fire, running run, buffered fire, counters, recent runs).
    state: bytes
    paused: bool
    # When a worker should look at the schedule next (nominal fire plus jitter, a retry of
    # actions in flight, or a buffered fire's recheck); None: nothing to do until changed.
    next_fire_at: float | None
    version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ScheduleRecord:
        """A record from a row of the SQL backends' schedule queries (their column order:
        id, workflow, queue, args, spec, state, paused, next fire, version, created, updated)."""
        sid, name, queue, args, spec, state, paused, next_fire_at, version, created, updated = row
        return cls(
            schedule_id=sid,
            workflow_name=name,
            queue=queue,
            args=bytes(args),
            spec=bytes(spec),
            state=bytes(state),
            paused=bool(paused),
            next_fire_at=next_fire_at,
            version=int(version),
            created_at=created,
            updated_at=updated,
        )


class ScheduleStore(abc.ABC):
    """The schedule methods of a backend."""

    @abc.abstractmethod
    async def create_schedule(self, record: ScheduleRecord) -> bool:
        """Store a new schedule at version 1 (``created_at``/``updated_at`` set to now);
        False, storing nothing, when the id is taken."""

    @abc.abstractmethod
    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None: ...

    @abc.abstractmethod
    async def list_schedules(
        self, *, after: str | None = None, limit: int = 1000
    ) -> list[ScheduleRecord]:
        """Schedules ordered by id, those after ``after`` (a cursor) first, at most ``limit``."""

    @abc.abstractmethod
    async def update_schedule(self, record: ScheduleRecord, expected_version: int) -> bool:
        """Write every mutable field of ``record`` (queue, args, spec, state, paused,
        next_fire_at) if the stored version is ``expected_version``, bumping it by one and
        setting ``updated_at``; False, writing nothing, otherwise (or if it was deleted)."""

    @abc.abstractmethod
    async def delete_schedule(self, schedule_id: str) -> bool:
        """Remove a schedule (the runs it started stay); False when there was none."""

    @abc.abstractmethod
    async def due_schedules(
        self, queues: Sequence[str], now: float, limit: int
    ) -> list[ScheduleRecord]:
        """Schedules of ``queues`` whose ``next_fire_at`` is at or before ``now``, earliest
        first, at most ``limit``."""

    @abc.abstractmethod
    async def next_schedule_fire(self, queues: Sequence[str]) -> float | None:
        """The earliest ``next_fire_at`` among schedules of ``queues`` (None: none)."""
