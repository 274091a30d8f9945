"""Building the inbox events the runtime writes (see docs/internals/reducer.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "activity_completed",
    "activity_failed",
    "cancel_requested",
    "command_target",
    "run_origin",
    "signal_received",
    "task_started",
    "task_time",
    "timer_fired",
    "with_seq",
    "workflow_failed",
    "workflow_started",
]


def workflow_started(
    name: str,
    payload: bytes,
    *,
    instance_id: str,
    run_id: str,
    queue: str,
    start_time: float,
    execution_deadline: float | None,
    **extra: str,
) -> bytes:
    """The event that starts a run; ``info`` becomes ``workflow.info()``. ``extra``: how the
    run came about (``parent_instance_id``, ``continued_from_run_id``)."""
    info: dict[str, Any] = {
        "instance_id": instance_id,
        "run_id": run_id,
        "queue": queue,
        "start_time": start_time,
        "attempt": 1,
        **extra,
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


def with_seq(event: bytes, seq: int) -> bytes:
    """An inbox event as a history event numbered ``seq``."""
    data = orjson.loads(event)
    return orjson.dumps({"seq": seq, **data})


def task_started(seq: int, time_us: int) -> bytes:
    """The history event opening a workflow task written without the reducer (a run failed
    by the worker option ``nondeterminism="fail"``)."""
    return orjson.dumps({"seq": seq, "kind": "task_started", "time": time_us})


def workflow_failed(seq: int, failure: bytes) -> bytes:
    """The history event closing a run as failed, written without the reducer."""
    return orjson.dumps(
        {"seq": seq, "kind": "workflow_failed", "failure": orjson.Fragment(failure)}
    )


# ---- reading decoded history events (``handle.history()`` dicts) -----------------------------


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
