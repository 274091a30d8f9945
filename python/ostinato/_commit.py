"""From one workflow task's output to the backend's commit: a pure translation.

The run (``_run.WorkflowRun``) executes workflow code and hands back a ``StepOutput``: the
new history events, the reducer's commands, the variables set, and how the run closed. This
module turns that into the ``WorkflowCommit`` a backend applies atomically. It reads no clock
and touches no store, so it is tested without a backend (tests/test_commit.py).

Naming: the reducer's outputs are *commands*; *tasks* are units of work claimed from a
backend (a workflow task, an activity task).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from . import _core, _events
from ._backends._types import (
    NewActivity,
    NewRun,
    NewTimer,
    OutgoingSignal,
    ParentRef,
    RunClose,
    RunStatus,
    WorkflowCommit,
)
from ._checks import check_priority, check_tags
from ._tracing import RunTrace, traceparent

__all__ = ["StepOutput", "build_commit"]


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What one workflow task of a run produced, in the run's own terms."""

    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    new_events: list[bytes]
    commands: Sequence[_core.Command]
    vars: Mapping[str, bytes]
    # How the run closed (RunStatus values), decided by the reducer; None while open.
    close_status: str | None
    # Why the run was asked to cancel, passed on to the children it cancels.
    cancel_reason: str | None
    # Absolute deadline of the whole execution, inherited by continue-as-new.
    execution_deadline: float | None
    # Where the run sits in a trace: its children start under its span, the run it
    # continues as under the same parent (see _tracing).
    trace: RunTrace | None = None


def _new_run_id() -> str:
    return uuid.uuid4().hex


def build_commit(
    run: StepOutput,
    *,
    consumed_inbox: list[int],
    now: float,
    sticky_worker: str | None,
    new_run_id: Callable[[], str] = _new_run_id,
) -> WorkflowCommit:
    """The backend's commit for one workflow task of ``run``: its new events, the inbox
    events it consumed, and what its commands ask of the store (activity tasks, timers,
    children, messages to other runs, how the run closed). ``now``: the task's time, in
    seconds; ``sticky_worker``: the worker that keeps the run cached, if any."""
    commit = WorkflowCommit(
        new_events=run.new_events,
        consumed_inbox=consumed_inbox,
        vars=run.vars,
        sticky_worker=sticky_worker,
    )
    for out in run.commands:
        kind = out.kind
        if kind == "activity":
            options = orjson.loads(out.options or b"{}")
            schedule_to_close = options.get("schedule_to_close")
            commit.activities.append(
                NewActivity(
                    activity_id=out.id,
                    name=out.name,
                    queue=options.get("queue") or run.queue,
                    input=out.payload or b"[]",
                    options=out.options or b"{}",
                    deadline=now + schedule_to_close if schedule_to_close else None,
                    priority=_priority(options.get("priority"), "start_activity() priority"),
                )
            )
        elif kind == "timer":
            commit.timers.append(
                NewTimer(out.id, out.time / 1_000_000, _events.timer_fired(out.id))
            )
        elif kind == "cancel_timer":
            commit.cancel_timers.append(out.id)
        elif kind == "cancel_activity":
            commit.cancel_activities.append(out.id)
        elif kind == "start_child":
            options = orjson.loads(out.options or b"{}")
            timeout = options.get("execution_timeout")
            child_deadline = now + timeout if timeout else None
            child_run_id = new_run_id()
            child_queue = options.get("queue") or run.queue
            commit.children.append(
                NewRun(
                    instance_id=options["instance_id"],
                    run_id=child_run_id,
                    workflow_name=out.name,
                    queue=child_queue,
                    started_event=_events.workflow_started(
                        out.name,
                        out.payload or b"[]",
                        instance_id=options["instance_id"],
                        run_id=child_run_id,
                        queue=child_queue,
                        start_time=now,
                        execution_deadline=child_deadline,
                        parent_instance_id=run.instance_id,
                        traceparent=run.trace.child_traceparent if run.trace else None,
                        tracestate=run.trace.tracestate if run.trace else None,
                    ),
                    parent=ParentRef(run.instance_id, run.run_id, out.id),
                    execution_deadline=child_deadline,
                    tags=_child_tags(options.get("tags")),
                    priority=_priority(options.get("priority"), "start_child() priority"),
                )
            )
        elif kind == "cancel_child":
            options = orjson.loads(out.options or b"{}")
            reason = f"parent {run.instance_id} cancelled it"
            if run.cancel_reason:
                reason = f"{reason} (the parent was cancelled: {run.cancel_reason})"
            commit.cancel_instances.append(
                (options["instance_id"], _events.cancel_requested(reason))
            )
        elif kind == "signal_external":
            options = orjson.loads(out.options or b"{}")
            event = _events.signal_received(out.name, out.payload or b"null")
            commit.signals.append(OutgoingSignal(options["instance_id"], event, out.id))
        elif kind == "cancel_external":
            # Delivered like a signal (the sender learns whether the target is open),
            # as a cancel request.
            options = orjson.loads(out.options or b"{}")
            event = _events.cancel_requested(orjson.loads(out.payload or b'""'))
            commit.signals.append(OutgoingSignal(options["instance_id"], event, out.id))
        elif kind == "complete":
            commit.close = RunClose(_close_status(run), out.payload)
        elif kind == "fail":
            # failed, or timed_out when the execution deadline closed the run: the reducer
            # decides from what closed it, never from what the failure payload says.
            commit.close = RunClose(_close_status(run), out.payload or b"{}")
        elif kind == "canceled":
            commit.close = RunClose(
                _close_status(run),
                orjson.dumps(
                    {
                        "type": "WorkflowCancelledError",
                        "message": f"workflow {run.workflow_name!r} was cancelled",
                    }
                ),
            )
        elif kind == "continue_as_new":
            options = orjson.loads(out.options or b"{}")
            name = options.get("workflow") or run.workflow_name
            next_run_id = new_run_id()
            queue = options.get("queue") or run.queue
            # execution_timeout covers the whole execution: the next run inherits the
            # deadline (and the parent link, which the backend carries over).
            commit.close = RunClose(
                _close_status(run),
                None,
                next_run=NewRun(
                    instance_id=run.instance_id,
                    run_id=next_run_id,
                    workflow_name=name,
                    queue=queue,
                    started_event=_events.workflow_started(
                        name,
                        out.payload or b"[]",
                        instance_id=run.instance_id,
                        run_id=next_run_id,
                        queue=queue,
                        start_time=now,
                        execution_deadline=run.execution_deadline,
                        continued_from_run_id=run.run_id,
                        traceparent=_continued_traceparent(run.trace),
                        tracestate=run.trace.tracestate if run.trace else None,
                    ),
                    execution_deadline=run.execution_deadline,
                ),
            )
        else:  # pragma: no cover - the core only emits the kinds above
            raise RuntimeError(f"unknown command kind from the core: {kind!r}")
    return commit


def _continued_traceparent(trace: RunTrace | None) -> str | None:
    """The next run of a continue-as-new chain starts under the span the chain started
    under; a chain started without one nests under its first run."""
    if trace is None:
        return None
    if trace.parent_span_id is None:
        return trace.child_traceparent
    return traceparent(trace.trace_id, trace.parent_span_id, trace.flags)


def _close_status(run: StepOutput) -> RunStatus:
    """The status the reducer closed the run with (a closing command always sets it)."""
    if run.close_status is None:  # pragma: no cover - the core closes the run with it
        raise RuntimeError("the core emitted a closing command but reports the run open")
    return RunStatus(run.close_status)


def _child_tags(value: object) -> dict[str, str]:
    """The tags a start_child command's options carry (checked when the workflow gave them;
    a history edited by hand to hold others is refused the same way)."""
    return {} if value is None else check_tags(value, "start_child() tags")


def _priority(value: object, what: str) -> int:
    """The priority a command's options carry: absent (histories from before priorities, or
    the default) is 0; checked like the workflow's argument was."""
    return 0 if value is None else check_priority(value, what)
