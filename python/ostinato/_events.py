"""The one Python module that builds and reads history events (see docs/internals/reducer.md).

The Rust core owns the events of a workflow task: it numbers them, encodes them and decodes
recorded history (``ostinato._core``). What Python writes are the *inbox* events that arrive
for a run (no ``seq``: the core numbers them when the run consumes them), and the single
history event a backend appends without the core (``workflow_terminated``). What Python reads
of an event goes through the readers at the end of this module. Everything else in
``python/ostinato`` treats events as opaque bytes; a test (tests/test_events.py) fails when a
module other than this one writes an event dict or reads an event's fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "StartInfo",
    "TraceEvent",
    "activity_completed",
    "activity_failed",
    "cancel_requested",
    "carries_over",
    "child_completed",
    "child_failed",
    "closed_mark",
    "closed_mark_started",
    "command_target",
    "decode",
    "fields",
    "is_redacted",
    "kind",
    "redact",
    "run_origin",
    "seq",
    "seq_of",
    "signal_external_completed",
    "signal_received",
    "start_info",
    "started_event",
    "started_in",
    "task_time",
    "timed_out",
    "timer_fired",
    "trace_events",
    "workflow_failure",
    "workflow_started",
    "workflow_terminated",
]


# ---- inbox events (no seq) --------------------------------------------------------------


def workflow_started(
    name: str,
    payload: bytes,
    *,
    instance_id: str,
    run_id: str,
    queue: str,
    start_time: float,
    execution_deadline: float | None,
    **extra: str | None,
) -> bytes:
    """The event that starts a run; ``info`` becomes ``workflow.info()`` (read back by
    ``start_info``). ``extra``: how the run came about (``parent_instance_id``,
    ``continued_from_run_id``) and the trace it belongs to (``traceparent``, ``tracestate``:
    W3C trace context, see ``_tracing``); None values are left out."""
    info: dict[str, Any] = {
        "instance_id": instance_id,
        "run_id": run_id,
        "queue": queue,
        "start_time": start_time,
        "attempt": 1,
        **{key: value for key, value in extra.items() if value is not None},
    }
    if execution_deadline is not None:
        info["execution_deadline"] = execution_deadline
    return orjson.dumps(
        {"kind": "workflow_started", "name": name, "input": orjson.Fragment(payload), "info": info}
    )


def signal_received(name: str, payload: bytes) -> bytes:
    return orjson.dumps(
        {"kind": "signal_received", "name": name, "payload": orjson.Fragment(payload)}
    )


def cancel_requested(reason: str) -> bytes:
    return orjson.dumps({"kind": "cancel_requested", "reason": reason})


def timed_out() -> bytes:
    """The run's execution deadline passed."""
    return b'{"kind":"timed_out"}'


def timer_fired(timer_id: int) -> bytes:
    return orjson.dumps({"kind": "timer_fired", "id": timer_id})


def activity_completed(activity_id: int, result: bytes, attempt: int) -> bytes:
    return orjson.dumps(
        {
            "kind": "activity_completed",
            "id": activity_id,
            "result": orjson.Fragment(result),
            "attempt": attempt,
        }
    )


def activity_failed(activity_id: int, failure: bytes, attempt: int) -> bytes:
    return orjson.dumps(
        {
            "kind": "activity_failed",
            "id": activity_id,
            "failure": orjson.Fragment(failure),
            "attempt": attempt,
        }
    )


def child_completed(command_id: int, result: bytes) -> bytes:
    return orjson.dumps(
        {"kind": "child_completed", "id": command_id, "result": orjson.Fragment(result)}
    )


def child_failed(command_id: int, failure: bytes) -> bytes:
    return orjson.dumps(
        {"kind": "child_failed", "id": command_id, "failure": orjson.Fragment(failure)}
    )


def signal_external_completed(command_id: int, failure: bytes | None) -> bytes:
    """The answer to ``signal_external`` / ``cancel_external``: ``failure`` None when the
    message was delivered."""
    return orjson.dumps(
        {
            "kind": "signal_external_completed",
            "id": command_id,
            "failure": None if failure is None else orjson.Fragment(failure),
        }
    )


# ---- the history event a backend writes ---------------------------------------------------


def workflow_terminated(seq: int, reason: str) -> bytes:
    """``terminate()``: appended by the backend after the run's last event, numbered ``seq``."""
    return orjson.dumps({"kind": "workflow_terminated", "seq": seq, "reason": reason})


def closed_mark(started_event: bytes | None) -> bytes:
    """A backend's mark of a run closed without a workflow task (``claim_closed_runs``), with
    the run's ``workflow_started`` event when its history lacks it (no task took it)."""
    started = None if started_event is None else orjson.Fragment(started_event)
    return orjson.dumps({"kind": "closed_mark", "started": started})


def closed_mark_started(mark: bytes) -> bytes | None:
    """The ``workflow_started`` event a ``closed_mark`` carries, if any."""
    decoded = orjson.loads(mark)
    started = decoded.get("started") if isinstance(decoded, dict) else None
    return None if started is None else orjson.dumps(started)


def started_in(inbox: Sequence[bytes]) -> bytes | None:
    """The ``workflow_started`` event among a run's inbox events, if any."""
    for event in inbox:
        if b"workflow_started" in event:
            decoded = orjson.loads(event)
            if isinstance(decoded, dict) and decoded.get("kind") == "workflow_started":
                return event
    return None


# ---- readers ------------------------------------------------------------------------------

# Inbox events addressed to the instance rather than to one run: a run that closes (continue-
# as-new) hands them to the next run.
_INSTANCE_KINDS = ("signal_received", "cancel_requested")


def carries_over(event: bytes) -> bool:
    """True for an inbox event addressed to the instance, not to one run (a signal or a
    cancel request): continue-as-new hands it to the next run."""
    return orjson.loads(event).get("kind") in _INSTANCE_KINDS


_SEQ_PREFIX = re.compile(rb'\A\s*\{\s*"seq"\s*:\s*(\d+)\s*[,}]')


def seq_of(event: bytes) -> int:
    """The ``seq`` of a history event, reading as little of it as possible.

    The core writes ``seq`` first, so the common case is a prefix match; anything else falls
    back to a full parse. Raises ``ValueError`` when the event has no integer ``seq``.
    """
    match = _SEQ_PREFIX.match(event[:64])
    if match is not None:
        return int(match.group(1))
    try:
        decoded = orjson.loads(event)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"history event is not valid JSON: {exc}") from None
    seq = decoded.get("seq") if isinstance(decoded, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("history event has no integer 'seq' field")
    return seq


def decode(event: bytes) -> dict[str, Any]:
    """A stored event as a JSON-able dict (``handle.history()``); ``ValueError`` when it is
    not a JSON object."""
    try:
        decoded = orjson.loads(event)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a JSON object ({exc})") from None
    if not isinstance(decoded, dict):
        raise ValueError(f"not a JSON object ({decoded})")
    return decoded


def started_event(history: Sequence[bytes]) -> tuple[str, StartInfo]:
    """The workflow name and ``info`` of the ``workflow_started`` event near the start of
    ``history``; ``ValueError`` when there is none."""
    for raw in history[:3]:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"history event is not JSON: {exc}") from None
        if isinstance(event, dict) and event.get("kind") == "workflow_started":
            info = event.get("info")
            return str(event.get("name", "")), start_info(orjson.dumps(info) if info else None)
    raise ValueError("history has no workflow_started event near its start")


@dataclass(frozen=True, slots=True)
class StartInfo:
    """The ``info`` of a ``workflow_started`` event (what ``workflow_started`` wrote)."""

    instance_id: str | None
    run_id: str | None
    queue: str | None
    start_time: float
    attempt: int
    parent_instance_id: str | None
    continued_from_run_id: str | None
    execution_deadline: float | None
    # W3C trace context of the span the run was started under (see _tracing), if any.
    traceparent: str | None = None
    tracestate: str | None = None


def start_info(info: bytes | None) -> StartInfo:
    """Reads the ``info`` of a ``workflow_started`` event (``Job.info``)."""
    data = orjson.loads(info) if info else {}
    if not isinstance(data, dict):
        data = {}
    deadline = data.get("execution_deadline")

    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value)

    return StartInfo(
        instance_id=text("instance_id"),
        run_id=text("run_id"),
        queue=text("queue"),
        start_time=float(data.get("start_time", 0)),
        attempt=int(data.get("attempt", 1)),
        parent_instance_id=text("parent_instance_id"),
        continued_from_run_id=text("continued_from_run_id"),
        execution_deadline=float(deadline) if deadline is not None else None,
        traceparent=text("traceparent"),
        tracestate=text("tracestate"),
    )


def workflow_failure(event: bytes) -> dict[str, Any] | None:
    """The failure (a JSON object) of a ``workflow_failed`` event; None for any other event
    or one that cannot be read."""
    try:
        data = orjson.loads(event)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("kind") != "workflow_failed":
        return None
    failure = data.get("failure")
    return failure if isinstance(failure, dict) else None


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """Something that happened to a run, for its ``RunWorkflow`` span: when (Unix seconds,
    the time of the workflow task that recorded it), what, and its details."""

    name: str
    time: float
    attributes: dict[str, str | int]


_KIND_PREFIX = re.compile(rb'\A\s*\{\s*"seq"\s*:\s*\d+\s*,\s*"kind"\s*:\s*"([a-z_]+)"')
_TRACED_KINDS = frozenset(
    {
        b"task_started",
        b"signal_received",
        b"timer_started",
        b"timer_fired",
        b"timer_canceled",
        b"cancel_requested",
        b"timed_out",
        b"child_scheduled",
        b"child_completed",
        b"child_failed",
    }
)


def trace_events(history: Sequence[bytes], now: float = 0.0) -> list[TraceEvent]:
    """The signals, timers, cancel requests and children of a run's history (or of the new
    events of a task: ``now`` is then the time of the task before), in order. Events that
    cannot be read are skipped: a span is not worth failing for. Only the kinds it reports
    are parsed (the core writes ``seq`` and ``kind`` first), not activity results."""
    out: list[TraceEvent] = []
    for raw in history:
        match = _KIND_PREFIX.match(raw[:80])
        if match is not None and match.group(1) not in _TRACED_KINDS:
            continue
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("kind")
        if kind == "task_started":
            time_us = event.get("time")
            if isinstance(time_us, int):
                now = time_us / 1_000_000
            continue
        attributes: dict[str, str | int] = {}
        if kind == "signal_received":
            name, attributes["signal.name"] = "signal", str(event.get("name", ""))
        elif kind == "timer_started":
            name = "timer started"
            attributes["timer.id"] = _int(event.get("id"))
            fire_at = event.get("fire_at")
            if isinstance(fire_at, int):
                attributes["timer.duration_s"] = str(round(fire_at / 1_000_000 - now, 6))
        elif kind == "timer_fired":
            name, attributes["timer.id"] = "timer fired", _int(event.get("id"))
        elif kind == "timer_canceled":
            name, attributes["timer.id"] = "timer canceled", _int(event.get("id"))
        elif kind == "cancel_requested":
            name, attributes["reason"] = "cancel requested", str(event.get("reason", ""))
        elif kind == "timed_out":
            name = "execution timeout"
        elif kind == "child_scheduled":
            name = "child started"
            attributes["child.workflow"] = str(event.get("name", ""))
            attributes["child.instance_id"] = command_target(event) or ""
        elif kind in ("child_completed", "child_failed"):
            name = kind.replace("_", " ")
            attributes["child.id"] = _int(event.get("id"))
        else:
            continue
        out.append(TraceEvent(name, now, attributes))
    return out


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# ---- redaction (``handle.redact()``, docs/retention.md) -----------------------------------

# The fields that carry a payload or free text: set to null by ``redact``. ``options`` keeps
# only the target ``instance_id`` (an id of the event skeleton); everything else of an event
# (kind, seq, id, name, attempt, times, info) stays.
_SCRUBBED = ("input", "result", "payload", "value", "failure", "reason")


def redact(event: bytes) -> bytes:
    """``event`` with every payload and free text scrubbed and ``"redacted": true`` added;
    its kind, seq, ids, names and times kept. ``ValueError`` for an event that is not a JSON
    object."""
    data = decode(event)
    for key in _SCRUBBED:
        if key in data:
            data[key] = None
    options = data.get("options")
    if options is not None:
        target = options.get("instance_id") if isinstance(options, dict) else None
        data["options"] = {"instance_id": target} if isinstance(target, str) else None
    data["redacted"] = True
    return orjson.dumps(data)


def is_redacted(history: Sequence[bytes]) -> bool:
    """Whether the run of ``history`` was redacted (its first event says so)."""
    if not history:
        return False
    try:
        return decode(history[0]).get("redacted") is True
    except ValueError:
        return False


# ---- reading decoded history events (``handle.history()`` dicts) -----------------------------


def kind(event: Mapping[str, Any]) -> str:
    """The kind of a decoded history event (``""`` when it has none)."""
    value = event.get("kind")
    return value if isinstance(value, str) else ""


def seq(event: Mapping[str, Any]) -> int:
    """The ``seq`` of a decoded history event (0 when it has none)."""
    value = event.get("seq")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded event's own fields: everything but its ``seq`` and ``kind``."""
    return {k: v for k, v in event.items() if k not in ("seq", "kind")}


def task_time(event: Mapping[str, Any]) -> float | None:
    """When a ``task_started`` event's workflow task began, in Unix seconds (None otherwise)."""
    time_us = event.get("time")
    if event.get("kind") != "task_started" or not isinstance(time_us, int):
        return None
    return time_us / 1_000_000


def command_target(event: Mapping[str, Any]) -> str | None:
    """The instance a ``child_scheduled``, ``signal_external_sent`` or
    ``external_cancel_requested`` event addresses (``options.instance_id``), if recorded."""
    options = event.get("options")
    target = options.get("instance_id") if isinstance(options, Mapping) else None
    return target if isinstance(target, str) else None


def run_origin(event: Mapping[str, Any]) -> dict[str, str]:
    """How the run of a ``workflow_started`` event came about: ``parent_instance_id`` and/or
    ``continued_from_run_id`` from its ``info`` (empty for a run started by a client)."""
    info = event.get("info")
    if not isinstance(info, Mapping):
        return {}
    keys = ("parent_instance_id", "continued_from_run_id")
    return {k: info[k] for k in keys if isinstance(info.get(k), str)}
