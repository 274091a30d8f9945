"""The run-view model (``ostinato._view``) over histories of real runs on the memory backend:
timelines, history rows, human times and durations, JSON shapes, Mermaid and SVG diagrams."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import ostinato
import pytest
from ostinato import _view, workflow
from view_workflows import eventually_status, messenger, run_order, stuck, waiter, worker


async def view_of(client: ostinato.Client, id: str, run_id: str | None = None) -> Any:
    handle = client.get_handle(id, run_id=run_id)
    description = await handle.describe()
    history = await handle.history()
    return _view.build_timeline(history, description, await client.get_vars(id)), history


@pytest.fixture(scope="module")
def finished_order() -> Any:
    """Both runs of a ``view.order`` that continued as new once, as (first, last) timelines
    with the last run's history."""
    return asyncio.run(_finished_order())


async def _finished_order() -> Any:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with worker(backend):
        await run_order(client, "k", rounds=2)
        last, history = await view_of(client, "k")
        first, _ = await view_of(client, "k", last.continued_from_run_id)
    await backend.close()
    return first, last, history


def test_timeline_of_a_finished_run_has_every_step_in_order(finished_order: Any) -> None:
    first, last, _ = finished_order
    assert (last.workflow_name, last.instance_id, last.status) == ("view.order", "k", "completed")
    assert [i.kind for i in last.items] == [
        "activity", "activity", "timer", "side_effect", "patch", "child", "signal"
    ]  # fmt: skip
    assert last.input == ["k+", 1]
    assert last.result == {
        "receipt": "charged k+", "grown": 8, "approval": "<b>yes</b>; #1", "new_path": True
    }  # fmt: skip
    assert last.vars == {"stage": "waiting"}
    assert last.continued_from_run_id == first.run_id and first.next_run_id == last.run_id

    flaky, declined, timer, side_effect, patch, child, signal = last.items
    assert (flaky.name, flaky.status, flaky.detail) == (
        "view.flaky",
        "completed",
        'result "charged k+"',
    )
    assert [(a.number, a.status) for a in flaky.attempts] == [
        (1, "failed"), (2, "failed"), (3, "completed")
    ]  # fmt: skip
    assert flaky.attempts[-1].end == flaky.end
    assert (declined.status, declined.failure) == ("failed", "ApplicationError: card 4242 declined")
    assert [(a.number, a.failure) for a in declined.attempts] == [(1, declined.failure)]
    assert timer.status == "fired" and timer.name == "sleep 50 ms"
    assert timer.duration is not None and timer.duration >= 0.045
    assert (side_effect.detail, patch.name) == ("7", "view-v2")
    assert (child.name, child.target, child.status, child.detail) == (
        "view.child", "k+-child-1", "completed", "result 8"
    )  # fmt: skip
    assert (signal.name, signal.status, signal.detail) == (
        "approve",
        "received",
        '"<b>yes</b>; #1"',
    )
    assert signal.start == signal.end
    # Items are dated within the run, in history order.
    assert last.started_at is not None and last.closed_at is not None
    starts = [i.start for i in last.items]
    assert starts == sorted(starts)  # type: ignore[type-var]
    for item in last.items:
        assert item.start is not None and item.end is not None
        assert last.started_at <= item.start <= item.end <= last.closed_at
    assert last.duration == (last.closed_at - last.started_at).total_seconds()

    assert first.status == "continued_as_new" and first.result is None
    assert first.items[-1].kind == "continue_as_new"
    assert first.items[-1].detail == 'input ["k+",1]'


def test_history_rows_are_dated_by_their_workflow_task(finished_order: Any) -> None:
    _, _, history = finished_order
    rows = _view.history_rows(history)
    assert [r.seq for r in rows] == list(range(1, len(history) + 1))
    task_time = None
    for row, event in zip(rows, history, strict=True):
        if event["kind"] == "task_started":
            task_time = datetime.fromtimestamp(event["time"] / 1e6, tz=timezone.utc)
        assert row.time == task_time and row.kind == event["kind"] and row.event is event
    summaries = {r.kind: r.summary for r in rows}
    assert summaries["workflow_started"].startswith('view.order ["k+",1], continued from run ')
    assert summaries["activity_completed"] == '#1 attempt 3: -> "charged k+"'
    assert summaries["activity_failed"] == "#2 attempt 1: ApplicationError: card 4242 declined"
    assert summaries["child_scheduled"] == "#6 view.child -> k+-child-1 [7]"
    assert summaries["marker_recorded"] == '#5 patched("view-v2")'
    assert summaries["signal_received"] == 'approve "<b>yes</b>; #1"'
    assert summaries["workflow_completed"].startswith('-> {"receipt":"charged k+"')
    payload = _view.history_row_json(rows[1])
    assert orjson.loads(orjson.dumps(payload))["event"] == history[1]


async def test_an_activity_still_retrying_shows_its_last_failure() -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with worker(backend):
        handle = await client.start_workflow(stuck, id="stuck")
        async with asyncio.timeout(20):
            while not (d := await handle.describe()).pending_activities or (
                d.pending_activities[0].state != "retrying"
            ):
                await asyncio.sleep(0.02)
        timeline, _ = await view_of(client, "stuck")
    await backend.close()
    assert timeline.status == "running" and timeline.closed_at is None and timeline.duration is None
    (item,) = timeline.items
    assert (item.name, item.status, item.is_open, item.duration) == (
        "view.always_down", "retrying", True, None
    )  # fmt: skip
    assert item.attempts == (_view.Attempt(1, "failed", None, "ConnectionError: mail server down"),)
    assert item.next_attempt_at is not None and item.start is not None
    assert item.next_attempt_at - item.start > timedelta(minutes=59)
    diagram = _view.mermaid(timeline)
    assert (
        "    Note over A1: retrying, last failure: ConnectionError: mail server down, next"
        in diagram
    )
    assert diagram.rstrip().endswith("Note over W1: running")


async def test_external_signals_cancels_and_terminations() -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with worker(backend):
        target = await client.start_workflow(waiter, id="target")
        sender = await client.start_workflow(messenger, "target", id="sender")
        await sender.result(timeout=20)
        await eventually_status(target, "canceled")
        other = await client.start_workflow(waiter, id="other")
        await other.terminate("bad deploy")
        await eventually_status(other, "terminated")
        sent, _ = await view_of(client, "sender")
        received, _ = await view_of(client, "target")
        ended, _ = await view_of(client, "other")
    await backend.close()
    assert [(i.kind, i.name, i.target, i.status) for i in sent.items] == [
        ("signal_external", "hello", "target", "sent"),
        ("cancel_external", "cancel", "target", "sent"),
    ]
    assert sent.items[1].detail == "no longer needed"
    assert received.status == "canceled"
    assert [(i.kind, i.name, i.detail) for i in received.items] == [
        ("signal", "hello", '{"from":"messenger"}'),
        ("cancel_request", "cancel requested", "no longer needed"),
    ]
    assert ended.status == "terminated"
    assert [(i.kind, i.detail) for i in ended.items] == [("terminate", "bad deploy")]
    assert "bad deploy" in (ended.failure or "")
    diagram = _view.mermaid(sent)
    assert '    W1->>C1: signal hello {"from":"messenger"}\n    C1-->>W1: sent after ' in diagram
    assert "    W1->>C1: cancel: no longer needed\n    C1-->>W1: sent after " in diagram


def test_mermaid_diagram_of_a_run(finished_order: Any) -> None:
    _, last, _ = finished_order
    lines = _view.mermaid(last).splitlines()
    assert lines[:6] == [
        "sequenceDiagram",
        "    participant W1 as view.order (k)",
        "    participant A1 as view.flaky",
        "    participant A2 as view.declined",
        "    participant T1 as timers",
        "    participant C1 as k+-child-1",
    ]
    body = "\n".join(lines)
    assert "    W1->>A1: view.flaky\n    A1-->>W1: completed on attempt 3 after " in body
    assert "    A2--xW1: failed after " in body and ": ApplicationError: card 4242 declined" in body
    assert "    W1->>T1: sleep 50 ms\n    T1-->>W1: fired after " in body
    assert "    W1->>C1: start child view.child\n    C1-->>W1: completed after " in body
    # Characters Mermaid reads as syntax arrive as entity codes, never raw.
    assert '    O1->>W1: signal approve "#60;b#62;yes#60;/b#62;#59; #35;1"' in body
    assert lines[-1].startswith("    Note over W1: completed after ")
    for line in lines[1:]:
        assert line.startswith("    ") and ";" not in line.replace("#35;", "").replace(
            "#59;", ""
        ).replace("#60;", "").replace("#62;", "")


def test_svg_diagram_is_well_formed_and_escapes_payloads(finished_order: Any) -> None:
    _, last, _ = finished_order
    document = _view.svg(last)
    root = ET.fromstring(document)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "view.flaky" in texts and "timers" in texts
    assert any(t.startswith("signal approve") and "<b>yes</b>" in t for t in texts)
    assert "<b>" not in document and "&lt;b&gt;yes" in document
    assert "<script" not in document
    failed = _view.status_style("failed").color
    assert f'fill="{failed}">failed after' in document


def test_json_shapes_are_plain_json(finished_order: Any) -> None:
    _, last, _ = finished_order
    shown = _view.timeline_json(last)
    assert orjson.loads(orjson.dumps(shown)) == shown
    assert shown["status"] == "completed" and shown["duration_seconds"] == last.duration
    flaky = shown["items"][0]
    assert flaky["kind"] == "activity" and flaky["start"].endswith("+00:00")
    assert [a["number"] for a in flaky["attempts"]] == [1, 2, 3]
    assert flaky["duration_seconds"] == last.items[0].duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.0004, "0.4 ms"),
        (0.035, "35 ms"),
        (1.2, "1.2 s"),
        (59.94, "59.9 s"),
        (245, "4 min 5 s"),
        (3600, "1 h"),
        (3 * 3600 + 4 * 60 + 59, "3 h 4 min"),
        (3 * 86400 + 4 * 3600 + 5, "3 d 4 h"),
        (-1.5, "-1.5 s"),
        (float("inf"), "forever"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert _view.format_duration(seconds) == text


def test_format_time_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 12, 1, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert _view.format_time(moment) == "2026-12-01 03:04:05.123"
    assert _view.format_time(moment.timestamp()) == "2026-12-01 03:04:05.123"
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert _view.format_time(plus_two) == "2026-12-01 03:04:05.123"
    assert _view.format_time(None) == "-"


def test_status_styles() -> None:
    assert _view.status_style("completed").tone == "ok"
    assert _view.status_style("failed").ansi == "31"
    assert _view.status_style("blocked").tone == "bad"
    assert _view.status_style("running").tone == "active"
    assert _view.status_style("something new").tone == "muted"


@workflow.defn(name="view.deploy")
async def deploy_v1() -> None:
    await workflow.sleep(0.01)
    await workflow.signal_channel("go").receive()


@workflow.defn(name="view.deploy")
async def deploy_v2() -> None:  # a deploy that changed the first step without patched()
    await workflow.side_effect(lambda: 1)
    await workflow.signal_channel("go").receive()


async def test_a_blocked_run_shows_as_blocked_with_its_reason() -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with ostinato.Worker(backend, workflows=[deploy_v1], poll_interval=0.02):
        handle = await client.start_workflow(deploy_v1, id="deploy")
        async with asyncio.timeout(20):
            while (await handle.describe()).history_length < 5:  # the timer fired
                await asyncio.sleep(0.02)
    async with ostinato.Worker(backend, workflows=[deploy_v2], poll_interval=0.02):
        await handle.signal("go")
        async with asyncio.timeout(20):
            while (await handle.describe()).blocked_reason is None:
                await asyncio.sleep(0.02)
        timeline, _ = await view_of(client, "deploy")
    await backend.close()
    assert timeline.status == "blocked" and _view.status_style(timeline.status).tone == "bad"
    assert "NonDeterminismError" in (timeline.blocked_reason or "")
    assert [(i.kind, i.status) for i in timeline.items] == [("timer", "fired")]
    last = _view.mermaid(timeline).splitlines()[-1]
    assert last.startswith("    Note over W1: blocked: NonDeterminismError")
