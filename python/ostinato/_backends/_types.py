"""The value types of the storage contract: what a backend receives and returns.

They are public as ``ostinato.backends``; ``_contract`` holds the ``Backend`` interface that
takes and returns them. Payload fields are opaque JSON bytes a backend stores as they are.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "ActivityState",
    "ActivityTask",
    "BackendStats",
    "Clock",
    "ClosedRun",
    "EagerActivities",
    "InboxEvent",
    "LocalClaim",
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
    "system_clock",
]

# Seconds since the Unix epoch, UTC. Backends read time only through their clock, so tests
# (and ostinato.testing's time skipping) can run them on virtual time.
Clock = Callable[[], float]


def system_clock() -> float:
    """The wall clock: ``time.time()``."""
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
    """A run to create: by ``create_run``, as a child in a commit, or as the next run of a
    continue-as-new (``RunClose.next_run``)."""

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
    # Labels to find the run by (``list_runs(tags=...)``), checked by the client. A
    # continue-as-new's next run without tags of its own keeps the closing run's.
    tags: Mapping[str, str] = field(default_factory=dict)
    # Claim order of the run's workflow tasks among ready work on its queue (higher first,
    # aged: docs/queues.md). A continue-as-new's next run keeps the closing run's.
    priority: int = 0


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One pending inbound event of a run, as a claimed workflow task carries it; ``id``
    is what ``WorkflowCommit.consumed_inbox`` names to delete it."""

    id: int
    event: bytes


@dataclass(slots=True)
class WorkflowTask:
    """A run claimed by a workflow worker under a lease (``claim_workflow_tasks``)."""

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
    # When the task became claimable: its earliest visible inbox event's visible_at, or the
    # end of the run's start delay or back-off if later (time in queue); None: not known.
    ready_at: float | None = None


@dataclass(frozen=True, slots=True)
class NewActivity:
    """An activity task a commit schedules."""

    activity_id: int  # the command id in the run's history
    name: str
    queue: str
    input: bytes
    options: bytes  # JSON: retry policy and timeouts, read by the activity worker
    # Absolute schedule-to-close deadline, if any (the backend only stores it).
    deadline: float | None = None
    # Claim order among ready tasks on its queue (higher first, aged: docs/queues.md); also
    # the "priority" member of ``options``, where the workflow's history keeps it.
    priority: int = 0


@dataclass(frozen=True, slots=True)
class NewTimer:
    """A timer a commit starts: ``event`` enters the run's inbox, visible at ``fire_at``."""

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


@dataclass(frozen=True, slots=True)
class EagerActivities:
    """Eager dispatch (``WorkflowCommit.eager``): the committing worker takes these of the
    commit's new activities at once, leased to it for ``lease_seconds`` in the commit's own
    transaction, as ``claim_activity_tasks`` would lease them (attempt 1), instead of
    claiming them afterwards. The backend leaves an activity queued as usual (for any
    worker's claim) when its queue has limits (``set_queue_limits``) or the run is paused."""

    activity_ids: tuple[int, ...]
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class LocalClaim:
    """Continue locally (``complete_activity(..., claim=)``): when the completed activity's
    run is open, not paused, not in back-off, not leased and kept cached by ``worker``
    (``sticky_worker``), the completion also leases the run's next workflow task to that
    worker for ``lease_seconds``, in the same transaction, and returns it."""

    worker: str
    lease_seconds: float


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
    # Activities of this commit the committing worker runs at once (eager dispatch; None:
    # all are queued for a claim). ``commit_workflow_task`` returns those it leased.
    eager: EagerActivities | None = None


@dataclass(frozen=True, slots=True)
class ActivityTask:
    """An activity task claimed by an activity worker under a lease."""

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
    # When this attempt became claimable (time in queue): scheduled_at for the first, the
    # retry time for a retry, the expiry of the lost lease after a vanished worker; None: not
    # known.
    ready_at: float | None = None


@dataclass(frozen=True, slots=True)
class ClosedRun:
    """A run closed without a workflow task (``terminate``), handed once to a worker that
    reports it (``Backend.claim_closed_runs``): its metrics and ``RunWorkflow`` span."""

    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    status: RunStatus
    closed_at: float
    # The failure payload the close recorded.
    result: bytes | None
    # The run's ``workflow_started`` event when it closed before any workflow task took it
    # from the inbox (its history then lacks it): the run's start time and trace context.
    started_event: bytes | None = None


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
    """What ``describe`` and ``list_runs`` tell about one run."""

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
    # The run's tags (``NewRun.tags``).
    tags: Mapping[str, str] = field(default_factory=dict)
    # Set while the open run is paused (``Backend.pause``): since when, and why.
    paused_at: float | None = None
    pause_reason: str | None = None
    # The run's priority (``NewRun.priority``).
    priority: int = 0


@dataclass(frozen=True, slots=True)
class RunCount:
    """How many instances' latest runs have this workflow name and status (and are blocked,
    or not; and are paused, or not)."""

    workflow_name: str
    status: RunStatus
    blocked: bool
    count: int
    # Open runs paused (``Backend.pause``) are counted apart from the others.
    paused: bool = False


@dataclass(frozen=True, slots=True)
class QueueBacklog:
    """Work a worker on ``queue`` could claim right now."""

    queue: str
    # Open runs with a visible inbox event, not leased and not in back-off.
    workflow_tasks: int
    # Activity tasks whose visible_at has passed, that no live lease holds and that the
    # queue's limits let a worker claim now.
    activity_tasks: int
    # Since when the longest-waiting of those (held_by_limits included) has been claimable
    # (epoch seconds).
    oldest_ready_at: float | None
    # Ready activity tasks a claim would pass over now because the queue is at its limits
    # (max_concurrent, rate_limit, max_concurrent_per_key; docs/queues.md): not counted in
    # activity_tasks.
    held_by_limits: int = 0


@dataclass(frozen=True, slots=True)
class BackendStats:
    """A snapshot for dashboards (``Backend.stats``)."""

    # The backend clock's time of the snapshot.
    now: float
    # Counts over the latest run of each instance, one entry per non-empty group.
    runs: list[RunCount]
    # Queues with claimable work, by queue name.
    backlog: list[QueueBacklog]
