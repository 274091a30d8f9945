"""``ostinato list / describe / history / show / stats / diagram``: read-only views of a store,
as aligned text for people and ``--json`` for programs (shapes in docs/cli.md)."""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any

import orjson

from .. import _view
from .._client import Client, WorkflowDescription
from ._term import Painter, safe, table

__all__ = ["describe", "diagram", "history", "list_runs", "show", "stats"]

_JSON = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE


class Output:
    """Where a command writes: plain or coloured text, or JSON."""

    def __init__(self, stream: Any, painter: Painter) -> None:
        self.stream = stream
        self.paint = painter

    def lines(self, lines: list[str]) -> None:
        self.stream.write("".join(line + "\n" for line in lines))

    def json(self, value: Any) -> None:
        self.stream.write(orjson.dumps(value, default=str, option=_JSON).decode())


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _status(out: Output, d: WorkflowDescription) -> str:
    return out.paint.status("blocked", "BLOCKED") if d.is_blocked else out.paint.status(d.status)


def _elapsed(d: WorkflowDescription) -> float:
    return ((d.closed_at or _now()) - d.created_at).total_seconds()


def _note(d: WorkflowDescription) -> str:
    if d.blocked_reason:
        return f"BLOCKED: {safe(d.blocked_reason)}"
    if d.failure:
        return safe(d.failure)
    if d.next_run_id:
        return f"next run {d.next_run_id}"
    if d.parent_instance_id:
        return f"child of {safe(d.parent_instance_id)}"
    return ""


async def list_runs(client: Client, args: argparse.Namespace, out: Output) -> int:
    page, cursor = await client.list_workflows(
        status=args.status,
        workflow=args.workflow,
        limit=args.limit,
        cursor=args.cursor,
        queue=args.queue,
        tags=dict(args.tag) if args.tag else None,
    )
    if args.json:
        out.json({"workflows": [_view.description_json(d) for d in page], "next_cursor": cursor})
        return 0
    rows = [
        [
            safe(d.instance_id),
            safe(d.workflow_name),
            _status(out, d),
            _view.format_time(d.created_at),
            _view.format_duration(_elapsed(d)),
            _note(d),
        ]
        for d in page
    ]
    headers = ["ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "NOTE"]
    lines = table(headers, rows, out.paint, right=[4]) if rows else ["no workflows"]
    if cursor:
        lines.append(out.paint.dim(f"more: --cursor {cursor}"))
    out.lines(lines)
    return 0


async def describe(client: Client, args: argparse.Namespace, out: Output) -> int:
    handle = client.get_handle(args.id, run_id=args.run_id)
    d = await handle.describe()
    variables = await client.get_vars(args.id) if args.run_id is None else None
    if args.json:
        out.json(_view.description_json(d, variables))
        return 0
    p = out.paint
    took = _view.format_duration(_elapsed(d))
    fields = [
        ("run", d.run_id),
        ("queue", safe(d.queue)),
        ("started", _view.format_time(d.created_at)),
        ("closed", f"{_view.format_time(d.closed_at)}  ({took})" if d.closed_at else "-"),
        ("running for", took if d.closed_at is None else ""),
        ("updated", _view.format_time(d.updated_at)),
        ("history", f"{d.history_length} events"),
        ("parent", safe(d.parent_instance_id or "")),
        ("next run", d.next_run_id or ""),
        ("blocked", safe(d.blocked_reason or "")),
        ("failure", safe(d.failure or "")),
    ]
    lines = [f"{p.bold(safe(d.instance_id))}  {safe(d.workflow_name)}  {_status(out, d)}"]
    lines += [f"  {name:<12}{value}" for name, value in fields if value]
    if variables:
        lines.append("  vars")
        lines += [f"    {safe(k)} = {_view.short_json(v, 100)}" for k, v in variables.items()]
    if d.pending_activities:
        lines += ["", p.bold("pending activities")]
        rows = [
            [
                str(a.activity_id),
                safe(a.name),
                p.status(a.state),
                str(a.attempt),
                _view.format_time(a.next_attempt_at) if a.next_attempt_at else "",
                ("cancel requested; " if a.cancel_requested else "") + safe(a.last_failure or ""),
            ]
            for a in d.pending_activities
        ]
        headers = ["ID", "NAME", "STATE", "ATTEMPT", "NEXT ATTEMPT", "LAST FAILURE"]
        lines += table(headers, rows, p, right=[0, 3], indent="  ")
    if d.pending_timers:
        lines += ["", p.bold("pending timers")]
        rows = [
            [
                str(t.timer_id),
                _view.format_time(t.fire_at),
                "in " + _view.format_duration((t.fire_at - _now()).total_seconds()),
            ]
            for t in d.pending_timers
        ]
        lines += table(["ID", "FIRES AT", ""], rows, p, right=[0], indent="  ")
    if d.pending_children:
        lines += ["", p.bold("pending children")]
        lines += [f"  {safe(child)}" for child in d.pending_children]
    out.lines(lines)
    return 0


async def history(client: Client, args: argparse.Namespace, out: Output) -> int:
    events = await client.get_handle(args.id, run_id=args.run_id).history()
    if args.json:  # the shape ostinato.testing.replay() and save_history() use
        out.json(events)
        return 0
    p = out.paint
    rows = _view.history_rows(events)
    lines = table(
        ["SEQ", "TIME", "KIND", "SUMMARY"],
        [[str(r.seq), _view.format_time(r.time), r.kind, safe(r.summary)] for r in rows],
        p,
        right=[0],
    )
    if args.payloads:  # each row followed by its event as indented JSON
        body = lines[1:]
        lines = lines[:1]
        for line, row in zip(body, rows, strict=True):
            lines.append(line)
            if row.kind != "task_started":
                lines += [
                    p.dim("      " + text) for text in _view.pretty_json(row.event).splitlines()
                ]
    out.lines(lines)
    return 0


_BAR = 24


def _bar(item: _view.TimelineItem, start: datetime, span: float) -> str:
    """Where the item sits on the run's time axis, as a row of ``_BAR`` characters."""
    if item.start is None or span <= 0:
        return "·" * _BAR
    first = int((item.start - start).total_seconds() / span * (_BAR - 1))
    end = item.end or _now()
    last = int((end - start).total_seconds() / span * (_BAR - 1))
    first, last = max(0, min(first, _BAR - 1)), max(0, min(last, _BAR - 1))
    mark = "|" if item.start == item.end else "█"
    return "·" * first + mark * (last - first + 1) + "·" * (_BAR - 1 - last)


def _attempts(item: _view.TimelineItem) -> str:
    if not item.attempts:
        return ""
    return str(item.attempts[-1].number)


async def show(client: Client, args: argparse.Namespace, out: Output) -> int:
    handle = client.get_handle(args.id, run_id=args.run_id)
    description = await handle.describe()
    events = await handle.history()
    variables = await client.get_vars(args.id) if args.run_id is None else {}
    timeline = _view.build_timeline(events, description, variables)
    if args.json:
        out.json(_view.timeline_json(timeline))
        return 0
    p = out.paint
    t = timeline
    took = _view.format_duration(t.duration if t.closed_at else _elapsed(description))
    lines = [
        f"{p.bold(safe(t.instance_id))}  {safe(t.workflow_name)}  {p.status(t.status)}  "
        f"started {_view.format_time(t.started_at)}  "
        + (f"took {took}" if t.closed_at else f"running for {took}"),
        f"  run      {t.run_id}",
        f"  input    {_view.short_json(t.input, 100)}",
    ]
    if t.status == "completed":
        lines.append(f"  result   {_view.short_json(t.result, 100)}")
    for label, value in (
        ("failure", t.failure),
        ("blocked", t.blocked_reason),
        ("parent", t.parent_instance_id),
        ("from run", t.continued_from_run_id),
        ("next run", t.next_run_id),
    ):
        if value:
            lines.append(f"  {label:<9}{safe(value)}")
    for name, value in t.vars.items():
        lines.append(f"  var      {safe(name)} = {_view.short_json(value, 100)}")
    lines.append("")
    if not t.items:
        lines.append("nothing happened yet")
        out.lines(lines)
        return 0
    start = t.started_at or t.items[0].start or _now()
    span = ((t.closed_at or _now()) - start).total_seconds()
    rows = []
    for item in t.items:
        offset = (item.start - start).total_seconds() if item.start else None
        rows.append(
            [
                "+" + _view.format_duration(offset),
                _bar(item, start, span),
                item.kind,
                safe(item.name),
                p.status(item.status),
                _attempts(item),
                _view.format_duration(item.duration) if item.start != item.end else "",
                safe(_detail(item)),
            ]
        )
    headers = ["AT", "", "KIND", "NAME", "STATUS", "TRIES", "TOOK", "DETAIL"]
    lines += table(headers, rows, p, right=[0, 5, 6])
    out.lines(lines)
    return 0


def _detail(item: _view.TimelineItem) -> str:
    parts = []
    if item.target and item.target != item.name:
        parts.append(f"-> {item.target}")
    if item.detail and item.detail != item.failure:
        parts.append(item.detail)
    if item.failure:
        parts.append(("last failure: " if item.is_open else "") + item.failure)
    if item.next_attempt_at:
        parts.append(f"next attempt {_view.format_time(item.next_attempt_at)}")
    return ", ".join(parts)


async def diagram(client: Client, args: argparse.Namespace, out: Output) -> int:
    handle = client.get_handle(args.id, run_id=args.run_id)
    timeline = _view.build_timeline(await handle.history(), await handle.describe())
    render = _view.svg if args.format == "svg" else _view.mermaid
    out.stream.write(render(timeline))
    return 0


_PAGE = 1000


async def stats(client: Client, args: argparse.Namespace, out: Output) -> int:
    """Counts over the latest run of every instance, read page by page (at most
    ``--max-runs``)."""
    by_status: Counter[str] = Counter()
    by_workflow: dict[str, Counter[str]] = defaultdict(Counter)
    queues: dict[str, dict[str, Any]] = {}
    seen = 0
    cursor = None
    while seen < args.max_runs:
        page, cursor = await client.list_workflows(
            limit=min(_PAGE, args.max_runs - seen), cursor=cursor
        )
        for d in page:
            status = "blocked" if d.is_blocked else d.status
            by_status[status] += 1
            by_workflow[d.workflow_name][status] += 1
            if d.status == "running":
                q = queues.setdefault(d.queue, {"open": 0, "blocked": 0, "oldest_started": None})
                q["open"] += 1
                q["blocked"] += d.is_blocked
                if q["oldest_started"] is None or d.created_at < q["oldest_started"]:
                    q["oldest_started"] = d.created_at
        seen += len(page)
        if cursor is None:
            break
    complete = cursor is None
    if args.json:
        out.json(
            {
                "runs": seen,
                "complete": complete,
                "by_status": dict(by_status.most_common()),
                "by_workflow": {k: dict(v.most_common()) for k, v in sorted(by_workflow.items())},
                "open_by_queue": {
                    k: {**v, "oldest_started": _view.to_datetime(v["oldest_started"])}
                    for k, v in sorted(queues.items())
                },
            }
        )
        return 0
    p = out.paint
    if not seen:
        out.lines(["no workflows"])
        return 0
    statuses = [s for s, _ in by_status.most_common()]
    lines = [
        p.bold(f"{seen} workflows")
        + ("" if complete else f" (stopped at --max-runs {args.max_runs}; counts are partial)"),
        "  " + "  ".join(f"{p.status(s)} {by_status[s]}" for s in statuses),
        "",
    ]
    rows = [
        [safe(name), *(str(counts[s]) if counts[s] else "-" for s in statuses), str(counts.total())]
        for name, counts in sorted(by_workflow.items())
    ]
    headers = ["WORKFLOW", *(s.upper() for s in statuses), "TOTAL"]
    lines += table(headers, rows, p, right=range(1, len(statuses) + 2))
    if queues:
        now = _now()
        rows = [
            [
                safe(name),
                str(q["open"]),
                str(q["blocked"]),
                _view.format_time(q["oldest_started"]),
                _view.format_duration((now - q["oldest_started"]).total_seconds()),
            ]
            for name, q in sorted(queues.items())
        ]
        lines += [
            "",
            *table(
                ["QUEUE", "OPEN", "BLOCKED", "OLDEST OPEN RUN", "AGE"], rows, p, right=[1, 2, 4]
            ),
        ]
    out.lines(lines)
    return 0
