"""Building blocks of the conformance suite: a clock that moves only when told to, and
builders that drive a backend the way the runtime does (claim a workflow task, write a batch
of history events -- ``task_started``, the inbound events it consumed, then command events --
and commit it with the side effects the commands imply).

They are public (``ostinato.testing.conformance``) for tests of your own backend beyond the
suite.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson

from ...backends import (
    Backend,
    Clock,
    NewActivity,
    NewRun,
    ParentRef,
    RunClose,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
)

__all__ = [
    "T0",
    "BackendFactory",
    "FakeClock",
    "activity",
    "batch",
    "child_run",
    "claim_for",
    "claim_one",
    "ev",
    "full_commit",
    "inbox_kinds",
    "kinds",
    "new_run",
    "opened",
    "run_to_close",
    "schedule_activity",
    "seqs",
    "signal_event",
    "start",
    "started_event",
]

# Builds a new, unopened backend on an empty store that reads time from the given clock.
BackendFactory = Callable[[Clock], Backend]

T0 = 1_800_000_000.0


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@asynccontextmanager
async def opened(make_backend: BackendFactory, clock: Clock) -> AsyncIterator[Backend]:
    """A backend from ``make_backend(clock)``, opened, and closed afterwards."""
    backend = make_backend(clock)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


def ev(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"kind": kind, **fields})


def started_event(name: str = "wf", args: list[Any] | None = None) -> bytes:
    return ev("workflow_started", name=name, input=args or [], info={})


def signal_event(name: str = "sig", payload: Any = None) -> bytes:
    return ev("signal_received", name=name, payload=payload)


def new_run(
    instance_id: str | None = None,
    *,
    name: str = "wf",
    queue: str = "default",
    run_id: str | None = None,
    **kwargs: Any,
) -> NewRun:
    return NewRun(
        instance_id=instance_id or f"wf-{uuid.uuid4().hex[:8]}",
        run_id=run_id or uuid.uuid4().hex,
        workflow_name=name,
        queue=queue,
        started_event=kwargs.pop("started_event", None) or started_event(name),
        **kwargs,
    )


def child_run(
    parent: WorkflowTask, command_id: int, instance_id: str, name: str = "child", **kw: Any
) -> NewRun:
    ref = ParentRef(parent.instance_id, parent.run_id, command_id)
    return new_run(instance_id, name=name, queue=kw.pop("queue", parent.queue), parent=ref, **kw)


def batch(task: WorkflowTask, *commands: dict[str, Any]) -> list[bytes]:
    """History events of one task: task_started, the consumed inbound events, commands."""
    seq = task.history_length
    out: list[bytes] = []

    def add(fields: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        out.append(orjson.dumps({"seq": seq, **fields}))

    add({"kind": "task_started", "time": 0})
    for item in task.inbox:
        add(orjson.loads(item.event))
    for command in commands:
        add(command)
    return out


def full_commit(task: WorkflowTask, *commands: dict[str, Any], **kwargs: Any) -> WorkflowCommit:
    """A commit consuming the whole inbox of ``task``."""
    return WorkflowCommit(
        new_events=batch(task, *commands),
        consumed_inbox=[item.id for item in task.inbox],
        **kwargs,
    )


def kinds(events: list[bytes]) -> list[str]:
    return [orjson.loads(e)["kind"] for e in events]


def inbox_kinds(task: WorkflowTask) -> list[str]:
    return [orjson.loads(item.event)["kind"] for item in task.inbox]


def seqs(events: list[bytes]) -> list[int]:
    return [orjson.loads(e)["seq"] for e in events]


async def claim_one(backend: Backend, queue: str = "default", lease: float = 30.0) -> WorkflowTask:
    tasks = await backend.claim_workflow_tasks([queue], lease, 1)
    assert len(tasks) == 1, f"expected one workflow task on {queue!r}, got {tasks}"
    return tasks[0]


async def claim_for(backend: Backend, instance_id: str, queue: str = "default") -> WorkflowTask:
    """Claim tasks until the one of ``instance_id`` comes up (others are released)."""
    tasks = await backend.claim_workflow_tasks([queue], 30.0, 1000)
    mine = [t for t in tasks if t.instance_id == instance_id]
    for other in tasks:
        if other.instance_id != instance_id:
            await backend.release_workflow_task(other)
    assert len(mine) == 1, f"no claimable workflow task for {instance_id!r}"
    return mine[0]


async def start(backend: Backend, instance_id: str | None = None, **kwargs: Any) -> NewRun:
    run = new_run(instance_id, **kwargs)
    await backend.create_run(run)
    return run


async def run_to_close(
    backend: Backend,
    instance_id: str,
    status: RunStatus = RunStatus.COMPLETED,
    result: bytes | None = b'"done"',
    queue: str = "default",
) -> None:
    """Claim the run's task and close it with ``status``."""
    task = await claim_for(backend, instance_id, queue)
    commands: dict[RunStatus, dict[str, Any]] = {
        RunStatus.COMPLETED: {"kind": "workflow_completed", "result": None},
        RunStatus.FAILED: {"kind": "workflow_failed", "failure": None},
        RunStatus.CANCELED: {"kind": "workflow_canceled"},
        RunStatus.TIMED_OUT: {"kind": "workflow_failed", "failure": None},
    }
    command = commands[status]
    await backend.commit_workflow_task(
        task, full_commit(task, command, close=RunClose(status, result))
    )


def activity(
    activity_id: int = 1, name: str = "act", queue: str = "default", payload: bytes = b'["x"]'
) -> NewActivity:
    """A ``NewActivity`` for a commit."""
    return NewActivity(activity_id, name, queue, payload, b'{"retry":null}')


async def schedule_activity(b: Backend, instance_id: str, *acts: NewActivity) -> None:
    """Claim the run's task and commit it scheduling ``acts``."""
    task = await claim_for(b, instance_id)
    commands = [{"kind": "activity_scheduled", "id": a.activity_id, "name": a.name} for a in acts]
    await b.commit_workflow_task(task, full_commit(task, *commands, activities=list(acts)))
