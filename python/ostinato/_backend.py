"""The storage contract every backend implements (memory, SQLite, PostgreSQL).

A backend stores runs, their history, an inbox of pending inbound events per run (signals,
activity results, timers, cancel requests ...), and a queue of activity tasks. Workers claim
*workflow tasks* (a run with visible inbox events) and *activity tasks* under a lease with a
random token; every write a worker makes is fenced by that token, so a worker whose lease
expired or was taken over cannot commit (`LeaseLostError`).

Times are floats: seconds since the Unix epoch, UTC, read from the backend's ``clock`` so
tests can run on virtual time. Events are the JSON bytes described in
docs/internals/reducer.md; backends store them as opaque bytes (never parse payloads), except
for the few fields the contract below names.

The conformance suite in tests/backends/ runs the same tests against every backend.
"""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "ActivityTask",
    "Backend",
    "BackendStats",
    "Clock",
    "InboxEvent",
    "NewActivity",
    "NewRun",
    "NewTimer",
    "OutgoingSignal",
    "ParentRef",
    "QueueBacklog",
    "RunClose",
    "RunCount",
    "RunInfo",
    "RunStatus",
    "WorkflowCommit",
    "WorkflowTask",
]

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


class RunStatus(str, enum.Enum):
    """Lifecycle of one run. Only ``RUNNING`` is open; every other status is final."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    CONTINUED_AS_NEW = "continued_as_new"
    TIMED_OUT = "timed_out"

    @property
    def is_open(self) -> bool:
        return self is RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class ParentRef:
    """Where a child run reports its outcome: ``child_completed`` / ``child_failed`` with
    ``id = command_id`` is put in the parent run's inbox when the child closes."""

    instance_id: str
    run_id: str
    command_id: int


@dataclass(frozen=True, slots=True)
class NewRun:
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    # The inbox event that starts the run: {"kind": "workflow_started", ...} (no seq).
    started_event: bytes
    # The run becomes claimable at this time (start_delay); None = now.
    visible_at: float | None = None
    parent: ParentRef | None = None
    # "allow": a new run may reuse the id once the previous run closed.
    # "refuse": any earlier run with this id makes the start fail.
    id_reuse: str = "allow"
    # While the instance has an open run: "fail" (WorkflowAlreadyStartedError),
    # "use_existing" (create nothing, the open run stands), or "terminate_existing"
    # (terminate the open run, as ``terminate`` does, and start this one in the same
    # transaction).
    id_conflict: str = "fail"
    # Absolute deadline of the run; the backend delivers a {"kind": "timed_out"} inbox event
    # at this time.
    execution_deadline: float | None = None


@dataclass(frozen=True, slots=True)
class InboxEvent:
    id: int
    event: bytes


@dataclass(slots=True)
class WorkflowTask:
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    lease_token: str
    # Number of events already committed to the run's history.
    history_length: int
    # Visible, unconsumed inbox events in arrival order (oldest first).
    inbox: list[InboxEvent]
    # How many times a task of this run failed in a row (nondeterminism, crash of workflow
    # code); 0 for a healthy run.
    failed_attempts: int = 0


@dataclass(frozen=True, slots=True)
class NewActivity:
    activity_id: int  # the command id in the run's history
    name: str
    queue: str
    input: bytes
    options: bytes  # JSON: retry policy and timeouts, read by the activity worker
    # Absolute schedule-to-close deadline, if any (the backend only stores it).
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class NewTimer:
    timer_id: int
    fire_at: float
    event: bytes  # {"kind": "timer_fired", "id": timer_id}


@dataclass(frozen=True, slots=True)
class OutgoingSignal:
    """A signal to another instance, recorded by ``workflow.signal_external``.

    In the commit transaction: if ``target_instance_id`` has an open run, ``event`` goes into
    its inbox and ``{"kind": "signal_external_completed", "id": command_id, "failure": null}``
    into the sender's; otherwise only the latter, with a failure payload naming the reason.
    """

    target_instance_id: str
    event: bytes
    command_id: int


@dataclass(frozen=True, slots=True)
class RunClose:
    """How a run ends. ``result`` is the result payload (completed) or the failure payload
    (failed / canceled / timed_out). The backend puts ``child_completed`` (completed) or
    ``child_failed`` (anything else) into the parent's inbox, if any; for
    ``continued_as_new`` it starts ``next_run`` under the same instance id instead, carrying
    the parent reference over, and moves the old run's unconsumed signal_received and
    cancel_requested inbox events to the new run (after its workflow_started), so nothing
    sent while the run continues as new is lost."""

    status: RunStatus
    result: bytes | None = None
    next_run: NewRun | None = None


@dataclass(slots=True)
class WorkflowCommit:
    """Everything one workflow task changes, applied atomically and fenced by the lease."""

    # New history events, seq contiguous from task.history_length + 1.
    new_events: list[bytes]
    # Inbox events the task consumed (deleted in the same transaction).
    consumed_inbox: list[int]
    activities: list[NewActivity] = field(default_factory=list)
    # Command ids of this run's activities to cancel: queued ones are deleted, running ones
    # get cancel_requested (the worker learns it through heartbeat).
    cancel_activities: list[int] = field(default_factory=list)
    timers: list[NewTimer] = field(default_factory=list)
    # Timer ids of this run whose not-yet-consumed timer_fired inbox events are deleted.
    cancel_timers: list[int] = field(default_factory=list)
    # Child runs to create. A child id that already has an open run is not an error of the
    # commit: the parent gets a child_failed inbox event saying so instead.
    children: list[NewRun] = field(default_factory=list)
    # Instance ids whose open runs get a {"kind": "cancel_requested"} inbox event.
    cancel_instances: list[tuple[str, bytes]] = field(default_factory=list)
    signals: list[OutgoingSignal] = field(default_factory=list)
    close: RunClose | None = None
    # Runtime variables set by this task (name -> JSON payload), upserted.
    vars: Mapping[str, bytes] = field(default_factory=dict)
    # The worker that keeps the run cached after this task (None: nobody). The run's next
    # task is left to that worker for a while (see claim_workflow_tasks' sticky_wait).
    sticky_worker: str | None = None


@dataclass(frozen=True, slots=True)
class ActivityTask:
    task_id: int
    instance_id: str
    run_id: str
    activity_id: int
    name: str
    queue: str
    input: bytes
    options: bytes
    # 1 on the first claim; every claim (including one after a lost lease) adds one.
    attempt: int
    lease_token: str
    scheduled_at: float
    deadline: float | None
    # Details of the last heartbeat of an earlier attempt (JSON payload), if any.
    heartbeat_details: bytes | None = None
    # Name of the workflow of the run that scheduled the activity (activity.info()).
    workflow_name: str | None = None


@dataclass(frozen=True, slots=True)
class ActivityState:
    """Where one of a run's scheduled activities stands (for describe)."""

    activity_id: int
    name: str
    # Attempts started so far: 0 until a worker first claims it.
    attempt: int
    scheduled_at: float
    # When it may be claimed (again): the retry time after a failed attempt.
    visible_at: float
    # A worker holds it under a lease that has not expired.
    running: bool
    cancel_requested: bool = False
    # The last heartbeat's details (JSON payload), if any.
    heartbeat_details: bytes | None = None
    # The failure payload of the last failed attempt that is being retried, if any.
    last_failure: bytes | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    status: RunStatus
    created_at: float
    updated_at: float
    closed_at: float | None
    history_length: int
    # Result payload (completed) or failure payload (other closed statuses).
    result: bytes | None
    # Why the run is stuck (nondeterminism, workflow-task failure), or None.
    blocked_reason: str | None
    parent: ParentRef | None
    # Set when the run continued as new: the next run's id.
    next_run_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunCount:
    """How many instances' latest runs have this workflow name and status (and are blocked,
    or not)."""

    workflow_name: str
    status: RunStatus
    blocked: bool
    count: int


@dataclass(frozen=True, slots=True)
class QueueBacklog:
    """Work a worker on ``queue`` could claim right now."""

    queue: str
    # Open runs with a visible inbox event, not leased and not in back-off.
    workflow_tasks: int
    # Activity tasks whose visible_at has passed and that no live lease holds.
    activity_tasks: int
    # Since when the longest-waiting of those has been claimable (epoch seconds).
    oldest_ready_at: float | None


@dataclass(frozen=True, slots=True)
class BackendStats:
    """A snapshot for dashboards (``Backend.stats``)."""

    # The backend clock's time of the snapshot.
    now: float
    # Counts over the latest run of each instance, one entry per non-empty group.
    runs: list[RunCount]
    # Queues with claimable work, by queue name.
    backlog: list[QueueBacklog]


class Backend(abc.ABC):
    """One storage backend. All methods are coroutine functions and safe to call
    concurrently from many tasks of one event loop."""

    clock: Clock

    # ---- lifecycle ------------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised by ``open()``, may go away by itself (a database server
        that is down or unreachable): a worker then waits and tries again instead of
        exiting. False by default."""
        return False

    # ---- client side ------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_run(self, run: NewRun) -> None:
        """Create a run and put ``run.started_event`` in its inbox.

        Raises ``WorkflowAlreadyStartedError`` if the instance has an open run (unless
        ``run.id_conflict`` says to use or terminate it), or any run at all when
        ``run.id_reuse == "refuse"``.
        """

    @abc.abstractmethod
    async def signal(self, instance_id: str, event: bytes) -> None:
        """Put a ``signal_received`` event in the open run's inbox.

        Raises ``WorkflowNotFoundError`` / ``WorkflowNotRunningError``.
        """

    @abc.abstractmethod
    async def request_cancel(self, instance_id: str, event: bytes) -> None:
        """Put a ``cancel_requested`` event in the open run's inbox (same errors as signal)."""

    @abc.abstractmethod
    async def terminate(self, instance_id: str, reason: str) -> None:
        """Close the open run at once with status terminated: append
        ``{"kind": "workflow_terminated", "seq": n, "reason": reason}`` to its history, drop its
        inbox, timers and queued activities (running ones get cancel_requested), terminate its
        open children recursively, and report ``child_failed`` to its parent.

        Raises ``WorkflowNotFoundError`` / ``WorkflowNotRunningError``.
        """

    @abc.abstractmethod
    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        """The latest run of the instance (or the given run). ``WorkflowNotFoundError``."""

    @abc.abstractmethod
    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        """All history events of the run in seq order. ``WorkflowNotFoundError``."""

    @abc.abstractmethod
    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[RunInfo], str | None]:
        """Latest run of each instance, newest first; returns (page, next cursor or None)."""

    @abc.abstractmethod
    async def stats(self) -> BackendStats:
        """Counts of latest runs by workflow name, status and blocked-ness, and the work
        claimable now on each queue. A read for dashboards: it may scan the open runs and
        tasks, but never the history."""

    @abc.abstractmethod
    async def delete(self, instance_id: str) -> None:
        """Remove every run, history event and variable of a closed instance.

        ``WorkflowNotFoundError``; ``WorkflowNotRunningError`` is not raised, but an instance
        with an open run is refused with ``WorkflowAlreadyStartedError`` (terminate it first).
        """

    @abc.abstractmethod
    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        """Runtime variables of the instance's latest run, as committed. ``WorkflowNotFound``."""

    @abc.abstractmethod
    async def wait_closed(self, instance_id: str, run_id: str, timeout: float | None) -> RunInfo:
        """Wait until the run is closed and return its info; on timeout return the open info.

        In-process commits wake waiters at once; other processes' commits are seen by polling
        (or LISTEN/NOTIFY where the backend has it).
        """

    # ---- workflow worker side -----------------------------------------------------------

    @abc.abstractmethod
    async def claim_workflow_tasks(
        self,
        queues: Sequence[str],
        lease_seconds: float,
        max_tasks: int,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> list[WorkflowTask]:
        """Lease up to ``max_tasks`` open runs on ``queues`` that have visible inbox events,
        are not leased (or their lease expired), and are not in back-off after a failed task.

        A run whose last task was committed with ``sticky_worker`` set to another worker than
        ``worker`` (that worker has it cached) is left to it until its pending work has been
        visible for ``sticky_wait`` seconds: after that, any worker may take it (the sticky
        worker may be gone, or busy). ``worker=None`` claims as a worker with no cache.
        """

    @abc.abstractmethod
    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> None:
        """Apply ``commit`` atomically and release the lease. ``LeaseLostError`` if the lease
        token no longer matches (nothing is written then)."""

    @abc.abstractmethod
    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        """Release the lease without consuming anything: the run stays open and blocked with
        ``reason`` (shown by describe) and is claimable again at ``retry_at``; increments
        ``failed_attempts``. Fenced."""

    @abc.abstractmethod
    async def release_workflow_task(self, task: WorkflowTask) -> None:
        """Give the task back untouched (graceful shutdown). Fenced; a lost lease is ignored."""

    @abc.abstractmethod
    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        """Forget that ``worker`` has the open runs on ``queues`` cached (it is shutting down):
        their next tasks go to any worker at once, without waiting for ``sticky_wait``."""

    @abc.abstractmethod
    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        """Push the lease expiry out. ``LeaseLostError`` if it was lost."""

    # ---- activity worker side -----------------------------------------------------------

    @abc.abstractmethod
    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        """Lease up to ``max_tasks`` visible activity tasks; each claim adds one to attempt.
        Each task carries the last heartbeat details stored and its run's workflow name."""

    @abc.abstractmethod
    async def heartbeat_activity(
        self, task: ActivityTask, details: bytes | None, lease_seconds: float
    ) -> bool:
        """Record heartbeat details and extend the lease. ``details=None`` (a lease tick with
        nothing new) keeps the details stored before. Returns True when cancellation was
        requested. ``LeaseLostError`` if the lease was lost."""

    @abc.abstractmethod
    async def complete_activity(self, task: ActivityTask, event: bytes) -> None:
        """Delete the task and put ``event`` (activity_completed / activity_failed) into the
        run's inbox if that run is still open. Fenced: ``LeaseLostError``, nothing written."""

    @abc.abstractmethod
    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        """Release the lease and make the task claimable again at ``visible_at``; record
        ``failure`` (the failed attempt's failure payload) as its last failure, or keep the
        one recorded before when None (an attempt given back unfinished). Fenced."""

    @abc.abstractmethod
    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        """The run's activity tasks that are still pending (scheduled, running or waiting
        for a retry), by activity id; [] for an unknown run."""

    # ---- wake-ups --------------------------------------------------------------------------

    @abc.abstractmethod
    async def wait_for_work(
        self,
        kind: str,
        queues: Sequence[str],
        timeout: float,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> None:
        """Return when work of ``kind`` ("workflow" or "activity") may be available: at once
        after an in-process write that made some, when a timer or delayed task becomes
        visible, or after ``timeout`` seconds at most. ``worker`` and ``sticky_wait`` are
        those of ``claim_workflow_tasks``: work left to another worker counts as available
        only once ``claim_workflow_tasks`` would take it."""
