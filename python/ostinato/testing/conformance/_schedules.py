"""Conformance tests of schedule rows (``ScheduleStore``): create, read, list, compare-and-set
update, delete, and the due-schedule queries workers poll."""

from __future__ import annotations

import dataclasses

import pytest

from ..._backends._schedule_store import ScheduleRecord, ScheduleStore
from ._support import T0, BackendFactory, FakeClock, opened

__all__ = ["ScheduleTests"]


def record(
    schedule_id: str = "s", queue: str = "default", next_fire_at: float | None = T0 + 60
) -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id=schedule_id,
        workflow_name="wf",
        queue=queue,
        args=b'["a"]',
        spec=b'{"every": 60}',
        state=b'{"last_fire": 0}',
        paused=False,
        next_fire_at=next_fire_at,
    )


class ScheduleTests:
    """Schedule rows: what ``ostinato._schedules`` needs of a backend."""

    async def test_schedules_create_get_list_delete(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            assert isinstance(backend, ScheduleStore)
            assert await backend.create_schedule(record("b"))
            assert await backend.create_schedule(record("a"))
            assert not await backend.create_schedule(record("a", queue="other"))  # id taken
            got = await backend.get_schedule("a")
            assert got == dataclasses.replace(record("a"), version=1, created_at=T0, updated_at=T0)
            assert await backend.get_schedule("missing") is None
            assert [r.schedule_id for r in await backend.list_schedules()] == ["a", "b"]
            assert [r.schedule_id for r in await backend.list_schedules(after="a")] == ["b"]
            assert [r.schedule_id for r in await backend.list_schedules(limit=1)] == ["a"]
            assert await backend.delete_schedule("a")
            assert not await backend.delete_schedule("a")
            assert [r.schedule_id for r in await backend.list_schedules()] == ["b"]

    async def test_schedules_update_is_a_compare_and_set_on_the_version(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            assert isinstance(backend, ScheduleStore)
            await backend.create_schedule(record())
            clock.advance(5)
            changed = dataclasses.replace(
                record(), state=b'{"last_fire": 1}', paused=True, next_fire_at=None, queue="q2"
            )
            assert await backend.update_schedule(changed, 1)
            assert not await backend.update_schedule(changed, 1)  # lost: the version moved on
            got = await backend.get_schedule("s")
            assert got is not None
            assert (got.version, got.state, got.paused, got.next_fire_at, got.queue) == (
                2,
                b'{"last_fire": 1}',
                True,
                None,
                "q2",
            )
            assert (got.created_at, got.updated_at) == (T0, T0 + 5)
            assert not await backend.update_schedule(
                dataclasses.replace(changed, schedule_id="x"), 0
            )

    async def test_schedules_due_schedules_by_queue_and_time(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as backend:
            assert isinstance(backend, ScheduleStore)
            await backend.create_schedule(record("late", next_fire_at=T0 + 30))
            await backend.create_schedule(record("early", next_fire_at=T0 + 10))
            await backend.create_schedule(record("other", queue="q2", next_fire_at=T0 + 5))
            await backend.create_schedule(record("paused", next_fire_at=None))
            await backend.create_schedule(record("future", next_fire_at=T0 + 3600))
            due = await backend.due_schedules(["default"], T0 + 30, 10)
            assert [r.schedule_id for r in due] == ["early", "late"]
            assert [
                r.schedule_id for r in await backend.due_schedules(["default"], T0 + 30, 1)
            ] == ["early"]
            assert [
                r.schedule_id for r in await backend.due_schedules(["q2", "x"], T0 + 30, 10)
            ] == ["other"]
            assert await backend.next_schedule_fire(["default"]) == T0 + 10
            assert await backend.next_schedule_fire(["q2"]) == T0 + 5
            assert await backend.next_schedule_fire(["none"]) is None

    @pytest.mark.parametrize("payload", [b"", b"\x00\xff binary"])
    async def test_schedules_payload_bytes_round_trip(
        self, make_backend: BackendFactory, clock: FakeClock, payload: bytes
    ) -> None:
        async with opened(make_backend, clock) as backend:
            assert isinstance(backend, ScheduleStore)
            await backend.create_schedule(
                dataclasses.replace(record(), args=payload, state=payload)
            )
            got = await backend.get_schedule("s")
            assert got is not None and (got.args, got.state) == (payload, payload)
