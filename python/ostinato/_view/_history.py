"""A run's history as a readable table: one row per event with its time and a short summary."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import _events
from ._format import format_time, short_json, to_datetime
from ._timeline import failure_text

__all__ = ["HistoryRow", "event_summary", "history_rows"]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One history event: ``time`` is the start of the workflow task it belongs to."""

    seq: int
    time: datetime | None
    kind: str
    summary: str
    event: Mapping[str, Any]


def _cid(e: Mapping[str, Any]) -> str:
    return f"#{e.get('id')}"


def _target(e: Mapping[str, Any]) -> str:
    target = _events.command_target(e)
    return f" -> {target}" if target else ""


def _started(e: Mapping[str, Any]) -> str:
    origin = _events.run_origin(e)
    text = f"{e.get('name')} {short_json(e.get('input'))}"
    if "parent_instance_id" in origin:
        text += f", child of {origin['parent_instance_id']}"
    if "continued_from_run_id" in origin:
        text += f", continued from run {origin['continued_from_run_id']}"
    return text


def _timer(e: Mapping[str, Any]) -> str:
    fire_at = e.get("fire_at")
    when = format_time(fire_at / 1_000_000) if isinstance(fire_at, int) else "?"
    return f"{_cid(e)} fires at {when}"


def _activity_outcome(e: Mapping[str, Any]) -> str:
    if e.get("kind") == "activity_completed":
        outcome = f"-> {short_json(e.get('result'))}"
    else:
        outcome = failure_text(e.get("failure"))
    return f"{_cid(e)} attempt {e.get('attempt')}: {outcome}"


def _external_done(e: Mapping[str, Any]) -> str:
    failure = e.get("failure")
    return f"{_cid(e)} delivered" if failure is None else f"{_cid(e)} {failure_text(failure)}"


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "task_started": lambda e: "workflow task",
    "workflow_started": _started,
    "activity_scheduled": lambda e: f"{_cid(e)} {e.get('name')} {short_json(e.get('input'))}",
    "activity_completed": _activity_outcome,
    "activity_failed": _activity_outcome,
    "activity_cancel_requested": _cid,
    "timer_started": _timer,
    "timer_fired": _cid,
    "timer_canceled": _cid,
    "signal_received": lambda e: f"{e.get('name')} {short_json(e.get('payload'))}",
    "side_effect_recorded": lambda e: f"{_cid(e)} = {short_json(e.get('value'))}",
    "marker_recorded": lambda e: f"{_cid(e)} patched({short_json(e.get('name'))})",
    "child_scheduled": lambda e: (
        f"{_cid(e)} {e.get('name')}{_target(e)} {short_json(e.get('input'))}"
    ),
    "child_completed": lambda e: f"{_cid(e)} -> {short_json(e.get('result'))}",
    "child_failed": lambda e: f"{_cid(e)} {failure_text(e.get('failure'))}",
    "child_cancel_requested": _cid,
    "signal_external_sent": lambda e: (
        f"{_cid(e)} {e.get('name')}{_target(e)} {short_json(e.get('payload'))}"
    ),
    "signal_external_completed": _external_done,
    "external_cancel_requested": lambda e: f"{_cid(e)}{_target(e)} {short_json(e.get('reason'))}",
    "cancel_requested": lambda e: short_json(e.get("reason")),
    "timed_out": lambda e: "execution timeout elapsed",
    "workflow_completed": lambda e: f"-> {short_json(e.get('result'))}",
    "workflow_failed": lambda e: failure_text(e.get("failure")),
    "workflow_canceled": lambda e: "",
    "workflow_continued_as_new": lambda e: f"next run {short_json(e.get('input'))}",
    "workflow_terminated": lambda e: short_json(e.get("reason")),
}


def event_summary(event: Mapping[str, Any]) -> str:
    """A short one-line summary of a history event (its fields, unknown kinds as JSON)."""
    summarize = _SUMMARIES.get(str(event.get("kind")))
    if summarize is None:
        rest = {k: v for k, v in event.items() if k not in ("seq", "kind")}
        return short_json(rest)
    return summarize(event)


def history_rows(history: Sequence[Mapping[str, Any]]) -> list[HistoryRow]:
    """``handle.history()`` as rows, each dated by the workflow task it belongs to."""
    rows = []
    time: datetime | None = None
    for event in history:
        started = _events.task_time(event)
        if started is not None:
            time = to_datetime(started)
        seq = event.get("seq")
        rows.append(
            HistoryRow(
                seq if isinstance(seq, int) else 0,
                time,
                str(event.get("kind")),
                event_summary(event),
                event,
            )
        )
    return rows
