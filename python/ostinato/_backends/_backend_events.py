"""The few events and failure payloads a backend writes itself (events built by
``ostinato._events``, the one module that knows event JSON): a run's deadline, a
terminate, a child's outcome for its parent, a signal_external's outcome for its sender.

Backends never parse payloads. These builders splice the caller's payload bytes in verbatim
(``orjson.Fragment``), so a result or failure reaches the parent byte for byte.
"""

from __future__ import annotations

import orjson

from .. import _events
from ._types import RunStatus

__all__ = [
    "CLOSED_MARK_AT",
    "CONFLICT_TERMINATE_REASON",
    "child_closed_event",
    "child_start_refused_event",
    "closed_mark_event",
    "started_in_inbox",
    "started_of_mark",
    "failure_payload",
    "signal_external_completed_event",
    "signal_target_missing",
    "terminated_failure",
    "timed_out_event",
    "workflow_terminated_event",
]

# The reason recorded on a run terminated by a start with id_conflict="terminate_existing".
CONFLICT_TERMINATE_REASON = "a new run was started with id_conflict='terminate_existing'"


def failure_payload(error_type: str, message: str) -> bytes:
    """A failure payload in the shape the runtime rebuilds errors from."""
    return orjson.dumps({"type": error_type, "message": message})


def timed_out_event() -> bytes:
    return _events.timed_out()


def workflow_terminated_event(seq: int, reason: str) -> bytes:
    return _events.workflow_terminated(seq, reason)


# A terminated run's "closed, not yet reported" mark (``Backend.claim_closed_runs``) is a row
# of its inbox (SQL backends) visible at this time, far past any real event's (the year
# 318,857): no claim or wake-up, which look at open runs and times up to now, ever meets it,
# and the claim of marks finds them by the inbox's visible_at index. No schema change.
CLOSED_MARK_AT = 1e13


def closed_mark_event(started_event: bytes | None) -> bytes:
    """The mark left in a terminated run's inbox, with the run's ``workflow_started`` event
    when no workflow task had taken it yet (the run's history then lacks it)."""
    return _events.closed_mark(started_event)


def started_of_mark(mark: bytes) -> bytes | None:
    """The ``workflow_started`` event a mark carries, if any."""
    return _events.closed_mark_started(mark)


def started_in_inbox(events: list[bytes]) -> bytes | None:
    """The ``workflow_started`` event among a run's inbox events (a run no task took yet)."""
    return _events.started_in(events)


def terminated_failure(instance_id: str, reason: str) -> bytes:
    return failure_payload(
        "WorkflowTerminatedError", f"workflow {instance_id!r} was terminated: {reason}"
    )


def signal_external_completed_event(command_id: int, failure: bytes | None) -> bytes:
    return _events.signal_external_completed(command_id, failure)


def child_start_refused_event(command_id: int, instance_id: str, open_run: bool) -> bytes:
    """``child_failed`` for a child whose id is taken (open run, or refused id reuse)."""
    if open_run:
        message = f"child workflow id {instance_id!r} already has a running workflow"
    else:
        message = f"child workflow id {instance_id!r} was used before and id reuse is refused"
    failure = failure_payload("WorkflowAlreadyStartedError", message)
    return _events.child_failed(command_id, failure)


_CLOSED_CHILD_ERRORS = {
    RunStatus.CANCELED: ("WorkflowCancelledError", "was cancelled"),
    RunStatus.TIMED_OUT: ("WorkflowTimedOutError", "timed out"),
    RunStatus.TERMINATED: ("WorkflowTerminatedError", "was terminated"),
}


def child_closed_event(
    command_id: int, instance_id: str, status: RunStatus, result: bytes | None
) -> bytes:
    """The event a parent receives when its child run closes (not for continue-as-new).

    completed -> ``child_completed`` with the result payload as is; failed -> ``child_failed``
    with the child's failure payload as is; canceled / timed_out / terminated -> a
    ``child_failed`` whose failure names the matching error type, so the parent raises the same
    error class whatever the child's code recorded.
    """
    if status is RunStatus.COMPLETED:
        return _events.child_completed(command_id, result or b"null")
    if status is RunStatus.FAILED:
        failure = result or failure_payload(
            "WorkflowFailedError", f"child workflow {instance_id!r} failed"
        )
    elif status is RunStatus.TERMINATED and result is not None:
        failure = result  # terminate() already stored the terminated failure with its reason
    else:
        error_type, what = _CLOSED_CHILD_ERRORS.get(
            status, ("WorkflowFailedError", f"closed with status {status.value}")
        )
        failure = failure_payload(error_type, f"child workflow {instance_id!r} {what}")
    return _events.child_failed(command_id, failure)


def signal_target_missing(instance_id: str, exists: bool) -> bytes:
    if exists:
        return failure_payload(
            "WorkflowNotRunningError", f"workflow {instance_id!r} is not running"
        )
    return failure_payload("WorkflowNotFoundError", f"no workflow with id {instance_id!r}")
