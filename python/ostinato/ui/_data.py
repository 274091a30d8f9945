"""What the pages and the JSON API show, read through the public backend interface.

Every function returns plain JSON-able values (dicts, lists, strings, numbers), so the API
serves them as they are and the pages render the very same data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from .. import _events, _view
from .._checks import check_tags, check_text
from .._client import Client
from .._errors import WorkflowNotFoundError
from ..backends import Backend, RunInfo, RunStatus

__all__ = [
    "FILTER_STATUSES",
    "MAX_PAGE",
    "STATUSES",
    "RunFilter",
    "history",
    "iso",
    "list_runs",
    "parse_filter",
    "poll",
    "run_detail",
    "run_summary",
    "stats",
    "status_counts",
]

MAX_PAGE = 500
DEFAULT_PAGE = 50
# A page searched by id prefix (the one filter the backend cannot apply) reads at most this
# many runs from the backend; the page then ends early with a cursor to go on.
SCAN_BUDGET = 2_000
# How many children a run page describes (each is one backend read).
MAX_CHILDREN = 100
# How many runs of a continue-as-new chain a run page shows on each side of the run (each is
# one backend read); the page links to the runs beyond.
CHAIN_SIDE = 25
# The statuses a run shows: the stored ones, and "paused" for an open run that is paused.
STATUSES = (*(s.value for s in RunStatus), "paused")
# What the status filter takes: those, and "blocked" (open runs stuck on a workflow task).
FILTER_STATUSES = (*STATUSES, "blocked")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_time(value: str, what: str) -> float:
    """An ISO 8601 date or date-time (naive means UTC), as epoch seconds."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{what} must be an ISO 8601 date or time such as 2026-01-31T12:00, not {value!r:.80}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


@dataclass(frozen=True)
class RunFilter:
    # A stored status, "paused" or "blocked" (open runs, see FILTER_STATUSES).
    status: str | None = None
    workflow: str | None = None
    queue: str | None = None
    # Instance id, or the start of one: the one filter applied here, not by the backend.
    id_prefix: str | None = None
    started_after: float | None = None
    started_before: float | None = None
    closed_after: float | None = None
    # Runs having this tag (key, value).
    tag: tuple[str, str] | None = None
    # Only runs that are stuck (blocked_reason set): ``status="blocked"``'s older spelling.
    blocked: bool = False

    def backend_filters(self) -> dict[str, Any]:
        """The keyword arguments of ``Backend.list_runs`` for every filter but the id prefix
        (a paused run is listed as paused, not as running: as ``describe()`` says)."""
        status: RunStatus | None = None
        blocked = paused = None
        if self.status == "paused":
            status, paused = RunStatus.RUNNING, True
        elif self.status == "blocked" or self.blocked:
            status, blocked = RunStatus.RUNNING, True
            if self.status is not None and self.status != "blocked":
                status = RunStatus(self.status)  # only open runs are blocked: none match
        elif self.status is not None:
            status = RunStatus(self.status)
            if status is RunStatus.RUNNING:
                paused = False
        return {
            "status": status,
            "workflow_name": self.workflow,
            "queue": self.queue,
            "tags": dict([self.tag]) if self.tag else None,
            "started_after": self.started_after,
            "started_before": self.started_before,
            "closed_after": self.closed_after,
            "blocked": blocked,
            "paused": paused,
        }


def _parse_tag(value: str) -> tuple[str, str]:
    key, sep, tag_value = value.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"tag must be key=value, such as customer=ada, not {value!r:.80}")
    [(key, tag_value)] = check_tags({key.strip(): tag_value.strip()}, "tag").items()
    return key, tag_value


def parse_filter(params: Mapping[str, str]) -> tuple[RunFilter, int, str | None]:
    """A filter, page size and cursor from query parameters (empty ones are ignored).

    Bad values raise ``ValueError`` saying which parameter and what it takes.
    """

    def text(name: str) -> str | None:
        value = params.get(name, "").strip()
        return check_text(value, name) if value else None

    status = text("status")
    if status is not None and status not in FILTER_STATUSES:
        raise ValueError(f"status must be one of {', '.join(FILTER_STATUSES)}, not {status!r:.80}")
    after = text("started_after")
    before = text("started_before")
    closed_after = text("closed_after")
    tag = text("tag")
    blocked = text("blocked")
    if blocked not in (None, "1", "true", "0", "false"):
        raise ValueError(f"blocked must be 1 or 0, not {blocked!r:.80}")
    limit_text = text("limit")
    limit = DEFAULT_PAGE
    if limit_text is not None:
        if (
            not (limit_text.isascii() and limit_text.isdigit())
            or not 1 <= int(limit_text) <= MAX_PAGE
        ):
            raise ValueError(f"limit must be a number from 1 to {MAX_PAGE}, not {limit_text!r:.80}")
        limit = int(limit_text)
    return (
        RunFilter(
            status=status,
            workflow=text("workflow"),
            queue=text("queue"),
            id_prefix=text("q"),
            started_after=_parse_time(after, "started_after") if after else None,
            started_before=_parse_time(before, "started_before") if before else None,
            closed_after=_parse_time(closed_after, "closed_after") if closed_after else None,
            tag=_parse_tag(tag) if tag else None,
            blocked=blocked in ("1", "true"),
        ),
        limit,
        text("cursor"),
    )


def _failure_chain(payload: Any) -> list[dict[str, Any]]:
    """A failure payload's cause chain, outermost first (see ostinato._failure)."""
    chain = []
    seen = 0
    while isinstance(payload, dict) and seen < 16:
        chain.append(
            {
                "type": str(payload.get("type", "?")),
                "message": str(payload.get("message", "")),
                "traceback": payload.get("traceback") or None,
                "details": {
                    k: payload[k]
                    for k in ("activity_name", "attempt", "workflow_name", "instance_id")
                    if k in payload
                },
            }
        )
        payload = payload.get("cause")
        seen += 1
    return chain


def _loads(payload: bytes | None) -> Any:
    if not payload:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return f"<unreadable payload: {bytes(payload[:80])!r}>"


def shown_status(info: RunInfo) -> str:
    """The status a run shows: its stored one, or "paused" while it is open and paused."""
    if info.status.is_open and info.paused_at is not None:
        return "paused"
    return info.status.value


def run_summary(info: RunInfo) -> dict[str, Any]:
    closed = not info.status.is_open
    failure = None
    if closed and info.status is not RunStatus.COMPLETED and info.result:
        chain = _failure_chain(_loads(info.result))
        failure = f"{chain[0]['type']}: {chain[0]['message']}" if chain else None
    paused = shown_status(info) == "paused"
    return {
        "id": info.instance_id,
        "run_id": info.run_id,
        "workflow": info.workflow_name,
        "queue": info.queue,
        "status": shown_status(info),
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "closed_at": iso(info.closed_at),
        "history_length": info.history_length,
        "blocked_reason": info.blocked_reason,
        "paused_at": iso(info.paused_at) if paused else None,
        "pause_reason": info.pause_reason if paused else None,
        "failure": failure,
        "parent_id": info.parent.instance_id if info.parent else None,
        "next_run_id": info.next_run_id,
        "tags": dict(info.tags),
    }


async def list_runs(
    backend: Backend, flt: RunFilter, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of runs (latest run of each instance, newest first) matching ``flt``.

    The backend applies every filter but the id prefix, and pages on its cursor. An id
    prefix is matched here, reading at most ``SCAN_BUDGET`` runs: a page may then hold fewer
    than ``limit`` runs and still have a ``next_cursor`` (``"partial": true``).
    """
    await backend.open()
    filters = flt.backend_filters()
    if flt.id_prefix is None:
        runs, after = await backend.list_runs(limit=limit, cursor=cursor, **filters)
        return _page([run_summary(info) for info in runs], after, len(runs), partial=False)
    prefix = flt.id_prefix
    found: list[dict[str, Any]] = []
    scanned = 0
    page_start = cursor
    while True:
        page_size = min((limit - len(found)) * 4, MAX_PAGE)
        runs, after = await backend.list_runs(limit=page_size, cursor=page_start, **filters)
        for index, info in enumerate(runs):
            scanned += 1
            if not info.instance_id.startswith(prefix):
                continue
            found.append(run_summary(info))
            if len(found) == limit:
                if index < len(runs) - 1:
                    # Backend cursors are opaque: the page that ends at this run gives the
                    # cursor that resumes right after it.
                    _, after = await backend.list_runs(
                        limit=index + 1, cursor=page_start, **filters
                    )
                return _page(found, after, scanned, partial=False)
        if after is None:
            return _page(found, None, scanned, partial=False)
        page_start = after
        if scanned >= SCAN_BUDGET:
            return _page(found, after, scanned, partial=True)


def _page(
    found: list[dict[str, Any]], cursor: str | None, scanned: int, *, partial: bool
) -> dict[str, Any]:
    return {"runs": found, "next_cursor": cursor, "scanned": scanned, "partial": partial}


async def history(backend: Backend, instance_id: str, run_id: str | None) -> dict[str, Any]:
    """The run's history events as rows: seq, the time of the workflow task that wrote it,
    kind, a one-line summary and the event itself."""
    info = await _describe(backend, instance_id, run_id)
    handle = Client(backend).get_handle(instance_id, run_id=info.run_id)
    rows = _view.history_rows(await handle.history())
    return {
        "id": instance_id,
        "run_id": info.run_id,
        "events": [_view.history_row_json(row) for row in rows],
    }


async def _describe(backend: Backend, instance_id: str, run_id: str | None) -> RunInfo:
    check_text(instance_id, "id")
    if run_id is not None:
        check_text(run_id, "run")
    await backend.open()
    return await backend.describe(instance_id, run_id)


def _state(info: RunInfo) -> dict[str, Any]:
    """What a live page compares: with an ``etag`` that changes whenever anything shown on
    the run page can have changed."""
    state = {
        "id": info.instance_id,
        "run_id": info.run_id,
        "status": shown_status(info),
        "history_length": info.history_length,
        "updated_at": iso(info.updated_at),
        "blocked_reason": info.blocked_reason,
        "pause_reason": info.pause_reason if info.paused_at is not None else None,
    }
    digest = hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return {**state, "etag": digest[:32]}


async def poll(backend: Backend, instance_id: str, run_id: str | None) -> dict[str, Any]:
    """The little a live page needs to know whether the run changed (one cheap read)."""
    return _state(await _describe(backend, instance_id, run_id))


def _outcome(info: RunInfo, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Result, failure cause chain and the reason a run was cancelled or terminated."""
    out: dict[str, Any] = {"result": None, "failure": [], "reason": None}
    if info.status is RunStatus.COMPLETED:
        out["result"] = _loads(info.result)
    elif not info.status.is_open and info.result:
        out["failure"] = _failure_chain(_loads(info.result))
    for event in events:
        kind = _events.kind(event)
        if kind == "workflow_terminated" or (kind == "cancel_requested" and out["reason"] is None):
            out["reason"] = event.get("reason")
    return out


async def run_detail(
    backend: Backend, instance_id: str, run_id: str | None
) -> tuple[dict[str, Any], _view.RunTimeline]:
    """Everything the run page shows: status, input, outcome, vars, pending work, the
    continue-as-new neighbours, parent and children, and the timeline (also as data)."""
    info = await _describe(backend, instance_id, run_id)
    client = Client(backend)
    handle = client.get_handle(instance_id, run_id=info.run_id)
    described = await handle.describe()
    events = await handle.history()
    started = next((e for e in events if _events.kind(e) == "workflow_started"), {})
    latest = info if run_id is None else await _describe(backend, instance_id, None)
    vars_: dict[str, Any] = {}
    if latest.run_id == info.run_id:
        vars_ = await client.get_vars(instance_id)
    children = await _children(backend, events)
    chain = await _chain(backend, info)
    detail = run_summary(info)
    detail.update(
        {
            "is_latest": latest.run_id == info.run_id,
            "etag": _state(info)["etag"],
            "input": started.get("input"),
            "previous_run_id": _events.run_origin(started).get("continued_from_run_id"),
            "vars": vars_,
            "pending": {
                "activities": [
                    {
                        "activity_id": a.activity_id,
                        "name": a.name,
                        "state": a.state,
                        "attempt": a.attempt,
                        "next_attempt_at": a.next_attempt_at.isoformat()
                        if a.next_attempt_at
                        else None,
                        "last_failure": a.last_failure,
                        "heartbeat_details": a.heartbeat_details,
                        "cancel_requested": a.cancel_requested,
                    }
                    for a in described.pending_activities
                ],
                "timers": [
                    {"timer_id": t.timer_id, "fire_at": t.fire_at.isoformat()}
                    for t in described.pending_timers
                ],
                "children": described.pending_children,
            },
            "children": children,
            "chain": chain,
            **_outcome(info, events),
        }
    )
    timeline = _view.build_timeline(events, described, vars_)
    detail["timeline"] = _view.timeline_json(timeline)
    return detail, timeline


async def _chain(backend: Backend, info: RunInfo) -> dict[str, Any]:
    """The run's continue-as-new chain around it, oldest first: up to ``CHAIN_SIDE`` runs it
    continued from and as many that continued from it, with the ids of the runs to go on
    from when the chain is longer (``earlier``, ``later``)."""
    instance_id = info.instance_id
    before = await backend.previous_run_ids(instance_id, info.run_id, CHAIN_SIDE + 1)
    earlier = before[CHAIN_SIDE - 1] if len(before) > CHAIN_SIDE else None
    runs = [await backend.describe(instance_id, run_id) for run_id in reversed(before[:CHAIN_SIDE])]
    runs.append(info)
    later = None
    next_id = info.next_run_id
    while next_id is not None:
        if len(runs) - len(before[:CHAIN_SIDE]) > CHAIN_SIDE:
            later = runs[-1].run_id
            break
        try:
            run = await backend.describe(instance_id, next_id)
        except WorkflowNotFoundError:  # deleted since
            break
        runs.append(run)
        next_id = run.next_run_id
    return {
        "runs": [
            {
                "run_id": run.run_id,
                "status": shown_status(run),
                "created_at": iso(run.created_at),
                "closed_at": iso(run.closed_at),
                "current": run.run_id == info.run_id,
            }
            for run in runs
        ],
        "earlier": earlier,
        "later": later,
    }


async def _children(backend: Backend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's child workflows in the order it started them, each with its current
    status (``None`` when it could not be read, e.g. deleted)."""
    children: list[dict[str, Any]] = []
    for event in events:
        if _events.kind(event) != "child_scheduled":
            continue
        child_id = _events.command_target(event)
        if child_id is None:
            continue
        entry: dict[str, Any] = {"id": child_id, "workflow": event.get("name"), "status": None}
        if len(children) < MAX_CHILDREN:
            try:
                child = await backend.describe(child_id)
            except WorkflowNotFoundError:  # deleted since: shown as unknown
                pass
            else:
                entry["status"] = child.status.value
                entry["blocked_reason"] = child.blocked_reason
        children.append(entry)
    return children


async def stats(backend: Backend) -> dict[str, Any]:
    """Runs by workflow and status (latest run of each instance; open runs that are paused
    as "paused", not "running") and the backlog per queue."""
    await backend.open()
    snapshot = await backend.stats()
    workflows: dict[str, dict[str, Any]] = {}
    totals: dict[str, int] = {}
    for row in snapshot.runs:
        entry = workflows.setdefault(
            row.workflow_name, {"workflow": row.workflow_name, "counts": {}, "blocked": 0}
        )
        status = "paused" if row.paused and row.status.is_open else row.status.value
        entry["counts"][status] = entry["counts"].get(status, 0) + row.count
        totals[status] = totals.get(status, 0) + row.count
        if row.blocked:
            entry["blocked"] += row.count
            totals["blocked"] = totals.get("blocked", 0) + row.count
    return {
        "as_of": iso(snapshot.now),
        "totals": totals,
        "workflows": sorted(workflows.values(), key=lambda w: str(w["workflow"])),
        "queues": [
            {
                "queue": q.queue,
                "workflow_tasks": q.workflow_tasks,
                "activity_tasks": q.activity_tasks,
                "held_by_limits": q.held_by_limits,
                "oldest_ready_at": iso(q.oldest_ready_at),
                "oldest_ready_age": None
                if q.oldest_ready_at is None
                else max(snapshot.now - q.oldest_ready_at, 0.0),
            }
            for q in snapshot.backlog
        ],
    }


def status_counts(stats_: Mapping[str, Any], workflow: str | None) -> dict[str, int]:
    """Per-status counts for the list page: all workflows, or one."""
    if workflow is None:
        return dict(stats_["totals"])
    for row in stats_["workflows"]:
        if row["workflow"] == workflow:
            return {**row["counts"], "blocked": row["blocked"]}
    return {}
