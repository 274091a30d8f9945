"""Building the inbox events the runtime writes (see docs/internals/reducer.md)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "activity_completed",
    "activity_failed",
    "cancel_requested",
    "signal_received",
    "timer_fired",
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
