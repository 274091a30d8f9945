"""One home for event knowledge in Python: ``ostinato._events`` is the only module that builds
event dicts or reads an event's fields (docs/internals/reducer.md, issue 11)."""

from __future__ import annotations

import ast
from pathlib import Path

import orjson
import pytest
from ostinato import _core, _events

PACKAGE = Path(_events.__file__).parent
CONFORMANCE = PACKAGE / "testing" / "conformance"
# Keys only an event has (payload dicts have "type", "message", "instance_id" ...).
EVENT_KEYS = {"kind", "seq"}


def event_knowledge(source: str) -> list[str]:
    """Where ``source`` builds a dict with an event key or reads an event key from a dict."""
    found = []
    for node in ast.walk(ast.parse(source)):
        keys: list[ast.expr | None] = []
        if isinstance(node, ast.Dict):
            keys = list(node.keys)
        elif isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop", "setdefault")
            and node.args
        ):
            keys = [node.args[0]]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
        ):
            keys = [ast.Constant(k.arg) for k in node.keywords if k.arg]
        for key in keys:
            if isinstance(key, ast.Constant) and key.value in EVENT_KEYS:
                found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_the_check_sees_event_dicts_built_and_read() -> None:
    assert event_knowledge('e = {"kind": "timer_fired", "id": 1}')
    assert event_knowledge('e = dict(kind="timer_fired", id=1)')
    assert event_knowledge('k = orjson.loads(raw).get("kind")')
    assert event_knowledge('s = event["seq"]')
    assert not event_knowledge('f = {"type": "X", "message": "m"}; job.kind == "timed_out"')


def test_only_the_events_module_builds_or_reads_event_dicts() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "_events.py":
            continue
        if CONFORMANCE in path.parents:
            # The shipped conformance suite is test code: it feeds backends hand-written
            # events on purpose, to pin what they store byte for byte.
            continue
        found = event_knowledge(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(PACKAGE))] = found
    assert offenders == {}, "event JSON belongs in ostinato/_events.py"


def test_inbox_events_are_what_the_core_accepts() -> None:
    """Every inbox event ``_events`` builds is one the core decodes (and numbers)."""
    reducer = _core.Reducer()
    started = _events.workflow_started(
        "wf",
        b"[]",
        instance_id="i",
        run_id="r",
        queue="q",
        start_time=1.5,
        execution_deadline=None,
    )
    reducer.add_new_batch(0, [started])
    activation = reducer.next_activation()
    assert activation is not None
    reducer.schedule_activity("a", b"[]", b"{}")
    reducer.start_child("c", b"[]", b'{"instance_id":"k"}')
    reducer.signal_external("s", b"1", b'{"instance_id":"o"}')
    reducer.start_timer(10)
    reducer.finish_activation()
    inbox = [
        _events.activity_completed(1, b'"ok"', 2),
        _events.child_failed(2, b"{}"),
        _events.signal_external_completed(3, None),
        _events.timer_fired(4),
        _events.signal_received("go", b"[1]"),
        _events.cancel_requested("why"),
        _events.timed_out(),
    ]
    reducer.add_new_batch(1, inbox)
    activation = reducer.next_activation()
    assert activation is not None
    assert [job.kind for job in activation.jobs] == [
        "activity_completed",
        "child_failed",
        "signal_external_completed",
        "timer_fired",
        "signal_received",
        "cancel_requested",
        "timed_out",
    ]
    assert [_events.carries_over(e) for e in inbox] == [False] * 4 + [True, True, False]
    new = reducer.take_new_events()
    assert [_events.seq_of(e) for e in new] == list(range(1, len(new) + 1))


def test_readers() -> None:
    assert _events.seq_of(b'{"seq":12,"kind":"timed_out"}') == 12
    assert _events.seq_of(_events.workflow_terminated(9, "ops")) == 9
    with pytest.raises(ValueError, match="no integer 'seq'"):
        _events.seq_of(b'{"kind":"timed_out"}')
    failed = b'{"seq":3,"kind":"workflow_failed","failure":{"type":"X"}}'
    assert _events.workflow_failure(failed) == {"type": "X"}
    assert _events.workflow_failure(b'{"seq":3,"kind":"workflow_completed","result":1}') is None
    assert _events.workflow_failure(b"not json") is None
    with pytest.raises(ValueError, match="not a JSON object"):
        _events.decode(b"[1]")
    started = _events.workflow_started(
        "wf",
        b"[]",
        instance_id="i",
        run_id="r",
        queue="q",
        start_time=1.5,
        execution_deadline=9.0,
        parent_instance_id="p",
    )
    name, info = _events.started_event([b'{"seq":1,"kind":"task_started","time":0}', started])
    assert name == "wf"
    assert (info.instance_id, info.start_time, info.attempt) == ("i", 1.5, 1)
    assert (info.parent_instance_id, info.execution_deadline) == ("p", 9.0)
    assert orjson.loads(_events.timed_out()) == {"kind": "timed_out"}
