"""The storage algorithm, written once: what a commit, a close, a terminate and a start do, step
by step, over a small ``Store`` of operations that each backend implements its own way (the
memory backend over dicts, SQLite with its named SQL blocks).

A new field of ``WorkflowCommit`` is applied here, then given the store operation it needs.
PostgreSQL does the same work in set-based statements (a whole commit, or a batch of commits,
in one round trip); it is an optimisation of this algorithm, held to the same behaviour by
the conformance suite.

Every function runs inside the caller's transaction (SQLite) or lock (memory): the steps of
one call are atomic together, and nothing here awaits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from .. import _events
from .._errors import WorkflowAlreadyStartedError
from ._backend_events import (
    CONFLICT_TERMINATE_REASON,
    child_closed_event,
    child_start_refused_event,
    closed_mark_event,
    signal_external_completed_event,
    signal_target_missing,
    started_in_inbox,
    terminated_failure,
    timed_out_event,
    workflow_terminated_event,
)
from ._types import NewActivity, NewRun, ParentRef, RunStatus, WorkflowCommit

__all__ = [
    "Store",
    "StoredRun",
    "apply_commit",
    "carries_over",
    "close_run",
    "insert_run",
    "start_run",
    "terminate_run",
]


class StoredRun(Protocol):
    """What the algorithm reads of a run the store hands it; the rest is the store's."""

    @property
    def instance_id(self) -> str: ...

    @property
    def run_id(self) -> str: ...

    @property
    def parent(self) -> ParentRef | None: ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    @property
    def priority(self) -> int: ...


R = TypeVar("R", bound=StoredRun)


class Store(Protocol[R]):
    """The operations the algorithm needs, on runs of the store's own type ``R``.

    Writes that make work visible add the matching wake-up keys (``("workflow", queue)``,
    ``("activity", queue)``, ``("closed", instance_id, run_id)``) to the store's pending
    wake-ups; the backend notifies them after its transaction committed.
    """

    # ---- reading ------------------------------------------------------------------------

    def history_length(self, run: R) -> int:
        """Events in the run's history."""
        ...

    def latest_run(self, instance_id: str) -> R:
        """The instance's latest run (the caller knows it exists)."""
        ...

    def open_run(self, instance_id: str) -> R | None:
        """The instance's latest run if it is open."""
        ...

    def open_run_by_id(self, instance_id: str, run_id: str) -> R | None:
        """That run if it is open."""
        ...

    def instance_exists(self, instance_id: str) -> bool: ...

    def start_refusal(self, new: NewRun) -> tuple[bool, bool]:
        """(refused, because an open run exists) for a run about to be created: an open run,
        a refused id reuse, or a run id already taken refuse it."""
        ...

    def open_children(self, run: R) -> list[R]:
        """The run's open child runs, oldest first."""
        ...

    def inbox_events(self, run: R) -> list[bytes]:
        """The run's unconsumed inbox events (visible or not), in arrival order."""
        ...

    # ---- writing ------------------------------------------------------------------------

    def insert_run(self, new: NewRun, now: float) -> R:
        """A new open run, now the instance's latest, with an empty inbox."""
        ...

    def push(self, run: R, event: bytes, visible_at: float, timer_id: int | None = None) -> None:
        """Put ``event`` in the run's inbox, visible from ``visible_at``."""
        ...

    def append_history(self, run: R, first_seq: int, events: Sequence[bytes]) -> None:
        """Store ``events`` as seq ``first_seq``, ``first_seq + 1`` ... (history_length is
        set by ``finish_task`` or ``set_history_length``)."""
        ...

    def set_history_length(self, run: R, length: int) -> None: ...

    def consume_inbox(self, run: R, inbox_ids: Sequence[int]) -> None: ...

    def insert_activities(self, run: R, activities: Sequence[NewActivity], now: float) -> None:
        """Queue activity tasks, scheduled and visible at ``now``."""
        ...

    def cancel_activities(self, run: R, activity_ids: Sequence[int], now: float) -> None:
        """Delete those of the run's activity tasks that no live lease holds; mark the others
        cancel_requested."""
        ...

    def cancel_timers(self, run: R, timer_ids: Sequence[int]) -> None:
        """Delete the run's unconsumed inbox events of those timers."""
        ...

    def upsert_vars(self, run: R, values: Mapping[str, bytes]) -> None: ...

    def finish_task(
        self, run: R, history_length: int, now: float, sticky_worker: str | None
    ) -> None:
        """Release the lease of a committed task: a healthy run (no back-off, no blocked
        reason, no failed attempts), updated at ``now``, cached by ``sticky_worker``."""
        ...

    def mark_closed(self, run: R, status: RunStatus, result: bytes | None, now: float) -> None:
        """Record the run's final status and result, release any lease."""
        ...

    def drop_open_work(self, run: R, now: float) -> None:
        """A closed run's inbox goes; its activity tasks go, except those a live lease holds,
        which are marked cancel_requested."""
        ...

    def set_next_run_id(self, run: R, run_id: str) -> None: ...

    def keep_closed(self, run: R, mark: bytes) -> None:
        """Keep the closed run for ``Backend.claim_closed_runs`` with ``mark``
        (``closed_mark_event``)."""
        ...


def carries_over(event: bytes) -> bool:
    """Inbox events addressed to the instance rather than to one run (see ``close_run``)."""
    return _events.carries_over(event)


def insert_run(store: Store[R], new: NewRun, now: float) -> R:
    """Create the run with its ``workflow_started`` (visible at the start delay) and, with an
    execution timeout, its ``timed_out`` at the deadline."""
    run = store.insert_run(new, now)
    store.push(run, new.started_event, now if new.visible_at is None else new.visible_at)
    if new.execution_deadline is not None:
        store.push(run, timed_out_event(), new.execution_deadline)
    return run


def start_run(store: Store[R], new: NewRun, now: float) -> None:
    """``Backend.create_run`` after ``validate_new_run``: honours ``id_conflict`` and
    ``id_reuse``."""
    refused, open_run = store.start_refusal(new)
    if open_run and new.id_conflict == "use_existing":
        return
    if open_run and new.id_conflict == "terminate_existing":
        terminate_run(store, store.latest_run(new.instance_id), CONFLICT_TERMINATE_REASON, now)
        refused, open_run = store.start_refusal(new)
    if refused:
        if open_run:
            raise WorkflowAlreadyStartedError(new.instance_id)
        raise WorkflowAlreadyStartedError(
            new.instance_id,
            f"workflow id {new.instance_id!r} was used before and this start refuses "
            "id reuse (id_reuse='refuse')",
        )
    insert_run(store, new, now)


def apply_commit(store: Store[R], run: R, commit: WorkflowCommit, now: float) -> None:
    """``Backend.commit_workflow_task`` after the lease check and ``validate_commit``."""
    base = store.history_length(run)
    store.append_history(run, base + 1, commit.new_events)
    store.consume_inbox(run, commit.consumed_inbox)
    if commit.activities:
        store.insert_activities(run, commit.activities, now)
    if commit.cancel_activities:
        store.cancel_activities(run, commit.cancel_activities, now)
    for timer in commit.timers:
        store.push(run, timer.event, timer.fire_at, timer.timer_id)
    if commit.cancel_timers:
        store.cancel_timers(run, commit.cancel_timers)
    for child in commit.children:
        assert child.parent is not None  # validate_commit checked
        refused, open_run = store.start_refusal(child)
        if refused:
            event = child_start_refused_event(child.parent.command_id, child.instance_id, open_run)
            store.push(run, event, now)
        else:
            insert_run(store, child, now)
    for target_id, event in commit.cancel_instances:
        target = store.open_run(target_id)
        if target is not None:
            store.push(target, event, now)
    for signal in commit.signals:
        target = store.open_run(signal.target_instance_id)
        failure = None
        if target is not None:
            store.push(target, signal.event, now)
        else:
            exists = store.instance_exists(signal.target_instance_id)
            failure = signal_target_missing(signal.target_instance_id, exists)
        store.push(run, signal_external_completed_event(signal.command_id, failure), now)
    if commit.vars:
        store.upsert_vars(run, commit.vars)
    store.finish_task(run, base + len(commit.new_events), now, commit.sticky_worker)
    close = commit.close
    if close is not None:
        result = None if close.result is None else bytes(close.result)
        close_run(store, run, close.status, result, now, close.next_run)


def close_run(
    store: Store[R],
    run: R,
    status: RunStatus,
    result: bytes | None,
    now: float,
    next_run: NewRun | None = None,
) -> None:
    """Close the run: its open work goes; a continue-as-new starts ``next_run`` (keeping the
    parent, the priority, and the tags unless it has its own), any other close reports to
    the parent."""
    store.mark_closed(run, status, result, now)
    # Signals and cancel requests that arrived while the last task ran are meant for the
    # instance: they move to the next run of a continue-as-new, else they end here.
    carried: list[bytes] = []
    if status is RunStatus.CONTINUED_AS_NEW:
        carried = [event for event in store.inbox_events(run) if carries_over(event)]
    store.drop_open_work(run, now)
    if status is RunStatus.CONTINUED_AS_NEW:
        assert next_run is not None
        if next_run.parent is None and run.parent is not None:
            next_run = dataclasses.replace(next_run, parent=run.parent)
        if not next_run.tags and run.tags:
            next_run = dataclasses.replace(next_run, tags=dict(run.tags))
        if next_run.priority != run.priority:  # continue_as_new takes no priority
            next_run = dataclasses.replace(next_run, priority=run.priority)
        new_run = insert_run(store, next_run, now)
        for event in carried:
            store.push(new_run, event, now)
        store.set_next_run_id(run, next_run.run_id)
    elif run.parent is not None:
        parent = store.open_run_by_id(run.parent.instance_id, run.parent.run_id)
        if parent is not None:
            event = child_closed_event(run.parent.command_id, run.instance_id, status, result)
            store.push(parent, event, now)


def terminate_run(store: Store[R], run: R, reason: str, now: float) -> None:
    """``Backend.terminate`` of an open run: a ``workflow_terminated`` event, the close, then
    the same for its open children, recursively."""
    seq = store.history_length(run) + 1
    # A run no task took yet has its workflow_started only in the inbox, which the close drops.
    started = started_in_inbox(store.inbox_events(run)) if seq == 1 else None
    store.append_history(run, seq, [workflow_terminated_event(seq, reason)])
    store.set_history_length(run, seq)
    # Closed before its children, so their child_failed events (to a closed run) drop.
    close_run(store, run, RunStatus.TERMINATED, terminated_failure(run.instance_id, reason), now)
    # No workflow task reports this close: a worker claims it (metrics, span).
    store.keep_closed(run, closed_mark_event(started))
    for child in store.open_children(run):
        terminate_run(store, child, f"parent workflow was terminated: {reason}", now)
