"""Firing schedules: what a worker does with a due schedule (and ``trigger()`` with any).

One pass over a schedule: read its row; if actions are stored from an earlier pass (whose
worker died, or whose second write lost to a client's change), take them again; otherwise
``plan`` the due fires. New actions are stored with the row (compare-and-set on its version)
*before* they are taken, so exactly one worker decides each fire and a crash between deciding
and doing leaves the decision in the row for the next worker. Taking an action twice is
harmless: a start uses the fire's own instance id and refuses to reuse it, a cancel or a
terminate of a closed run is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from .. import _events
from .._backends._schedule_store import ScheduleRecord, ScheduleStore
from .._errors import WorkflowAlreadyStartedError, WorkflowNotFoundError, WorkflowNotRunningError
from ._plan import ACTION_LEASE, Action, ScheduleState, next_wakeup, plan
from ._spec import ScheduleSpec

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["ScheduleDriver", "store_of"]

log = logging.getLogger("ostinato.schedules")

_ATTEMPTS = 8  # compare-and-set rounds before a pass gives up (the next pass goes on)


def store_of(backend: object) -> ScheduleStore:
    """The backend as a schedule store, or a clear error for one that has no schedules."""
    if not isinstance(backend, ScheduleStore):
        raise TypeError(
            f"{type(backend).__name__} does not store schedules: it does not implement "
            "ostinato's schedule methods (see docs/backends.md)"
        )
    return backend


class ScheduleDriver:
    """Fires schedules through ``client``'s backend."""

    def __init__(self, client: Client, *, action_lease: float = ACTION_LEASE) -> None:
        self.client = client
        self.store = store_of(client.backend)
        # How long the actions a pass stored are left to it before another worker takes them.
        self.action_lease = action_lease

    async def fire_due(self, queues: Sequence[str], limit: int = 100) -> int:
        """Take one pass over every schedule of ``queues`` that is due; how many runs started."""
        now = self.client.backend.clock()
        started = 0
        for record in await self.store.due_schedules(queues, now, limit):
            try:
                started += len(await self.run_pass(record.schedule_id, record=record))
            except Exception:
                log.exception("schedule %r: firing failed; trying again later", record.schedule_id)
        return started

    async def run_pass(
        self, schedule_id: str, *, trigger: bool = False, record: ScheduleRecord | None = None
    ) -> list[str]:
        """One pass over a schedule; the instance ids of the runs it started. With
        ``trigger``, one more fire now (``ScheduleHandle.trigger()``). ``record``: the row as
        the caller just read it (the first round starts from it instead of reading again)."""
        started: list[str] = []
        mine: list[Action] | None = None  # the actions this pass stored, if any
        given, record = record, None
        for _ in range(_ATTEMPTS):
            # The caller's row for the first round; every later round reads it afresh.
            record = given or await self.store.get_schedule(schedule_id)
            given = None
            if record is None:
                return started
            state = ScheduleState.from_bytes(record.state)
            spec = ScheduleSpec.from_json(orjson.loads(record.spec))
            now = self.client.backend.clock()
            if state.pending and state.pending != mine:
                # Stored by another pass: still its to take while its lease runs (a trigger
                # takes them at once rather than wait).
                lease_ends = record.next_fire_at
                if not trigger and lease_ends is not None and lease_ends > now:
                    return started
            elif not state.pending:
                running_open = await self._is_open(state.running)
                actions = plan(
                    schedule_id,
                    spec,
                    state,
                    paused=record.paused,
                    now=now,
                    running_open=running_open,
                    trigger=trigger,
                )
                if actions:
                    state.pending = actions
                changed = state.to_bytes() != record.state
                if not changed:
                    wake = self._wakeup(record, spec, state, now)
                    if wake == record.next_fire_at or (
                        wake is not None
                        and record.next_fire_at is not None
                        and record.next_fire_at > now
                    ):
                        return started
                if not await self._write(record, state, spec, now):
                    continue  # another worker or the client changed it: look again
                record.version += 1
                trigger = False
                mine = list(state.pending)
            # Take the stored actions, then clear them.
            for action in state.pending:
                if await self._take(record, action):
                    started.append(action.instance_id)
            state.pending = []
            if await self._write(record, state, spec, now):
                return started
            # Changed meanwhile (paused, updated): the next round takes the actions again
            # (harmless) and clears them on the fresh row.
        return started

    async def run_closed(self, instance_id: str) -> None:
        """A run closed: if a schedule's buffered fire waits for it, fire that now. (Runs a
        schedule starts are named ``"<schedule id>@<fire time>"``.) Failures are logged: the
        buffered fire then starts at the schedule's next fire."""
        schedule_id = instance_id.rpartition("@")[0]
        try:
            record = await self.store.get_schedule(schedule_id)
            if record is None:
                return
            state = ScheduleState.from_bytes(record.state)
            if state.buffered is not None and state.running == instance_id:
                await self.run_pass(schedule_id, record=record)
        except Exception:
            log.exception("schedule %r: starting its buffered fire failed", schedule_id)

    async def _write(
        self, record: ScheduleRecord, state: ScheduleState, spec: ScheduleSpec, now: float
    ) -> bool:
        record.state = state.to_bytes()
        record.next_fire_at = self._wakeup(record, spec, state, now)
        return await self.store.update_schedule(record, record.version)

    def _wakeup(
        self, record: ScheduleRecord, spec: ScheduleSpec, state: ScheduleState, now: float
    ) -> float | None:
        return next_wakeup(
            record.schedule_id,
            spec,
            state,
            paused=record.paused,
            now=now,
            lease=self.action_lease,
        )

    async def _is_open(self, instance_id: str | None) -> bool:
        if instance_id is None:
            return False
        try:
            info = await self.client.backend.describe(instance_id)
        except WorkflowNotFoundError:
            return False  # deleted since
        return info.status.is_open

    async def _take(self, record: ScheduleRecord, action: Action) -> bool:
        """Take one action; whether it started a run."""
        backend = self.client.backend
        where = f"schedule {record.schedule_id!r}"
        try:
            if action.do == "start":
                await self.client._create_run(
                    record.workflow_name,
                    record.args,
                    instance_id=action.instance_id,
                    queue=record.queue,
                    id_reuse_policy="refuse",
                    id_conflict="use_existing",
                )
                log.info("%s started %s (%s)", where, action.instance_id, action.cause)
                return True
            if action.do == "cancel":
                await backend.request_cancel(
                    action.instance_id,
                    _events.cancel_requested(f"cancelled by {where}: overlap='cancel_other'"),
                )
            elif action.do == "terminate":
                await backend.terminate(
                    action.instance_id, f"terminated by {where}: overlap='terminate_other'"
                )
        except WorkflowAlreadyStartedError:
            pass  # this fire's run was started before (by a worker that died, or another)
        except (WorkflowNotRunningError, WorkflowNotFoundError):
            pass  # the run to cancel or terminate closed (or was deleted) meanwhile
        return False
