"""The public face of schedules: ``Client.create_schedule`` and ``ScheduleHandle``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson

from .._backends._schedule_store import ScheduleRecord
from .._checks import check_text
from .._errors import OstinatoError, WorkflowNotFoundError
from .._payloads import prepare_call
from ._driver import ScheduleDriver, store_of
from ._plan import ScheduleState, next_wakeup
from ._spec import ScheduleSpec, span

if TYPE_CHECKING:
    from .._client import Client, WorkflowHandle

__all__ = [
    "ScheduleAlreadyExistsError",
    "ScheduleDescription",
    "ScheduleHandle",
    "ScheduleNotFoundError",
    "ScheduledRun",
    "create_schedule",
    "get_schedule",
    "list_schedules",
]

_UPDATE_ATTEMPTS = 20


class ScheduleNotFoundError(OstinatoError, LookupError):
    """No schedule has this id."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule with id {schedule_id!r}")
        self.schedule_id = schedule_id


class ScheduleAlreadyExistsError(OstinatoError):
    """``create_schedule`` with an id that is taken."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"a schedule with id {schedule_id!r} already exists (update or delete it)")
        self.schedule_id = schedule_id


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass(frozen=True)
class ScheduledRun:
    """A run a schedule started, as ``describe()`` lists it."""

    instance_id: str
    fire_time: datetime
    cause: str  # "schedule", "catchup", "buffered" or "trigger"
    status: str  # the run's status now ("deleted" if it no longer exists)


@dataclass(frozen=True)
class ScheduleDescription:
    """What ``ScheduleHandle.describe()`` and ``Client.list_schedules()`` report."""

    schedule_id: str
    workflow_name: str
    queue: str
    cron: str | None
    every: timedelta | None
    timezone: str
    overlap: str
    catchup_window: timedelta
    jitter: timedelta | None
    paused: bool
    pause_reason: str | None
    created_at: datetime
    updated_at: datetime
    #: The next nominal fire times (five at most; none while paused).
    next_fires: list[datetime] = field(default_factory=list)
    #: Runs started, newest last (the ten most recent), with their status now.
    recent_runs: list[ScheduledRun] = field(default_factory=list)
    runs_started: int = 0
    #: Fires skipped because no worker got to them within ``catchup_window``.
    missed_fires: int = 0
    #: Fires skipped by the overlap policy (the previous run was still open).
    skipped_fires: int = 0
    #: A fire waiting for the previous run to close (``buffer_one``, ``cancel_other``).
    buffered_fire: datetime | None = None

    @property
    def spec(self) -> str:
        """The schedule in words: ``cron '0 2 * * *' in Europe/Paris`` or ``every 5 min``."""
        if self.every is not None:
            return f"every {span(self.every.total_seconds())}"
        return f"cron {self.cron!r} in {self.timezone}"


async def _describe(client: Client, record: ScheduleRecord, *, runs: bool) -> ScheduleDescription:
    spec = ScheduleSpec.from_json(orjson.loads(record.spec))
    state = ScheduleState.from_bytes(record.state)
    next_fires = (
        [] if record.paused else [_dt(f) for f in itertools.islice(spec.fires(state.last_fire), 5)]
    )
    recent: list[ScheduledRun] = []
    if runs:
        for fire, instance_id, cause in state.recent:
            try:
                status = (await client.backend.describe(instance_id)).status.value
            except WorkflowNotFoundError:
                status = "deleted"
            fired = _dt(fire)
            assert fired is not None
            recent.append(ScheduledRun(instance_id, fired, cause, status))
    created, updated = _dt(record.created_at), _dt(record.updated_at)
    assert created is not None and updated is not None
    return ScheduleDescription(
        schedule_id=record.schedule_id,
        workflow_name=record.workflow_name,
        queue=record.queue,
        cron=spec.cron,
        every=None if spec.every is None else timedelta(seconds=spec.every),
        timezone=spec.timezone,
        overlap=spec.overlap,
        catchup_window=timedelta(seconds=spec.catchup_window),
        jitter=timedelta(seconds=spec.jitter) if spec.jitter else None,
        paused=record.paused,
        pause_reason=state.pause_reason,
        created_at=created,
        updated_at=updated,
        next_fires=[f for f in next_fires if f is not None],
        recent_runs=recent,
        runs_started=state.started,
        missed_fires=state.missed,
        skipped_fires=state.skipped,
        buffered_fire=_dt(state.buffered),
    )


class ScheduleHandle:
    """A handle on one schedule (from ``create_schedule`` or ``get_schedule``)."""

    def __init__(self, client: Client, schedule_id: str) -> None:
        self.client = client
        self.id = schedule_id

    def __repr__(self) -> str:
        return f"ScheduleHandle({self.id!r})"

    async def _record(self) -> ScheduleRecord:
        await self.client.backend.open()
        record = await store_of(self.client.backend).get_schedule(self.id)
        if record is None:
            raise ScheduleNotFoundError(self.id)
        return record

    async def describe(self) -> ScheduleDescription:
        """The spec, the next fire times, whether and why it is paused, the runs it
        started recently with their status, and how many fires were missed or skipped."""
        return await _describe(self.client, await self._record(), runs=True)

    async def pause(self, reason: str | None = None) -> None:
        """Stop firing until ``unpause()``; fires due meanwhile are dropped, not caught up.
        Runs already started go on."""
        if reason is not None:
            check_text(reason, "reason", empty=True)
        await self._change(paused=True, reason=reason)

    async def unpause(self) -> None:
        """Fire again from now on."""
        await self._change(paused=False)

    async def update(
        self,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str | None = None,
        overlap: str | None = None,
        catchup_window: timedelta | float | None = None,
        jitter: timedelta | float | None = None,
        args: Sequence[Any] | None = None,
        queue: str | None = None,
        paused: bool | None = None,
    ) -> None:
        """Change the schedule; arguments left as None keep their value. ``cron`` and
        ``every`` replace each other. A new spec fires from now on (nothing is caught up
        under it). ``args`` replaces the workflow's arguments for later fires."""
        changes = {
            "cron": cron,
            "every": every,
            "timezone": timezone,
            "overlap": overlap,
            "catchup_window": catchup_window,
            "jitter": jitter,
        }
        if args is not None and (isinstance(args, (str, bytes)) or not isinstance(args, Sequence)):
            raise TypeError(f"args must be a list or tuple of arguments, not {args!r:.80}")
        if queue is not None:
            check_text(queue, "queue")
        if paused is not None and not isinstance(paused, bool):
            raise TypeError(f"paused must be True or False, not {paused!r:.80}")
        await self._change(changes=changes, args=args, queue=queue, paused=paused)

    async def _change(
        self,
        *,
        paused: bool | None = None,
        reason: str | None = None,
        changes: dict[str, Any] | None = None,
        args: Sequence[Any] | None = None,
        queue: str | None = None,
    ) -> None:
        for _ in range(_UPDATE_ATTEMPTS):
            record = await self._record()
            spec = ScheduleSpec.from_json(orjson.loads(record.spec))
            state = ScheduleState.from_bytes(record.state)
            now = self.client.backend.clock()
            new_spec = spec.replace(**changes) if changes else spec
            if new_spec != spec:
                state.last_fire = max(state.last_fire, now)
                record.spec = orjson.dumps(new_spec.to_json())
            if args is not None:
                call = prepare_call(
                    self.client.converter, record.workflow_name, tuple(args), kind="workflow"
                )
                assert call.payload is not None
                record.args = call.payload
            if queue is not None:
                record.queue = queue
            if paused is True:
                record.paused = True
                state.pause_reason = reason
            elif paused is False and record.paused:
                record.paused = False
                state.pause_reason = None
                state.last_fire = max(state.last_fire, now)
            record.state = state.to_bytes()
            if not state.pending:  # else the lease of the pass taking them stands
                record.next_fire_at = next_wakeup(
                    self.id, new_spec, state, paused=record.paused, now=now
                )
            if await store_of(self.client.backend).update_schedule(record, record.version):
                return
        raise OstinatoError(f"schedule {self.id!r} kept changing under this update; try again")

    async def trigger(self) -> WorkflowHandle[Any] | None:
        """Fire now, under the overlap policy (even while paused); the handle of the run it
        started, or None when the policy skipped or buffered it."""
        record = await self._record()
        started = await ScheduleDriver(self.client).run_pass(self.id, trigger=True, record=record)
        return self.client.get_handle(started[-1]) if started else None

    async def delete(self) -> None:
        """Delete the schedule; the runs it started are kept."""
        await self.client.backend.open()
        if not await store_of(self.client.backend).delete_schedule(self.id):
            raise ScheduleNotFoundError(self.id)


async def create_schedule(
    client: Client,
    schedule_id: str,
    workflow: Any,
    args: tuple[Any, ...],
    *,
    cron: str | None,
    every: timedelta | float | None,
    timezone: str,
    overlap: str,
    catchup_window: timedelta | float,
    jitter: timedelta | float | None,
    paused: bool,
    queue: str | None,
) -> ScheduleHandle:
    check_text(schedule_id, "schedule_id")
    if "@" in schedule_id:
        raise ValueError(
            f"schedule_id must not contain '@' (it separates the schedule id from the fire "
            f"time in the ids of the runs it starts): {schedule_id!r:.80}"
        )
    if queue is not None:
        check_text(queue, "queue")
    if not isinstance(paused, bool):
        raise TypeError(f"paused must be True or False, not {paused!r:.80}")
    spec = ScheduleSpec.build(
        cron=cron,
        every=every,
        timezone=timezone,
        overlap=overlap,
        catchup_window=catchup_window,
        jitter=jitter,
    )
    call = prepare_call(
        client.converter,
        workflow,
        args,
        kind="workflow",
        check_name=lambda name: check_text(name, "workflow name"),
    )
    assert call.payload is not None
    await client.backend.open()
    store = store_of(client.backend)
    now = client.backend.clock()
    state = ScheduleState(last_fire=now)
    record = ScheduleRecord(
        schedule_id=schedule_id,
        workflow_name=call.name,
        queue=queue or "default",
        args=call.payload,
        spec=orjson.dumps(spec.to_json()),
        state=state.to_bytes(),
        paused=paused,
        next_fire_at=next_wakeup(schedule_id, spec, state, paused=paused, now=now),
    )
    if not await store.create_schedule(record):
        raise ScheduleAlreadyExistsError(schedule_id)
    return ScheduleHandle(client, schedule_id)


async def get_schedule(client: Client, schedule_id: str) -> ScheduleHandle:
    check_text(schedule_id, "schedule_id")
    handle = ScheduleHandle(client, schedule_id)
    await handle._record()  # unknown ids fail here, not at the first use
    return handle


async def list_schedules(client: Client) -> list[ScheduleDescription]:
    await client.backend.open()
    store = store_of(client.backend)
    out: list[ScheduleDescription] = []
    after: str | None = None
    while True:
        page = await store.list_schedules(after=after, limit=500)
        out.extend([await _describe(client, r, runs=False) for r in page])
        if len(page) < 500:
            return out
        after = page[-1].schedule_id
