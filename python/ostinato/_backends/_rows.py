"""Reading what a SQL backend stored: a run row into ``RunInfo`` (tolerating rows no version
of ostinato wrote), and a history checked against its run row's length."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from .._errors import HistoryCorruptError
from ._backend_events import started_of_mark
from ._types import ClosedRun, InboxEvent, ParentRef, RunInfo, RunStatus

__all__ = ["check_history_length", "closed_run", "inboxes_by_run", "run_info", "tags_json"]

RunKey = tuple[str, str]  # (instance_id, run_id)


def inboxes_by_run(
    rows: Sequence[Sequence[Any]],
) -> tuple[dict[RunKey, list[InboxEvent]], dict[RunKey, float]]:
    """Visible inbox rows (instance_id, run_id, id, event, visible_at), in id order, as each
    run's inbox and the time its first event became visible (its task's ready time)."""
    inboxes: dict[RunKey, list[InboxEvent]] = {}
    first_visible: dict[RunKey, float] = {}
    for instance_id, run_id, event_id, event, visible_at in rows:
        key = (instance_id, run_id)
        inboxes.setdefault(key, []).append(InboxEvent(event_id, bytes(event)))
        first_visible[key] = min(first_visible.get(key, visible_at), visible_at)
    return inboxes, first_visible


def closed_run(row: Sequence[Any]) -> ClosedRun:
    """A ``ClosedRun`` from (instance_id, run_id, workflow_name, queue, status, closed_at,
    result, marked workflow_started event)."""
    return ClosedRun(
        instance_id=row[0],
        run_id=row[1],
        workflow_name=row[2],
        queue=row[3],
        status=RunStatus(row[4]),
        closed_at=float(row[5]),
        result=None if row[6] is None else bytes(row[6]),
        started_event=started_of_mark(bytes(row[7])),
    )


def run_info(row: tuple[Any, ...] | Sequence[Any]) -> RunInfo:
    """A ``RunInfo`` from the stored columns (instance_id, run_id, workflow_name, queue,
    status, created_at, updated_at, closed_at, history_length, result, blocked_reason,
    parent_instance_id, parent_run_id, parent_command_id, next_run_id, tags, paused_at,
    pause_reason, priority).

    A row no version of ostinato wrote (tampered with, or from a newer version) does not make
    listing fail: a status this version does not know, or a field of the wrong type, shows
    the run as open and blocked, with the reason.
    """
    (
        instance_id, run_id, workflow_name, queue, status, created_at, updated_at, closed_at,
        history_length, result, blocked_reason, parent_instance_id, parent_run_id,
        parent_command_id, next_run_id, stored_tags, paused_at, pause_reason,
    ) = row[:18]  # fmt: skip
    stored_priority = row[18]
    problems = []
    try:
        run_status = RunStatus(status)
    except ValueError:
        run_status = RunStatus.RUNNING
        problems.append(f"status {status!r:.40} is not one this version of ostinato knows")

    def number(name: str, value: Any, kind: type, default: Any) -> Any:
        if value is None and default is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return kind(value)
        problems.append(f"{name} is {value!r:.40}, not a number")
        return default

    created = number("created_at", created_at, float, 0.0)
    updated = number("updated_at", updated_at, float, created)
    closed = number("closed_at", closed_at, float, None)
    length = number("history_length", history_length, int, 0)
    paused = number("paused_at", paused_at, float, None)
    priority = number("priority", stored_priority, int, 0)
    tags = _tags(stored_tags, problems)
    parent = None
    if parent_instance_id is not None:
        parent = ParentRef(parent_instance_id, parent_run_id, parent_command_id)
    reason = blocked_reason
    if problems:
        reason = (
            f"the store's row for this run is corrupt: {'; '.join(problems)}. "
            "It is shown as open and blocked; repair or remove the row"
        )
    return RunInfo(
        instance_id=str(instance_id),
        run_id=str(run_id),
        workflow_name=str(workflow_name),
        queue=str(queue),
        status=run_status,
        created_at=created,
        updated_at=updated,
        closed_at=closed,
        history_length=length,
        result=None if result is None else bytes(result),
        blocked_reason=reason,
        parent=parent,
        next_run_id=next_run_id,
        tags=tags,
        paused_at=paused,
        pause_reason=None if pause_reason is None else str(pause_reason),
        priority=priority,
    )


def tags_json(tags: Mapping[str, str]) -> str:
    """How the SQL backends store a run's tags: a JSON object, keys sorted."""
    return orjson.dumps(dict(tags), option=orjson.OPT_SORT_KEYS).decode()


def _tags(stored: Any, problems: list[str]) -> dict[str, str]:
    """The tags read back: SQLite gives the JSON text, PostgreSQL the decoded jsonb."""
    value = stored
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            value = None
    if value is None and stored is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        problems.append(f"tags are {stored!r:.40}, not a JSON object of strings")
        return {}
    return value


def check_history_length(
    instance_id: str, run_id: str, history_length: int, events: list[bytes]
) -> list[bytes]:
    """``events`` if there are as many as the run row says, else ``HistoryCorruptError``."""
    if len(events) != history_length:
        raise HistoryCorruptError(
            f"history of workflow {instance_id!r} (run {run_id}) is corrupt: its run row "
            f"says {history_length} events, the store holds {len(events)}. The run is kept; "
            "repair or terminate it",
            seq=min(len(events), history_length) + 1,
            instance_id=instance_id,
        )
    return events
