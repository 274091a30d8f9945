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

The value types live in ``_types``; both are public as ``ostinato.backends``. The conformance
suite, ``ostinato.testing.conformance``, runs the same tests against every backend (ours in
tests/backends/, and yours: see docs/backends.md).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from .. import _events
from ._types import (
    ActivityState,
    ActivityTask,
    BackendStats,
    Clock,
    ClosedRun,
    LocalClaim,
    NewRun,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
)

__all__ = ["Backend", "TimeSkipping"]


class Backend(abc.ABC):
    """One storage backend. All methods are coroutine functions and safe to call
    concurrently from many tasks of one event loop."""

    clock: Clock

    # Whether the backend honours ``WorkflowCommit.eager`` and ``complete_activity(claim=)``
    # (docs/backends.md, "Eager dispatch"); a worker asks for neither otherwise.
    eager_dispatch: bool = False

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

    async def create_run_leased(self, run: NewRun, lease_seconds: float) -> WorkflowTask | None:
        """``create_run``, and, in the same transaction, the new run's first workflow task
        leased as ``claim_workflow_tasks`` would lease it (eager start: a worker of the
        starting process runs it without a claim, see docs/start-options.md).

        Returns None, with the run created (or the error raised) as by ``create_run``, when
        it leased nothing: ``id_conflict="use_existing"`` found an open run, the run starts
        later (``visible_at``), or the backend does not lease at start (this default). The
        task is then claimed the usual way."""
        await self.create_run(run)
        return None

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
        open children recursively, and report ``child_failed`` to its parent. Each run it
        closes is kept for ``claim_closed_runs`` (no workflow task reports its close).

        Raises ``WorkflowNotFoundError`` / ``WorkflowNotRunningError``.
        """

    @abc.abstractmethod
    async def pause(self, instance_id: str, reason: str | None = None) -> bool:
        """Pause the open run: from now on no workflow task of it is claimed and no attempt
        of its activity tasks is started (those leased already finish and are recorded);
        inbox events (timers, signals, activity results) keep arriving and wait. Records
        ``paused_at`` (now) and ``reason`` in ``RunInfo``. Returns False, changing nothing,
        when it is paused already.

        Raises ``WorkflowNotFoundError`` / ``WorkflowNotRunningError``.
        """

    @abc.abstractmethod
    async def resume(self, instance_id: str) -> bool:
        """Make the open run's pending work claimable now: a paused run is unpaused, and a
        run blocked on a failing workflow task (``failed_attempts`` > 0) loses its back-off,
        so a worker retries the task at once (after a deploy that fixes it). Returns whether
        anything changed: a healthy run, or one whose start is delayed, is left as it is.

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
        queue: str | None = None,
        tags: Mapping[str, str] | None = None,
        started_after: float | None = None,
        started_before: float | None = None,
        closed_after: float | None = None,
        blocked: bool | None = None,
        paused: bool | None = None,
    ) -> tuple[list[RunInfo], str | None]:
        """Latest run of each instance, newest first; returns (page, next cursor or None).

        Every filter given must hold: ``queue``; every key and value of ``tags``;
        ``started_after <= created_at < started_before``; ``closed_at >= closed_after``;
        ``blocked`` (True: ``blocked_reason`` is set, False: it is not); ``paused`` (True:
        ``paused_at`` is set, False: it is not). The cursor is a
        position in creation order, so paging with the same filters neither repeats nor
        skips a run while others start."""

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
    async def commit_workflow_task(
        self, task: WorkflowTask, commit: WorkflowCommit
    ) -> list[ActivityTask]:
        """Apply ``commit`` atomically and release the lease. ``LeaseLostError`` if the lease
        token no longer matches (nothing is written then).

        Returns the activity tasks of ``commit.eager`` leased to the caller in the same
        transaction (attempt 1, as a claim would lease them): none on a queue that has
        limits or of a paused run; [] without ``commit.eager``."""

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
    async def complete_activity(
        self, task: ActivityTask, event: bytes, *, claim: LocalClaim | None = None
    ) -> WorkflowTask | None:
        """Delete the task and put ``event`` (activity_completed / activity_failed) into the
        run's inbox if that run is still open. Fenced: ``LeaseLostError``, nothing written.

        With ``claim`` (backends with ``eager_dispatch``): if the run is open, not paused,
        not in back-off, not leased, and its ``sticky_worker`` is ``claim.worker``, it is
        also leased to that worker in the same transaction and its workflow task (every
        visible inbox event, this one included) is returned, as ``claim_workflow_tasks``
        would return it. None otherwise: the run is claimed as usual."""

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

    async def previous_run_ids(self, instance_id: str, run_id: str, limit: int) -> list[str]:
        """The runs that run ``run_id`` continued from by continue-as-new, newest first (the
        one it continued from, that one's own predecessor ...), at most ``limit``; [] for a
        run that was not started by continue-as-new. ``WorkflowNotFoundError`` for an
        unknown run. The default reads each run's ``workflow_started`` event from its
        history; our backends follow their runs' ``next_run_id`` instead."""
        found: list[str] = []
        current = run_id
        while len(found) < limit:
            history = await self.history(instance_id, current)
            try:
                previous = _events.started_event(history)[1].continued_from_run_id
            except ValueError:
                break
            if previous is None or previous in found or previous == run_id:
                break
            found.append(previous)
            current = previous
        return found

    async def claim_closed_runs(self, queues: Sequence[str], limit: int) -> list[ClosedRun]:
        """Up to ``limit`` runs of ``queues`` closed without a workflow task (terminated),
        each handed out once, ever, to whichever caller claims it first: the worker reports
        its metrics and span (docs/tracing.md). The default keeps none: a backend without it
        reports no terminated runs."""
        return []

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
        when some is available already or after an in-process write that made some, when a
        timer or delayed task becomes visible, or after ``timeout`` seconds at most.
        ``worker`` and ``sticky_wait`` are those of ``claim_workflow_tasks``: work left to
        another worker counts as available only once ``claim_workflow_tasks`` would take it."""


@runtime_checkable
class TimeSkipping(Protocol):
    """What a backend offers so ``ostinato.testing.WorkflowEnvironment`` can skip time.

    On a virtual clock, the environment waits until every worker is idle, asks for
    ``next_visible_time()``, moves the clock there and calls ``wake_waiters()``. A backend
    without these still works in the environment; its timers then fire only when the
    environment's own scheduled calls or ``sleep`` move the clock. The memory, SQLite and
    PostgreSQL backends implement it.
    """

    async def next_visible_time(self) -> float | None:
        """The earliest time after ``clock()`` at which anything becomes visible: a timer or
        delayed inbox event, a delayed start or a back-off (``ready_at``), an activity retry;
        None when nothing is scheduled."""
        ...

    def wake_waiters(self) -> None:
        """Wake every ``wait_for_work`` / ``wait_closed`` caller of this process so it looks
        again (the clock moved: work that was in the future may be due now)."""
        ...
