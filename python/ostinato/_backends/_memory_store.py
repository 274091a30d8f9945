"""The memory backend's tables: its rows as dataclasses, and ``_MemoryStore``, the dicts that
hold them with the ``_apply.Store`` operations over them (the shared storage algorithm runs on
these). ``memory.MemoryBackend`` puts the backend's operations on top.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from ._memory_hooks import HookTables
from ._types import (
    NewActivity,
    NewRun,
    ParentRef,
    RunInfo,
    RunStatus,
)

__all__ = ["_ActivityTask", "_InboxItem", "_MemoryStore", "_Run"]


@dataclass(eq=False)
class _Run:
    pk: int  # creation order across all instances
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    created_at: float
    updated_at: float
    parent: ParentRef | None
    status: RunStatus = RunStatus.RUNNING
    closed_at: float | None = None
    history: list[bytes] = field(default_factory=list)
    result: bytes | None = None
    blocked_reason: str | None = None
    failed_attempts: int = 0
    # Not claimable before this time (start delay, back-off after a failed task).
    ready_at: float | None = None
    lease_token: str | None = None
    lease_expires_at: float | None = None
    # The worker that has the run cached since its last task (see claim_workflow_tasks).
    sticky_worker: str | None = None
    next_run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Set while paused (``pause``): no workflow task or activity attempt is handed out.
    paused_at: float | None = None
    pause_reason: str | None = None
    pauses: int = 0  # how many times it was paused (numbers the "paused" hook changes)
    redacted_at: float | None = None  # when handle.redact() or the redaction sweep scrubbed it
    priority: int = 0
    vars: dict[str, bytes] = field(default_factory=dict)
    inbox: list[_InboxItem] = field(default_factory=list)  # arrival order

    def info(self) -> RunInfo:
        return RunInfo(
            instance_id=self.instance_id,
            run_id=self.run_id,
            workflow_name=self.workflow_name,
            queue=self.queue,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            closed_at=self.closed_at,
            history_length=len(self.history),
            result=self.result,
            blocked_reason=self.blocked_reason,
            parent=self.parent,
            next_run_id=self.next_run_id,
            tags=dict(self.tags),
            paused_at=self.paused_at,
            pause_reason=self.pause_reason,
            priority=self.priority,
        )


@dataclass(eq=False)
class _InboxItem:
    id: int
    visible_at: float
    event: bytes
    timer_id: int | None = None


@dataclass(eq=False)
class _ActivityTask:
    task_id: int
    run: _Run
    activity_id: int
    name: str
    queue: str
    input: bytes
    options: bytes
    scheduled_at: float
    visible_at: float
    deadline: float | None
    attempt: int = 0
    lease_token: str | None = None
    lease_expires_at: float | None = None
    heartbeat_details: bytes | None = None
    cancel_requested: bool = False
    last_failure: bytes | None = None
    priority: int = 0

    def is_running(self, now: float) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now


class _MemoryStore:
    """The tables, and the ``_apply.Store`` operations over them. ``wake`` collects the
    wake-up keys of the operation under way (the backend sets it under its lock)."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], _Run] = {}
        # instance id -> its runs, oldest first
        self.instances: dict[str, list[_Run]] = {}
        self.activities: dict[int, _ActivityTask] = {}
        # Open runs whose inbox is not empty: the only ones a claim has to look at.
        self.pending: set[_Run] = set()
        self.wake: set[Hashable] = set()
        # The activity tasks the last insert_activities queued (eager dispatch leases some).
        self.inserted: list[_ActivityTask] = []
        self.hooks = HookTables()
        # Runs closed without a workflow task, not yet claimed (claim_closed_runs), with
        # their marks (_backend_events.closed_mark_event).
        self.closed_to_report: list[tuple[_Run, bytes]] = []
        self._next_pk = 0
        self._next_inbox_id = 0
        self._next_task_id = 0

    # ---- reading ------------------------------------------------------------------------

    def history_length(self, run: _Run) -> int:
        return len(run.history)

    def latest_run(self, instance_id: str) -> _Run:
        return self.instances[instance_id][-1]

    def open_run(self, instance_id: str) -> _Run | None:
        runs = self.instances.get(instance_id)
        return runs[-1] if runs and runs[-1].status.is_open else None

    def open_run_by_id(self, instance_id: str, run_id: str) -> _Run | None:
        run = self.runs.get((instance_id, run_id))
        return run if run is not None and run.status.is_open else None

    def instance_exists(self, instance_id: str) -> bool:
        return bool(self.instances.get(instance_id))

    def start_refusal(self, new: NewRun) -> tuple[bool, bool]:
        runs = self.instances.get(new.instance_id)
        if not runs:
            return False, False
        if runs[-1].status.is_open:
            return True, True
        if new.id_reuse == "refuse" or (new.instance_id, new.run_id) in self.runs:
            return True, False
        return False, False

    def open_children(self, run: _Run) -> list[_Run]:
        return [
            child
            for child in self.runs.values()
            if child.status.is_open
            and child.parent is not None
            and child.parent.instance_id == run.instance_id
            and child.parent.run_id == run.run_id
        ]

    def inbox_events(self, run: _Run) -> list[bytes]:
        return [item.event for item in run.inbox]

    # ---- writing ------------------------------------------------------------------------

    def insert_run(self, new: NewRun, now: float) -> _Run:
        self._next_pk += 1
        run = _Run(
            pk=self._next_pk,
            instance_id=new.instance_id,
            run_id=new.run_id,
            workflow_name=new.workflow_name,
            queue=new.queue,
            created_at=now,
            updated_at=now,
            parent=new.parent,
            ready_at=new.visible_at,
            tags=dict(new.tags),
            priority=new.priority,
        )
        self.runs[(run.instance_id, run.run_id)] = run
        self.instances.setdefault(run.instance_id, []).append(run)
        return run

    def push(self, run: _Run, event: bytes, visible_at: float, timer_id: int | None = None) -> None:
        self._next_inbox_id += 1
        run.inbox.append(_InboxItem(self._next_inbox_id, visible_at, bytes(event), timer_id))
        self.pending.add(run)
        self.wake.add(("workflow", run.queue))

    def append_history(self, run: _Run, first_seq: int, events: Sequence[bytes]) -> None:
        run.history.extend(bytes(e) for e in events)

    def set_history_length(self, run: _Run, length: int) -> None:
        pass  # the length of the history list

    def consume_inbox(self, run: _Run, inbox_ids: Sequence[int]) -> None:
        consumed = set(inbox_ids)
        run.inbox = [item for item in run.inbox if item.id not in consumed]
        if not run.inbox:
            self.pending.discard(run)

    def insert_activities(self, run: _Run, activities: Sequence[NewActivity], now: float) -> None:
        self.inserted = []
        for activity in activities:
            self._next_task_id += 1
            self.activities[self._next_task_id] = task = _ActivityTask(
                task_id=self._next_task_id,
                run=run,
                activity_id=activity.activity_id,
                name=activity.name,
                queue=activity.queue,
                input=bytes(activity.input),
                options=bytes(activity.options),
                scheduled_at=now,
                visible_at=now,
                deadline=activity.deadline,
                priority=activity.priority,
            )
            self.inserted.append(task)
            self.wake.add(("activity", activity.queue))

    def cancel_activities(self, run: _Run, activity_ids: Sequence[int], now: float) -> None:
        cancelled = set(activity_ids)
        for task in [
            t for t in self.activities.values() if t.run is run and t.activity_id in cancelled
        ]:
            if task.is_running(now):
                task.cancel_requested = True
            else:
                del self.activities[task.task_id]

    def cancel_timers(self, run: _Run, timer_ids: Sequence[int]) -> None:
        cancelled = set(timer_ids)
        run.inbox = [i for i in run.inbox if i.timer_id is None or i.timer_id not in cancelled]
        if not run.inbox:
            self.pending.discard(run)

    def upsert_vars(self, run: _Run, values: Mapping[str, bytes]) -> None:
        run.vars.update({k: bytes(v) for k, v in values.items()})

    def finish_task(
        self, run: _Run, history_length: int, now: float, sticky_worker: str | None
    ) -> None:
        run.lease_token = None
        run.lease_expires_at = None
        run.ready_at = None
        run.blocked_reason = None
        run.failed_attempts = 0
        run.updated_at = now
        run.sticky_worker = sticky_worker
        if run.inbox:  # events that arrived during the task: claimable now
            self.wake.add(("workflow", run.queue))

    def mark_closed(self, run: _Run, status: RunStatus, result: bytes | None, now: float) -> None:
        run.status = status
        run.result = result
        run.closed_at = now
        run.updated_at = now
        run.lease_token = None
        run.lease_expires_at = None
        run.ready_at = None
        self.wake.add(("closed", run.instance_id, run.run_id))
        self.hooks.record_state_change(
            instance_id=run.instance_id,
            run_id=run.run_id,
            workflow_name=run.workflow_name,
            queue=run.queue,
            status=status.value,
            result=result,
            now=now,
        )

    def drop_open_work(self, run: _Run, now: float) -> None:
        run.inbox.clear()
        self.pending.discard(run)
        for task in [t for t in self.activities.values() if t.run is run]:
            if task.is_running(now):
                task.cancel_requested = True
            else:
                del self.activities[task.task_id]

    def set_next_run_id(self, run: _Run, run_id: str) -> None:
        run.next_run_id = run_id

    def keep_closed(self, run: _Run, mark: bytes) -> None:
        self.closed_to_report.append((run, mark))
