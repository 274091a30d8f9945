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
    InboxEvent,
    NewActivity,
    NewRun,
    NewTimer,
    OutgoingSignal,
    ParentRef,
    RunClose,
    RunStatus,
    WorkflowCommit,
)

__all__ = ["StepOutput", "build_commit", "failed_run_commit"]


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What one workflow task of a run produced, in the run's own terms."""

    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    new_events: list[bytes]
    commands: Sequence[_core.Task]
    vars: Mapping[str, bytes]
    # The execution deadline (the timed_out job) closed the run: its status is timed_out.
    timed_out: bool
    # Why the run was asked to cancel, passed on to the children it cancels.
    cancel_reason: str | None
    # Absolute deadline of the whole execution, inherited by continue-as-new.
    execution_deadline: float | None


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
                    ),
                    parent=ParentRef(run.instance_id, run.run_id, out.id),
                    execution_deadline=child_deadline,
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
            commit.close = RunClose(RunStatus.COMPLETED, out.payload)
        elif kind == "fail":
            # What closed the run decides its status (the execution deadline's timed_out
            # job), never what the failure payload says.
            status = RunStatus.TIMED_OUT if run.timed_out else RunStatus.FAILED
            commit.close = RunClose(status, out.payload or b"{}")
        elif kind == "canceled":
            commit.close = RunClose(
                RunStatus.CANCELED,
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
                RunStatus.CONTINUED_AS_NEW,
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
                    ),
                    execution_deadline=run.execution_deadline,
                ),
            )
        else:  # pragma: no cover - the core only emits the kinds above
            raise RuntimeError(f"unknown command kind from the core: {kind!r}")
    return commit


def failed_run_commit(
    *, history_length: int, inbox: Sequence[InboxEvent], failure: bytes, now: float
) -> WorkflowCommit:
    """Close a run as failed without running its code (the worker option
    ``nondeterminism="fail"``): the task's inbox events are recorded, then the failure."""
    seq = history_length + 1
    events = [_events.task_started(seq, int(now * 1_000_000))]
    for item in inbox:
        seq += 1
        events.append(_events.with_seq(item.event, seq))
    events.append(_events.workflow_failed(seq + 1, failure))
    return WorkflowCommit(
        new_events=events,
        consumed_inbox=[item.id for item in inbox],
        close=RunClose(RunStatus.FAILED, failure),
    )
