"""A schedule's state and the pure decision of what its due fires do.

``plan`` takes the state, the spec and what the backend says about the last run started, and
returns the actions to take (start a run, cancel or terminate the previous one) with the new
state. It does no I/O, so every overlap and catch-up rule is tested without a backend. The
driver (``_driver``) stores the actions before taking them and takes them again after a
crash: each is idempotent (a start names its run after the fire, see ``fire_instance_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ._spec import ScheduleSpec, fire_instance_id

__all__ = ["Action", "ScheduleState", "plan", "next_wakeup"]

#: How many started runs ``describe()`` remembers.
RECENT = 10
#: Fires looked at in one pass; a schedule further behind is looked at again at once.
MAX_FIRES_PER_PASS = 10_000
#: Seconds the worker that stored actions has to take them before another worker does (a
#: worker uses its ``workflow_lease``).
ACTION_LEASE = 30.0


@dataclass
class Action:
    do: str  # "start" | "cancel" | "terminate"
    instance_id: str
    fire: float = 0.0
    cause: str = ""  # why a start: "schedule", "catchup", "buffered", "trigger"

    def to_json(self) -> dict[str, Any]:
        return {"do": self.do, "id": self.instance_id, "fire": self.fire, "cause": self.cause}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        return cls(data["do"], data["id"], float(data.get("fire", 0.0)), data.get("cause", ""))


@dataclass
class ScheduleState:
    # The nominal time of the last fire looked at (the creation or unpause time at first).
    last_fire: float
    running: str | None = None  # instance id of the last run started
    buffered: float | None = None  # a fire waiting for the previous run to close
    pause_reason: str | None = None
    missed: int = 0  # fires later than catchup_window when a worker got to them
    skipped: int = 0  # fires dropped by the overlap policy
    started: int = 0
    recent: list[tuple[float, str, str]] = field(default_factory=list)  # fire, id, cause
    pending: list[Action] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "last_fire": self.last_fire,
                "running": self.running,
                "buffered": self.buffered,
                "pause_reason": self.pause_reason,
                "missed": self.missed,
                "skipped": self.skipped,
                "started": self.started,
                "recent": [list(r) for r in self.recent],
                "pending": [a.to_json() for a in self.pending],
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> ScheduleState:
        data = orjson.loads(raw)
        return cls(
            last_fire=float(data["last_fire"]),
            running=data.get("running"),
            buffered=data.get("buffered"),
            pause_reason=data.get("pause_reason"),
            missed=int(data.get("missed", 0)),
            skipped=int(data.get("skipped", 0)),
            started=int(data.get("started", 0)),
            recent=[(float(f), str(i), str(c)) for f, i, c in data.get("recent", [])],
            pending=[Action.from_json(a) for a in data.get("pending", [])],
        )

    def _start(self, schedule_id: str, fire: float, cause: str) -> Action:
        instance_id = fire_instance_id(schedule_id, fire)
        self.running = instance_id
        self.started += 1
        self.recent = [*self.recent, (fire, instance_id, cause)][-RECENT:]
        return Action("start", instance_id, fire, cause)


def plan(
    schedule_id: str,
    spec: ScheduleSpec,
    state: ScheduleState,
    *,
    paused: bool,
    now: float,
    running_open: bool,
    trigger: bool = False,
) -> list[Action]:
    """Decide what the fires due at ``now`` do, updating ``state`` in place.

    ``running_open``: whether ``state.running`` is still open. ``trigger``: one more fire at
    ``now``, asked for by ``ScheduleHandle.trigger()`` (it runs even while paused).
    """
    actions: list[Action] = []
    if state.buffered is not None and not running_open and not paused:
        actions.append(state._start(schedule_id, state.buffered, "buffered"))
        state.buffered = None
        running_open = True
    fires: list[tuple[float, str]] = []
    if not paused:
        for n, fire in enumerate(spec.fires(state.last_fire)):
            if n >= MAX_FIRES_PER_PASS or fire + spec.jitter_offset(schedule_id, fire) > now:
                break
            state.last_fire = fire
            late = now - fire - spec.jitter_offset(schedule_id, fire)
            if late > spec.catchup_window:
                state.missed += 1
                continue
            fires.append((fire, "schedule" if late <= 1.0 else "catchup"))
    if trigger:
        fires.append((now, "trigger"))
    for fire, cause in fires:
        if not running_open or spec.overlap == "allow_all":
            actions.append(state._start(schedule_id, fire, cause))
            running_open = True
        elif spec.overlap == "skip":
            state.skipped += 1
        elif spec.overlap == "buffer_one":
            if state.buffered is None:
                state.buffered = fire
            else:
                state.skipped += 1
        elif spec.overlap == "cancel_other":
            assert state.running is not None
            if state.buffered is None:
                actions.append(Action("cancel", state.running))
            else:
                state.skipped += 1  # the newer fire replaces the one already waiting
            state.buffered = fire
        else:  # terminate_other
            assert spec.overlap == "terminate_other" and state.running is not None
            actions.append(Action("terminate", state.running))
            actions.append(state._start(schedule_id, fire, cause))
    return actions


def next_wakeup(
    schedule_id: str,
    spec: ScheduleSpec,
    state: ScheduleState,
    *,
    paused: bool,
    now: float,
    lease: float = ACTION_LEASE,
) -> float | None:
    """When a worker should look at the schedule next (its ``next_fire_at``): ``lease``
    seconds from now while stored actions are being taken."""
    if state.pending:
        return now + lease
    times: list[float] = []
    if paused:
        return None
    fire = spec.next_fire(state.last_fire)
    if fire is not None:
        times.append(fire + spec.jitter_offset(schedule_id, fire))
    return min(times, default=None)
