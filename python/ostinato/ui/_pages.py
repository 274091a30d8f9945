"""The HTML pages, rendered on the server from the same data the JSON API serves.

Everything goes through ``_html.tag``, which escapes text: payloads, ids, names and failure
messages are shown as text whatever they contain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from .. import _view
from .._view import format_duration
from ._data import FILTER_STATUSES, STATUSES
from ._html import Child, Markup, join, tag

__all__ = ["error_page", "history_page", "list_page", "run_page", "stats_page"]


def url(path: str, **params: str | None) -> str:
    query = {k: v for k, v in params.items() if v is not None}
    return f"{path}?{urlencode(query)}" if query else path


def human_time(value: str | None) -> Child:
    """An ISO time as ``2026-01-31 12:00:05`` (UTC), with the exact value on hover."""
    if value is None:
        return "—"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return tag("time", parsed.strftime("%Y-%m-%d %H:%M:%S"), datetime=value, title=value)


def status_badge(status: str | None, blocked: str | None = None) -> Markup:
    if status is None:
        return tag("span", "unknown", class_="badge")
    label = status.replace("_", " ")
    badge = tag("span", label, class_=f"badge status-{status}")
    if blocked:
        badge = join(badge, " ", tag("span", "blocked", class_="badge status-blocked"))
    return badge


def payload_block(value: Any, *, open_: bool = False, label: str = "payload") -> Markup:
    """A JSON value, pretty-printed in an expandable block with a copy button."""
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    short = orjson.dumps(value).decode()
    summary = short if len(short) <= 80 else short[:77] + "…"
    return tag(
        "details",
        tag("summary", tag("code", summary)),
        tag("button", "copy", type="button", class_="copy", title=f"copy the {label}"),
        tag("pre", text, class_="payload"),
        class_="payload",
        open=open_,
    )


def layout(title: str, body: Child, *, csrf: str | None, nav: str = "", extra: Child = None) -> str:
    def link(href: str, text: str, key: str) -> Markup:
        return tag("a", text, href=href, class_="current" if nav == key else None)

    page = tag(
        "html",
        tag(
            "head",
            tag("meta", charset="utf-8"),
            tag("meta", name="viewport", content="width=device-width, initial-scale=1"),
            tag("meta", name="csrf-token", content=csrf) if csrf else None,
            tag("title", f"{title} · ostinato"),
            tag("link", rel="stylesheet", href="static/ui.css"),
            tag("script", src="static/ui.js", defer=True),
        ),
        tag(
            "body",
            tag(
                "header",
                tag("a", "ostinato", href="./", class_="brand"),
                tag("nav", link("./", "Runs", "runs"), link("stats", "Stats", "stats")),
                tag("span", "actions on" if csrf else "read-only", class_="mode"),
            ),
            tag("main", body),
            tag("footer", "Times are UTC.", class_="muted"),
            extra,
        ),
        lang="en",
    )
    return "<!doctype html>\n" + page


def error_page(status: int, message: str) -> str:
    body = join(tag("h1", f"Error {status}"), tag("p", message, class_="error"))
    return layout(f"Error {status}", body, csrf=None)


# ---- runs list -----------------------------------------------------------------------------


def _filter_form(params: Mapping[str, str]) -> Markup:
    def field(name: str, label: str, **attrs: str | None) -> Markup:
        return tag(
            "label",
            label,
            tag("input", name=name, value=params.get(name, ""), **attrs),
        )

    options = [tag("option", "any status", value="")] + [
        tag("option", s.replace("_", " "), value=s, selected=params.get("status") == s)
        for s in FILTER_STATUSES
    ]
    return tag(
        "form",
        tag("label", "Status", tag("select", options, name="status")),
        field("workflow", "Workflow", placeholder="name"),
        field("queue", "Queue", placeholder="default"),
        field("tag", "Tag", placeholder="key=value"),
        field("q", "Id", placeholder="id or prefix"),
        field("started_after", "Started after", placeholder="2026-01-31T00:00"),
        field("started_before", "before", placeholder="2026-02-01"),
        field("closed_after", "Closed after", placeholder="2026-01-31"),
        tag("button", "Filter", type="submit"),
        tag("a", "clear", href="./"),
        method="get",
        action="./",
        class_="filters",
        id="filters",
    )


def _status_counts(counts: Mapping[str, int], params: Mapping[str, str]) -> Markup:
    total = sum(counts.values())
    base = {k: v for k, v in params.items() if k not in ("status", "cursor", "blocked")}
    items = [tag("a", f"all {total}", href=url("./", **base), class_="count")]
    for status in STATUSES:
        n = counts.get(status, 0)
        if n:
            items.append(
                tag(
                    "a",
                    status_badge(status),
                    f" {n}",
                    href=url("./", **{**base, "status": status}),
                    class_="count",
                )
            )
    blocked = counts.get("blocked", 0)
    if blocked:
        items.append(
            tag(
                "a",
                status_badge("blocked"),
                f" {blocked}",
                href=url("./", **{**base, "status": "blocked"}),
                class_="count",
            )
        )
    return tag("div", items, class_="counts", id="counts")


def list_page(
    page: Mapping[str, Any],
    counts: Mapping[str, int],
    params: Mapping[str, str],
    *,
    csrf: str | None,
) -> str:
    rows = []
    for run in page["runs"]:
        reason = run["blocked_reason"] or None
        paused = run["status"] == "paused"
        note: Child = run["failure"]
        if reason:
            note = tag("span", reason, class_="blocked-reason")
        elif paused:
            note = tag(
                "span", "paused: ", run["pause_reason"] or "no reason given", class_="pause-reason"
            )
        rows.append(
            tag(
                "tr",
                tag("td", tag("a", run["id"], href=url("run", id=run["id"])), class_="id"),
                tag("td", run["workflow"]),
                tag("td", status_badge(run["status"], reason)),
                tag("td", run["queue"]),
                tag("td", human_time(run["created_at"])),
                tag("td", human_time(run["closed_at"] or run["updated_at"])),
                tag("td", note, class_="note"),
                class_="blocked" if reason else ("paused" if paused else None),
                data_id=run["id"],
            )
        )
    table = tag(
        "table",
        tag(
            "thead",
            tag(
                "tr",
                [
                    tag("th", h)
                    for h in ("Id", "Workflow", "Status", "Queue", "Started", "Last change", "")
                ],
            ),
        ),
        tag("tbody", rows),
        class_="runs",
        id="runs",
    )
    more: Child = None
    if page["next_cursor"]:
        note = " (searched the first runs only: go on to search further)" if page["partial"] else ""
        more = tag(
            "p",
            tag("a", "Next page →", href=url("./", **{**params, "cursor": page["next_cursor"]})),
            note,
            class_="more",
        )
    empty = tag("p", "No runs match.", class_="empty") if not page["runs"] else None
    body = join(
        tag("h1", "Runs"),
        _status_counts(counts, params),
        _filter_form(params),
        table,
        empty,
        more,
    )
    return layout("Runs", body, csrf=csrf, nav="runs")


# ---- one run -------------------------------------------------------------------------------


def _dl(items: Sequence[tuple[str, Child]]) -> Markup:
    return tag("dl", [join(tag("dt", k), tag("dd", v)) for k, v in items if v is not None])


def _failure(chain: Sequence[Mapping[str, Any]]) -> Markup:
    items = []
    for depth, cause in enumerate(chain):
        details = ", ".join(f"{k}={v}" for k, v in cause["details"].items())
        items.append(
            tag(
                "li",
                tag("strong", cause["type"]),
                ": ",
                cause["message"],
                tag("span", f" ({details})", class_="muted") if details else None,
                tag(
                    "details",
                    tag("summary", "traceback"),
                    tag("pre", cause["traceback"]),
                )
                if cause["traceback"]
                else None,
                class_="cause" if depth else "failure",
            )
        )
    return tag("ol", items, class_="failure-chain")


def _actions(run: Mapping[str, Any], csrf: str) -> Markup:
    rid = run["id"]

    def form(action: str, label: str, confirm: str, *fields: Child) -> Markup:
        return tag(
            "form",
            tag("input", type="hidden", name="csrf", value=csrf),
            fields,
            tag("button", label, type="submit", class_=f"action {action}"),
            method="post",
            action=url(f"api/{action}", id=rid),
            data_confirm=confirm,
            class_="action",
            id=f"{action}-form",
        )

    return tag(
        "section",
        tag("h2", "Actions"),
        form(
            "signal",
            "Send signal",
            f"Send this signal to {rid}?",
            tag("input", name="name", placeholder="signal name", required=True),
            tag("input", name="value", placeholder='value as JSON, e.g. {"ok": true}'),
        ),
        form(
            "cancel",
            "Cancel",
            f"Cancel workflow {rid}? Its code sees asyncio.CancelledError.",
            tag("input", name="reason", placeholder="reason (optional)"),
        ),
        form(
            "terminate",
            "Terminate",
            f"Terminate workflow {rid} now? No more of its code runs.",
            tag("input", name="reason", placeholder="reason (optional)"),
        ),
        class_="actions",
        id="actions",
    )


def _pending(pending: Mapping[str, Any]) -> Child:
    if not (pending["activities"] or pending["timers"] or pending["children"]):
        return None
    rows = []
    for a in pending["activities"]:
        note: Child = a["last_failure"] or ""
        if a["next_attempt_at"]:
            note = join(note, " · next attempt ", human_time(a["next_attempt_at"]))
        rows.append(
            tag(
                "tr",
                tag("td", "activity"),
                tag("td", f"#{a['activity_id']} {a['name']}"),
                tag("td", a["state"], " (cancel requested)" if a["cancel_requested"] else None),
                tag("td", f"attempt {a['attempt']}" if a["attempt"] else "—"),
                tag("td", note),
            )
        )
    for t in pending["timers"]:
        rows.append(
            tag(
                "tr",
                tag("td", "timer"),
                tag("td", f"#{t['timer_id']}"),
                tag("td", "waiting"),
                tag("td", "fires ", human_time(t["fire_at"])),
                tag("td", ""),
            )
        )
    for child in pending["children"]:
        rows.append(
            tag(
                "tr",
                tag("td", "child"),
                tag("td", tag("a", child, href=url("run", id=child))),
                tag("td", "running"),
                tag("td", ""),
                tag("td", ""),
            )
        )
    return tag("section", tag("h2", "Waiting for"), tag("table", rows, class_="pending"))


def _tree(run: Mapping[str, Any]) -> Markup:
    children = [
        tag(
            "li",
            tag("a", c["id"], href=url("run", id=c["id"])),
            " ",
            c["workflow"] or "",
            " ",
            status_badge(c["status"], c.get("blocked_reason")),
        )
        for c in run["children"]
    ]
    here = tag(
        "li",
        tag("strong", run["id"]),
        " ",
        run["workflow"],
        " ",
        status_badge(run["status"], run["blocked_reason"]),
        tag("ul", children) if children else None,
    )
    if run["parent_id"]:
        here = tag(
            "li",
            tag("a", run["parent_id"], href=url("run", id=run["parent_id"])),
            " (parent)",
            tag("ul", here),
        )
    return tag("ul", here, class_="tree", id="tree")


def _chain(run: Mapping[str, Any]) -> Child:
    """The continue-as-new chain around the run: every run shown links to its page."""
    chain = run["chain"]
    if len(chain["runs"]) < 2:
        return None
    rid = run["id"]
    items: list[Child] = []
    if chain["earlier"]:
        items.append(
            tag(
                "li",
                tag("a", "← earlier runs", href=url("run", id=rid, run=chain["earlier"])),
                class_="more",
            )
        )
    for number, item in enumerate(chain["runs"]):
        label: Child = tag("code", item["run_id"])
        if item["current"]:
            label = tag("strong", label, " (this run)")
        else:
            label = tag("a", label, href=url("run", id=rid, run=item["run_id"]))
        items.append(
            tag(
                "li",
                label,
                " ",
                status_badge(item["status"]),
                " ",
                tag("span", "started ", human_time(item["created_at"]), class_="muted"),
                class_="current" if item["current"] else None,
                data_run=item["run_id"],
                data_position=str(number),
            )
        )
    if chain["later"]:
        items.append(
            tag(
                "li",
                tag("a", "later runs →", href=url("run", id=rid, run=chain["later"])),
                class_="more",
            )
        )
    return tag(
        "section",
        tag("h2", "Continue-as-new chain"),
        tag("ol", items, class_="run-chain", id="chain"),
    )


def run_page(run: Mapping[str, Any], timeline: Child, mermaid: str, *, csrf: str | None) -> str:
    rid = run["id"]
    run_param = None if run["is_latest"] else run["run_id"]
    outcome: Child = None
    if run["result"] is not None or run["status"] == "completed":
        outcome = tag("section", tag("h2", "Result"), payload_block(run["result"], open_=True))
    elif run["failure"]:
        outcome = tag("section", tag("h2", "Failure"), _failure(run["failure"]))
    reason = tag("p", "Reason: ", run["reason"], class_="reason") if run["reason"] else None
    blocked = (
        tag(
            "div",
            tag("strong", "Blocked: "),
            run["blocked_reason"],
            class_="blocked-banner",
            id="blocked",
        )
        if run["blocked_reason"]
        else None
    )
    paused = (
        tag(
            "div",
            tag("strong", "Paused"),
            " since ",
            human_time(run["paused_at"]),
            ": ",
            run["pause_reason"] or "no reason given",
            " (no workflow task or activity attempt starts until it is resumed)",
            class_="paused-banner",
            id="paused",
        )
        if run["status"] == "paused"
        else None
    )
    vars_ = (
        tag(
            "section",
            tag("h2", "Variables"),
            tag(
                "table",
                [
                    tag("tr", tag("th", k), tag("td", payload_block(v, label="value")))
                    for k, v in run["vars"].items()
                ],
                class_="vars",
            ),
        )
        if run["vars"]
        else None
    )
    body = join(
        tag(
            "h1",
            tag("span", run["workflow"], class_="muted"),
            " ",
            rid,
            " ",
            status_badge(run["status"], run["blocked_reason"]),
            id="title",
        ),
        blocked,
        paused,
        _dl(
            [
                ("Run", run["run_id"]),
                ("Queue", run["queue"]),
                ("Started", human_time(run["created_at"])),
                ("Closed", human_time(run["closed_at"]) if run["closed_at"] else None),
                ("Last change", human_time(run["updated_at"])),
                (
                    "Events",
                    tag(
                        "a", str(run["history_length"]), href=url("history", id=rid, run=run_param)
                    ),
                ),
            ]
        ),
        _chain(run),
        reason,
        _actions(run, csrf) if csrf and run["status"] in ("running", "paused") else None,
        tag("section", tag("h2", "Input"), payload_block(run["input"], open_=True)),
        outcome,
        _pending(run["pending"]),
        vars_,
        tag("section", tag("h2", "Family"), _tree(run)),
        tag("section", tag("h2", "Timeline"), timeline, id="timeline"),
        tag(
            "section",
            tag("h2", "Diagram"),
            tag(
                "img",
                src=url("api/diagram", id=rid, run=run["run_id"]),
                alt=f"sequence diagram of {rid}",
                class_="diagram",
            ),
            tag(
                "details",
                tag("summary", "as Mermaid"),
                tag("button", "copy", type="button", class_="copy", title="copy the diagram"),
                tag("pre", mermaid, class_="payload"),
            ),
            id="diagram",
        ),
        tag("p", tag("a", "Full history →", href=url("history", id=rid, run=run_param))),
    )
    live = (
        tag(
            "div",
            hidden=True,
            id="live",
            data_poll=url("api/poll", id=rid, run=run_param),
            data_etag=f'"{run["etag"]}"',
        )
        if run["status"] in ("running", "paused")
        else None
    )
    return layout(rid, body, csrf=csrf, nav="runs", extra=live)


# ---- history -------------------------------------------------------------------------------

_PAYLOAD_FIELDS = ("input", "result", "failure", "payload", "value", "options", "info")


def history_page(data: Mapping[str, Any], *, csrf: str | None) -> str:
    rows = []
    for row in data["events"]:
        seq, time, kind, summary, event = _view.history_row_values(row)
        payloads = [
            tag("div", tag("span", key, class_="muted"), payload_block(event[key], label=key))
            for key in _PAYLOAD_FIELDS
            if key in event
        ]
        rows.append(
            tag(
                "tr",
                tag("td", str(seq), class_="seq"),
                tag("td", human_time(time), class_="time"),
                tag("td", tag("code", kind)),
                tag("td", summary),
                tag("td", payloads),
                class_=f"kind-{kind}",
            )
        )
    rid = data["id"]
    body = join(
        tag(
            "h1",
            "History of ",
            tag("a", rid, href=url("run", id=rid, run=data["run_id"])),
        ),
        tag(
            "p",
            f"run {data['run_id']} · {len(rows)} events · times are those of the workflow "
            "task that wrote each event",
            class_="muted",
        ),
        tag(
            "table",
            tag(
                "thead",
                tag("tr", [tag("th", h) for h in ("#", "Time", "Event", "Summary", "Payloads")]),
            ),
            tag("tbody", rows),
            class_="history",
            id="history",
        ),
    )
    return layout(f"History of {rid}", body, csrf=csrf, nav="runs")


# ---- stats ---------------------------------------------------------------------------------


def stats_page(stats: Mapping[str, Any], *, csrf: str | None) -> str:
    statuses = [s for s in STATUSES if any(s in row["counts"] for row in stats["workflows"])]
    wf_rows = [
        tag(
            "tr",
            tag("td", tag("a", row["workflow"], href=url("./", workflow=row["workflow"]))),
            [tag("td", str(row["counts"].get(s, 0)), class_="num") for s in statuses],
            tag("td", str(row["blocked"]), class_="num"),
            tag("td", str(sum(row["counts"].values())), class_="num"),
        )
        for row in stats["workflows"]
    ]
    q_rows = [
        tag(
            "tr",
            tag("td", tag("a", q["queue"], href=url("./", queue=q["queue"]))),
            tag("td", str(q["workflow_tasks"]), class_="num"),
            tag("td", str(q["activity_tasks"]), class_="num"),
            tag("td", str(q.get("held_by_limits", 0)), class_="num"),
            tag("td", format_duration(q["oldest_ready_age"]), class_="num"),
        )
        for q in stats["queues"]
    ]
    body = join(
        tag("h1", "Stats"),
        tag("p", "as of ", human_time(stats["as_of"]), class_="muted"),
        tag("h2", "Runs by workflow and status"),
        tag(
            "table",
            tag(
                "thead",
                tag(
                    "tr",
                    tag("th", "Workflow"),
                    [tag("th", status_badge(s)) for s in statuses],
                    tag("th", status_badge("blocked")),
                    tag("th", "total"),
                ),
            ),
            tag("tbody", wf_rows),
            class_="stats",
            id="by-workflow",
        ),
        tag("h2", "Backlog by queue (ready now)"),
        tag(
            "table",
            tag(
                "thead",
                tag(
                    "tr",
                    [
                        tag("th", h)
                        for h in (
                            "Queue",
                            "Workflow tasks",
                            "Activity tasks",
                            "Held by limits",
                            "Oldest waiting",
                        )
                    ],
                ),
            ),
            tag("tbody", q_rows),
            class_="stats",
            id="backlog",
        ),
        tag("p", "No task is waiting.", class_="empty") if not q_rows else None,
    )
    return layout("Stats", body, csrf=csrf, nav="stats")
