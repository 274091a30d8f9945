"""A run's timeline: its history folded into one item per activity, timer, signal, child ...

History records *when* only once per workflow task (``task_started.time``; a timer's
``fire_at`` too), so every time here is the start of the workflow task in which the workflow
issued a command or saw an outcome: an activity's end is when its workflow saw the result, a
few milliseconds after the activity returned. History keeps the number of the attempt that
finished an activity, not the earlier attempts: those are listed without times or failures
(``describe()`` adds the last failure of an activity still retrying).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from .. import _events
from .._failure import failure_message
from ._format import format_duration, format_time, short_json, to_datetime

if TYPE_CHECKING:
    from .._client import PendingActivity, WorkflowDescription

__all__ = ["ITEM_KINDS", "Attempt", "RunTimeline", "TimelineItem", "build_timeline", "failure_text"]

#: The ``kind`` of a timeline item.
ITEM_KINDS = (
    "activity",
    "timer",
    "signal",
    "child",
    "side_effect",
    "patch",
    "signal_external",
    "cancel_external",
    "cancel_request",
    "timeout",
    "continue_as_new",
    "terminate",
)

_CLOSING = {
    "workflow_completed": "completed",
    "workflow_failed": "failed",
    "workflow_canceled": "canceled",
    "workflow_continued_as_new": "continued_as_new",
    "workflow_terminated": "terminated",
}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of an activity. ``end`` and ``failure`` are None where history does not
    record them (attempts before the last)."""

    number: int
    status: str
    end: datetime | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One thing that happened in a run, from ``start`` to ``end`` (equal for instants such as
    a signal; ``end`` None while it is still open)."""

    kind: str
    name: str
    status: str
    start: datetime | None
    end: datetime | None
    first_seq: int
    last_seq: int
    command_id: int | None = None
    detail: str = ""
    failure: str | None = None
    target: str | None = None
    attempts: tuple[Attempt, ...] = ()
    next_attempt_at: datetime | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, None while open."""
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    @property
    def is_open(self) -> bool:
        return self.end is None


@dataclass(frozen=True, slots=True)
class RunTimeline:
    """A run as a sequence of items, with what the run itself was given and gave back."""

    instance_id: str
    run_id: str
    workflow_name: str
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    input: Any = None
    result: Any = None
    failure: str | None = None
    blocked_reason: str | None = None
    parent_instance_id: str | None = None
    continued_from_run_id: str | None = None
    next_run_id: str | None = None
    items: tuple[TimelineItem, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.closed_at is None:
            return None
        return (self.closed_at - self.started_at).total_seconds()

    def of_kind(self, kind: str) -> list[TimelineItem]:
        return [item for item in self.items if item.kind == kind]


def failure_text(failure: Any) -> str:
    """A failure payload of a history event as one line (``"ValueError: bad card"``)."""
    return failure_message(orjson.dumps(failure, default=repr))


class _Builder:
    def __init__(self) -> None:
        self.items: list[TimelineItem] = []
        self.by_command: dict[int, int] = {}  # command id -> index in items
        self.time: datetime | None = None
        self.seq = 0

    def add(self, kind: str, name: str, status: str, *, instant: bool = False, **kw: Any) -> None:
        item = TimelineItem(
            kind,
            name,
            status,
            self.time,
            self.time if instant else None,
            self.seq,
            self.seq,
            **kw,
        )
        if item.command_id is not None:
            self.by_command[item.command_id] = len(self.items)
        self.items.append(item)

    def command(self, event: Mapping[str, Any]) -> TimelineItem | None:
        index = self.by_command.get(_int(event.get("id")))
        return None if index is None else self.items[index]

    def close(self, event: Mapping[str, Any], status: str, **changes: Any) -> None:
        """End the item of the event's command id as ``status``."""
        index = self.by_command.get(_int(event.get("id")))
        if index is not None:
            self.update(index, status=status, end=self.time, **changes)

    def update(self, index: int, **changes: Any) -> None:
        changes.setdefault("last_seq", self.seq)
        self.items[index] = dataclasses.replace(self.items[index], **changes)


def _int(value: object) -> int:
    return value if isinstance(value, int) else -1


def _attempts(
    last: int, status: str, end: datetime | None, failure: str | None
) -> tuple[Attempt, ...]:
    earlier = tuple(Attempt(n, "failed") for n in range(1, last))
    return (*earlier, Attempt(max(last, 1), status, end, failure))


def build_timeline(
    history: Sequence[Mapping[str, Any]],
    description: WorkflowDescription | None = None,
    vars: Mapping[str, Any] | None = None,
) -> RunTimeline:
    """Fold ``handle.history()`` (and, when given, ``handle.describe()`` of the same run and
    ``client.get_vars()``) into a ``RunTimeline``."""
    b = _Builder()
    run: dict[str, Any] = {"status": "running", "closed_at": None}
    for event in history:
        kind = event.get("kind")
        b.seq = _int(event.get("seq"))
        cid = event.get("id") if isinstance(event.get("id"), int) else None
        if kind == "task_started":
            b.time = to_datetime(_events.task_time(event))
            run.setdefault("started_at", b.time)
        elif kind == "workflow_started":
            run.update(
                name=event.get("name"), input=event.get("input"), **_events.run_origin(event)
            )
            run.setdefault("run_id", (event.get("info") or {}).get("run_id"))
            run.setdefault("instance_id", (event.get("info") or {}).get("instance_id"))
        elif kind == "activity_scheduled":
            queue = (event.get("options") or {}).get("queue")
            detail = f"input {short_json(event.get('input'), 40)}" + (
                f", queue {queue}" if queue else ""
            )
            b.add("activity", str(event.get("name")), "scheduled", command_id=cid, detail=detail)
        elif kind in ("activity_completed", "activity_failed"):
            attempt = _int(event.get("attempt"))
            if kind == "activity_completed":
                status, failure = "completed", None
                detail = f"result {short_json(event.get('result'), 40)}"
            else:
                failure = failure_text(event.get("failure"))
                failure_type = (event.get("failure") or {}).get("type")
                status = (
                    "canceled"
                    if failure_type in ("CancelledError", "ActivityCancelledError")
                    else "failed"
                )
                detail = failure
            b.close(
                event,
                status,
                failure=failure,
                detail=detail,
                attempts=_attempts(attempt, status, b.time, failure),
            )
        elif kind in ("activity_cancel_requested", "child_cancel_requested"):
            item = b.command(event)
            if item is not None and item.is_open:
                b.update(b.by_command[item.command_id or 0], status="cancel_requested")
        elif kind == "timer_started":
            fire_at = to_datetime(_int(event.get("fire_at")) / 1_000_000)
            delay = (fire_at - b.time).total_seconds() if fire_at and b.time else None
            b.add(
                "timer",
                f"sleep {format_duration(delay)}",
                "waiting",
                command_id=cid,
                detail=f"fires at {format_time(fire_at)}",
            )
        elif kind == "timer_fired":
            b.close(event, "fired")
        elif kind == "timer_canceled":
            b.close(event, "canceled")
        elif kind == "signal_received":
            payload = short_json(event.get("payload"), 40)
            b.add("signal", str(event.get("name")), "received", instant=True, detail=payload)
        elif kind == "side_effect_recorded":
            value = short_json(event.get("value"), 40)
            b.add(
                "side_effect", "side effect", "recorded", instant=True, command_id=cid, detail=value
            )
        elif kind == "marker_recorded":
            b.add("patch", str(event.get("name")), "recorded", instant=True, command_id=cid)
        elif kind == "child_scheduled":
            target = _events.command_target(event)
            b.add("child", str(event.get("name")), "running", command_id=cid, target=target)
        elif kind == "child_completed":
            b.close(event, "completed", detail=f"result {short_json(event.get('result'), 40)}")
        elif kind == "child_failed":
            failure = failure_text(event.get("failure"))
            b.close(event, "failed", failure=failure, detail=failure)
        elif kind == "signal_external_sent":
            target = _events.command_target(event)
            detail = short_json(event.get("payload"), 40)
            b.add(
                "signal_external",
                str(event.get("name")),
                "scheduled",
                command_id=cid,
                target=target,
                detail=detail,
            )
        elif kind == "external_cancel_requested":
            target = _events.command_target(event)
            reason = str(event.get("reason") or "")
            b.add(
                "cancel_external",
                "cancel",
                "scheduled",
                command_id=cid,
                target=target,
                detail=reason,
            )
        elif kind == "signal_external_completed":
            failure = event.get("failure")
            if failure is None:
                b.close(event, "sent")
            else:
                b.close(
                    event, "failed", failure=failure_text(failure), detail=failure_text(failure)
                )
        elif kind == "cancel_requested":
            reason = str(event.get("reason") or "")
            b.add("cancel_request", "cancel requested", "received", instant=True, detail=reason)
        elif kind == "timed_out":
            b.add("timeout", "execution timeout", "timed_out", instant=True)
        elif kind in _CLOSING:
            run["status"] = _CLOSING[kind]
            run["closed_at"] = b.time
            if kind == "workflow_completed":
                run["result"] = event.get("result")
            elif kind == "workflow_failed":
                run["failure"] = failure_text(event.get("failure"))
            elif kind == "workflow_continued_as_new":
                detail = f"input {short_json(event.get('input'), 40)}"
                b.add(
                    "continue_as_new", "continue as new", "completed", instant=True, detail=detail
                )
            elif kind == "workflow_terminated":
                reason = str(event.get("reason") or "")
                run["failure"] = f"terminated: {reason}"
                b.add("terminate", "terminated", "terminated", instant=True, detail=reason)
    if description is not None:
        _merge_pending(b, description.pending_activities)
    return _finish(run, b.items, description, vars)


def _merge_pending(b: _Builder, pending: Sequence[PendingActivity]) -> None:
    """Attempt numbers and the last failure of activities still open, from ``describe()``."""
    for activity in pending:
        index = b.by_command.get(activity.activity_id)
        if index is None or not b.items[index].is_open:
            continue
        last = activity.attempt
        if activity.state == "running":
            earlier = _attempts(last - 1, "failed", None, activity.last_failure) if last > 1 else ()
            attempts = (*earlier, Attempt(max(last, 1), "running"))
        elif activity.state == "retrying":
            attempts = _attempts(last, "failed", None, activity.last_failure)
        else:
            attempts = ()
        status = "cancel_requested" if activity.cancel_requested else activity.state
        b.items[index] = dataclasses.replace(
            b.items[index],
            status=status,
            attempts=attempts,
            failure=activity.last_failure,
            next_attempt_at=activity.next_attempt_at,
        )


def _finish(
    run: dict[str, Any],
    items: list[TimelineItem],
    description: WorkflowDescription | None,
    vars: Mapping[str, Any] | None,
) -> RunTimeline:
    status = str(run["status"])
    closed_at: datetime | None = run["closed_at"]
    started_at: datetime | None = run.get("started_at")
    blocked = None
    failure = run.get("failure")
    next_run_id = None
    if description is not None:
        status = description.status
        closed_at = description.closed_at or closed_at
        started_at = started_at or description.created_at
        blocked = description.blocked_reason
        failure = description.failure or failure
        next_run_id = description.next_run_id
        if blocked and status == "running":
            status = "blocked"
    return RunTimeline(
        instance_id=str(description.instance_id if description else run.get("instance_id") or ""),
        run_id=str(description.run_id if description else run.get("run_id") or ""),
        workflow_name=str(description.workflow_name if description else run.get("name") or ""),
        status=status,
        started_at=started_at,
        closed_at=closed_at,
        input=run.get("input"),
        result=run.get("result"),
        failure=failure,
        blocked_reason=blocked,
        parent_instance_id=run.get("parent_instance_id")
        or (description.parent_instance_id if description else None),
        continued_from_run_id=run.get("continued_from_run_id"),
        next_run_id=next_run_id,
        items=tuple(items),
        vars=dict(vars or {}),
    )
