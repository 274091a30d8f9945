"""The in-memory backend: the reference implementation of the storage contract.

Everything lives in plain dicts (``_MemoryStore``, which also carries out the shared storage
algorithm of ``_apply`` over them); every method does its work without awaiting in between,
so each call is atomic for the event loop (a lock also makes calls from other threads safe).
It is what the test suite and ``ostinato.testing`` run on, usually with a virtual clock: it
implements ``TimeSkipping``, so ``next_visible_time()`` tells a time-skipping driver when the
next timer or delayed task is due, and ``wake_waiters()`` lets waiting workers look again
after the clock moved.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from .._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ._apply import apply_commit, start_run, terminate_run
from ._backend_events import started_of_mark
from ._contract import Backend, TimeSkipping
from ._eager import quiet_eager_queues
from ._hook_store import pause_delivery_id
from ._memory_hooks import HookTables, MemoryHooks
from ._memory_queue_limits import MemoryQueueLimits
from ._memory_retention import MemoryRetention
from ._memory_schedules import MemorySchedules
from ._memory_store import _ActivityTask, _MemoryStore, _Run
from ._queue_limits import PRIORITY_AGING, QueueLimits, claim_rank
from ._schedule_store import ScheduleRecord
from ._tokens import decode_cursor, encode_cursor, new_lease_token
from ._types import (
    ActivityState,
    ActivityTask,
    BackendStats,
    Clock,
    ClosedRun,
    InboxEvent,
    LocalClaim,
    NewRun,
    QueueBacklog,
    RunCount,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
    system_clock,
)
from ._validate import validate_commit, validate_new_run
from ._wakeups import Waiters, wait_on, work_keys

__all__ = ["MemoryBackend"]


class MemoryBackend(
    MemorySchedules, MemoryHooks, MemoryQueueLimits, MemoryRetention, Backend, TimeSkipping
):
    """Stores everything in this process's memory; lost when the process ends."""

    eager_dispatch = True

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._waiters = Waiters()
        self._store = _MemoryStore()
        # The store's tables, read directly by the operations that are not the shared
        # algorithm's (claims, listing, activity tasks).
        self._runs = self._store.runs
        self._instances = self._store.instances
        self._activities = self._store.activities
        self._pending = self._store.pending
        self._schedules: dict[str, ScheduleRecord] = {}
        self._queue_limits: dict[str, QueueLimits] = {}
        # queue -> start times of the attempts claimed on it (rate-limited queues only)
        self._queue_starts: dict[str, list[float]] = {}

        self._sweeps: dict[str, tuple[str, float]] = {}

    @property
    def _hooks(self) -> HookTables:
        return self._store.hooks

    def __repr__(self) -> str:
        return f"MemoryBackend(instances={len(self._instances)})"

    async def __aenter__(self) -> MemoryBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        self._waiters.notify_all()

    # ---- time skipping (ostinato.testing) ---------------------------------------------------

    async def next_visible_time(self) -> float | None:
        """The earliest time after now at which a timer, delayed start, back-off or activity
        retry becomes visible or a lease on pending work runs out, or the time of the next
        schedule fire (which may be due already); None when nothing is scheduled."""
        with self._lock:
            now = self.clock()
            times = [
                item.visible_at
                for run in self._pending
                for item in run.inbox
                if item.visible_at > now
            ]
            times.extend(
                run.ready_at
                for run in self._runs.values()
                if run.status.is_open and run.ready_at is not None and run.ready_at > now
            )
            times.extend(
                task.visible_at
                for task in self._activities.values()
                if task.lease_token is None and task.visible_at > now
            )
            # Leases that run out: the work of a worker that vanished holding them becomes
            # claimable then (a time-skipping driver must not jump past that to a timer).
            times.extend(
                run.lease_expires_at
                for run in self._pending
                if run.lease_expires_at is not None and run.lease_expires_at > now
            )
            times.extend(
                task.lease_expires_at
                for task in self._activities.values()
                if task.lease_expires_at is not None and task.lease_expires_at > now
            )
            # A due schedule counts too (its time is not after now): a time-skipping driver
            # must not move the clock past a fire a worker has yet to take.
            times.extend(
                row.next_fire_at for row in self._schedules.values() if row.next_fire_at is not None
            )
            # Work held back by a rate limit becomes claimable when its window moves on.
            if self._queue_limits:
                ready = self._ready_activities(now, set(self._queue_limits))
                held = self._held_by_limits(ready, self._activities.values(), now)
                times.extend(
                    frees
                    for queue in held
                    if held[queue] and (frees := self._rate_frees_at(queue, now)) is not None
                )
            return min(times, default=None)

    def wake_waiters(self) -> None:
        """Wake every ``wait_for_work`` / ``wait_closed`` caller so it looks again (call it
        after moving a virtual clock forward)."""
        self._waiters.notify_all()

    # ---- helpers ----------------------------------------------------------------------------

    def _latest(self, instance_id: str) -> _Run:
        runs = self._instances.get(instance_id)
        if not runs:
            raise WorkflowNotFoundError(instance_id)
        return runs[-1]

    def _run(self, instance_id: str, run_id: str | None) -> _Run:
        if run_id is None:
            return self._latest(instance_id)
        run = self._runs.get((instance_id, run_id))
        if run is None:
            raise WorkflowNotFoundError(
                instance_id, f"no workflow with id {instance_id!r} and run id {run_id!r}"
            )
        return run

    def _open_run(self, instance_id: str) -> _Run:
        run = self._latest(instance_id)
        if not run.status.is_open:
            raise WorkflowNotRunningError(instance_id, run.status.value)
        return run

    def _begin(self) -> set[Hashable]:
        """Start an operation (under the lock): the wake-ups it collects."""
        self._store.wake = set()
        return self._store.wake

    # ---- client side ------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> None:
        validate_new_run(run)
        with self._lock:
            wake = self._begin()
            start_run(self._store, run, self.clock())
        self._waiters.notify(wake)

    async def signal(self, instance_id: str, event: bytes) -> None:
        await self._deliver(instance_id, event)

    async def request_cancel(self, instance_id: str, event: bytes) -> None:
        await self._deliver(instance_id, event)

    async def _deliver(self, instance_id: str, event: bytes) -> None:
        with self._lock:
            wake = self._begin()
            self._store.push(self._open_run(instance_id), event, self.clock())
        self._waiters.notify(wake)

    async def terminate(self, instance_id: str, reason: str) -> None:
        with self._lock:
            wake = self._begin()
            terminate_run(self._store, self._open_run(instance_id), reason, self.clock())
        self._waiters.notify(wake)

    async def pause(self, instance_id: str, reason: str | None = None) -> bool:
        with self._lock:
            run = self._open_run(instance_id)
            if run.paused_at is not None:
                return False
            run.paused_at = self.clock()
            run.pause_reason = reason
            run.pauses += 1
            self._store.hooks.record_state_change(
                instance_id=run.instance_id,
                run_id=run.run_id,
                workflow_name=run.workflow_name,
                queue=run.queue,
                status="paused",
                result=None if reason is None else reason.encode(),
                now=run.paused_at,
                key=pause_delivery_id(run.instance_id, run.run_id, run.pauses),
            )
            return True

    async def resume(self, instance_id: str) -> bool:
        with self._lock:
            wake = self._begin()
            run = self._open_run(instance_id)
            changed = False
            if run.paused_at is not None:
                run.paused_at = run.pause_reason = None
                wake.add(("workflow", run.queue))
                wake.update(
                    ("activity", t.queue) for t in self._activities.values() if t.run is run
                )
                changed = True
            if run.failed_attempts > 0 and run.ready_at is not None:
                run.ready_at = None
                wake.add(("workflow", run.queue))
                changed = True
        self._waiters.notify(wake)
        return changed

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        with self._lock:
            return self._run(instance_id, run_id).info()

    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        with self._lock:
            return list(self._run(instance_id, run_id).history)

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
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        before = decode_cursor(cursor) if cursor is not None else None
        status = None if status is None else RunStatus(status)
        wanted = dict(tags or {})

        def matches(run: _Run) -> bool:
            return (
                (queue is None or run.queue == queue)
                and all(run.tags.get(k) == v for k, v in wanted.items())
                and (started_after is None or run.created_at >= started_after)
                and (started_before is None or run.created_at < started_before)
                and (
                    closed_after is None
                    or (run.closed_at is not None and run.closed_at >= closed_after)
                )
                and (blocked is None or (run.blocked_reason is not None) == blocked)
                and (paused is None or (run.paused_at is not None) == paused)
            )

        with self._lock:
            latest = sorted(
                (runs[-1] for runs in self._instances.values()), key=lambda r: r.pk, reverse=True
            )
            page: list[_Run] = []
            more = False
            for run in latest:
                if before is not None and run.pk >= before:
                    continue
                if status is not None and run.status is not status:
                    continue
                if workflow_name is not None and run.workflow_name != workflow_name:
                    continue
                if not matches(run):
                    continue
                if len(page) == limit:
                    more = True
                    break
                page.append(run)
            next_cursor = encode_cursor(page[-1].pk) if more else None
            return [run.info() for run in page], next_cursor

    async def stats(self) -> BackendStats:
        with self._lock:
            now = self.clock()
            counts: dict[tuple[str, RunStatus, bool, bool], int] = {}
            # queue -> [workflow tasks, activity tasks, oldest ready at]
            queues: dict[str, list[Any]] = {}

            def ready(queue: str, index: int, since: float) -> None:
                entry = queues.setdefault(queue, [0, 0, None])
                entry[index] += 1
                entry[2] = since if entry[2] is None else min(entry[2], since)

            for runs in self._instances.values():
                run = runs[-1]
                paused = run.status.is_open and run.paused_at is not None
                key = (run.workflow_name, run.status, run.blocked_reason is not None, paused)
                counts[key] = counts.get(key, 0) + 1
            for runs in self._instances.values():
                for run in runs:
                    if not run.status.is_open or not run.inbox or run.paused_at is not None:
                        continue
                    if run.lease_expires_at is not None and run.lease_expires_at > now:
                        continue
                    since = min(item.visible_at for item in run.inbox)
                    if run.ready_at is not None:
                        since = max(since, run.ready_at)
                    if since <= now:
                        ready(run.queue, 0, since)
            waiting = self._ready_activities(now)
            for queue_tasks in waiting.values():
                for task in queue_tasks:
                    # Claimable since it became visible, or since its last lease expired.
                    ready(task.queue, 1, max(task.visible_at, task.lease_expires_at or 0.0))
            held = self._held_by_limits(waiting, self._activities.values(), now)
            for queue, count in held.items():
                queues[queue][1] -= count
            return BackendStats(
                now=now,
                runs=[
                    RunCount(n, s, b, count, paused=p)
                    for (n, s, b, p), count in sorted(counts.items())
                ],
                backlog=[
                    QueueBacklog(q, queues[q][0], queues[q][1], queues[q][2], held.get(q, 0))
                    for q in sorted(queues)
                ],
            )

    def _ready_activities(
        self, now: float, queues: set[str] | None = None
    ) -> dict[str, list[_ActivityTask]]:
        """The activity tasks a claim could take now but for the queues' limits, per queue
        in claim order (under the lock)."""
        found: dict[str, list[_ActivityTask]] = {}
        for task in self._activities.values():
            if (
                (queues is None or task.queue in queues)
                and task.visible_at <= now
                and not task.is_running(now)
                and not task.cancel_requested
                and task.run.paused_at is None
            ):
                found.setdefault(task.queue, []).append(task)
        for tasks in found.values():
            tasks.sort(key=lambda t: (t.visible_at, t.task_id))
        return found

    async def delete(self, instance_id: str) -> None:
        with self._lock:
            runs = self._instances.get(instance_id)
            if not runs:
                raise WorkflowNotFoundError(instance_id)
            if runs[-1].status.is_open:
                raise WorkflowAlreadyStartedError(
                    instance_id,
                    f"workflow {instance_id!r} is still running; terminate it before deleting",
                )
            self._remove_instance(instance_id)

    def _remove_instance(self, instance_id: str) -> None:
        """Remove every run of the instance with its activity tasks (under the lock)."""
        with self._lock:
            runs = self._instances[instance_id]
            for run in runs:
                del self._runs[(run.instance_id, run.run_id)]
            self._store.hooks.drop_runs((run.instance_id, run.run_id) for run in runs)
            doomed = {id(run) for run in runs}
            for task in [t for t in self._activities.values() if id(t.run) in doomed]:
                del self._activities[task.task_id]
            del self._instances[instance_id]

    def _closed_instances(self) -> list[tuple[float, str, RunStatus]]:
        """(closed_at, instance id, status) of every instance whose latest run is closed."""
        found = []
        with self._lock:
            for instance_id, runs in self._instances.items():
                latest = runs[-1] if runs else None
                if latest and latest.closed_at is not None and not latest.status.is_open:
                    found.append((latest.closed_at, instance_id, latest.status))
        return found

    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        with self._lock:
            return dict(self._latest(instance_id).vars)

    async def wait_closed(self, instance_id: str, run_id: str, timeout: float | None) -> RunInfo:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            waiter = self._waiters.register([("closed", instance_id, run_id)])
            try:
                with self._lock:
                    info = self._run(instance_id, run_id).info()
                if not info.status.is_open:
                    return info
                if deadline is None:
                    await waiter.future
                elif not await wait_on(waiter, deadline - loop.time()):
                    return info
            finally:
                self._waiters.unregister(waiter)

    # ---- workflow worker side -----------------------------------------------------------

    def _claimable_at(
        self, run: _Run, now: float, worker: str | None = None, sticky_wait: float = 0.0
    ) -> float | None:
        """When the run can next be claimed by ``worker`` (<= now: claimable), None if it has
        no work."""
        if not run.status.is_open or not run.inbox or run.paused_at is not None:
            return None
        at = min(item.visible_at for item in run.inbox)
        if run.sticky_worker is not None and run.sticky_worker != worker:
            at += sticky_wait  # left to the worker that has it cached, for a while
        if run.ready_at is not None:
            at = max(at, run.ready_at)
        if run.lease_token is not None and run.lease_expires_at is not None:
            at = max(at, run.lease_expires_at)
        return at

    async def claim_workflow_tasks(
        self,
        queues: Sequence[str],
        lease_seconds: float,
        max_tasks: int,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> list[WorkflowTask]:
        wanted = set(queues)
        tasks: list[WorkflowTask] = []
        if max_tasks < 1:
            return tasks
        with self._lock:
            now = self.clock()
            candidates: list[tuple[float, int, _Run]] = []
            for run in self._pending:
                if run.queue not in wanted:
                    continue
                at = self._claimable_at(run, now, worker, sticky_wait)
                if at is not None and at <= now:
                    visible = [i for i in run.inbox if i.visible_at <= now]
                    ready = min(i.visible_at for i in visible)
                    first = min(i.id for i in visible)
                    candidates.append((claim_rank(ready, run.priority), first, run))
            candidates.sort(key=lambda c: (c[0], c[1]))
            for _, _, run in candidates[:max_tasks]:
                tasks.append(self._lease_run(run, now, lease_seconds))
        return tasks

    @staticmethod
    def _lease_run(run: _Run, now: float, lease_seconds: float) -> WorkflowTask:
        run.lease_token = new_lease_token()
        run.lease_expires_at = now + lease_seconds
        visible = [item for item in run.inbox if item.visible_at <= now]
        ready_at = min(item.visible_at for item in visible)
        if run.ready_at is not None:
            ready_at = max(ready_at, run.ready_at)
        return WorkflowTask(
            instance_id=run.instance_id,
            run_id=run.run_id,
            workflow_name=run.workflow_name,
            queue=run.queue,
            lease_token=run.lease_token,
            history_length=len(run.history),
            inbox=[InboxEvent(item.id, item.event) for item in visible],
            failed_attempts=run.failed_attempts,
            ready_at=ready_at,
        )

    def _leased_run(self, task: WorkflowTask) -> _Run:
        run = self._runs.get((task.instance_id, task.run_id))
        if run is None or not run.status.is_open or run.lease_token != task.lease_token:
            raise LeaseLostError(
                f"the lease on workflow {task.instance_id!r} (run {task.run_id}) was lost: "
                "another worker took the task over, or the run was closed"
            )
        return run

    async def commit_workflow_task(
        self, task: WorkflowTask, commit: WorkflowCommit
    ) -> list[ActivityTask]:
        with self._lock:
            run = self._leased_run(task)
            validate_commit(run.instance_id, len(run.history), commit)
            wake = self._begin()
            now = self.clock()
            self._store.inserted = []
            apply_commit(self._store, run, commit, now)
            leased = self._lease_eager(run, commit, now, wake)
        self._waiters.notify(wake)
        return leased

    def _lease_eager(
        self, run: _Run, commit: WorkflowCommit, now: float, wake: set[Hashable]
    ) -> list[ActivityTask]:
        """Eager dispatch: lease the commit's activities the committing worker asked for
        (``commit.eager``), except on queues with limits or of a paused (or closed) run."""
        eager = commit.eager
        if eager is None or not run.status.is_open or run.paused_at is not None:
            return []
        wanted = set(eager.activity_ids)
        leased = []
        for stored in self._store.inserted:
            if (
                stored.activity_id in wanted
                and stored.queue not in self._queue_limits
                and self._activities.get(stored.task_id) is stored
            ):
                leased.append(self._lease_activity(stored, now, eager.lease_seconds))
        quiet_eager_queues(commit, leased, wake)
        return leased

    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        with self._lock:
            run = self._leased_run(task)
            run.lease_token = None
            run.lease_expires_at = None
            run.blocked_reason = reason
            run.sticky_worker = None
            run.ready_at = retry_at
            run.failed_attempts += 1
            run.updated_at = self.clock()
        self._waiters.notify([("workflow", run.queue)])

    async def release_workflow_task(self, task: WorkflowTask) -> None:
        with self._lock:
            try:
                run = self._leased_run(task)
            except LeaseLostError:
                return
            run.lease_token = None
            run.lease_expires_at = None
            run.sticky_worker = None
        self._waiters.notify([("workflow", run.queue)])

    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        wake: set[Hashable] = set()
        with self._lock:
            for runs in self._instances.values():
                run = runs[-1]  # the only one that can be open
                if run.sticky_worker == worker and run.status.is_open and run.queue in queues:
                    run.sticky_worker = None
                    wake.add(("workflow", run.queue))
        self._waiters.notify(wake)

    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        with self._lock:
            run = self._leased_run(task)
            run.lease_expires_at = self.clock() + lease_seconds

    # ---- activity worker side -----------------------------------------------------------

    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        wanted = set(queues)
        claimed: list[ActivityTask] = []
        if max_tasks < 1:
            return claimed
        with self._lock:
            now = self.clock()
            candidates: list[_ActivityTask] = []
            for task in list(self._activities.values()):
                if task.queue not in wanted or task.is_running(now):
                    continue
                if task.run.paused_at is not None and not task.cancel_requested:
                    continue  # no new attempt while its run is paused
                if task.cancel_requested:
                    # Cancelled while running and its worker is gone: never run it again.
                    del self._activities[task.task_id]
                elif task.visible_at <= now:
                    candidates.append(task)
            # claim_rank, inline: this sorts every ready task of the queues
            candidates.sort(key=lambda t: (t.visible_at - t.priority * PRIORITY_AGING, t.task_id))
            if self._queue_limits:
                candidates = self._within_limits(
                    candidates, self._activities.values(), now, max_tasks
                )
            for task in candidates[:max_tasks]:
                claimed.append(self._lease_activity(task, now, lease_seconds))
        return claimed

    @staticmethod
    def _lease_activity(task: _ActivityTask, now: float, lease_seconds: float) -> ActivityTask:
        # Claimable since its visible time, or since a vanished worker's lease ran out.
        ready_at = max(task.visible_at, task.lease_expires_at or task.visible_at)
        task.attempt += 1
        task.lease_token = new_lease_token()
        task.lease_expires_at = now + lease_seconds
        return ActivityTask(
            task_id=task.task_id,
            instance_id=task.run.instance_id,
            run_id=task.run.run_id,
            activity_id=task.activity_id,
            name=task.name,
            queue=task.queue,
            input=task.input,
            options=task.options,
            attempt=task.attempt,
            lease_token=task.lease_token,
            scheduled_at=task.scheduled_at,
            deadline=task.deadline,
            heartbeat_details=task.heartbeat_details,
            workflow_name=task.run.workflow_name,
            ready_at=ready_at,
        )

    def _leased_activity(self, task: ActivityTask) -> _ActivityTask:
        stored = self._activities.get(task.task_id)
        if stored is None or stored.lease_token != task.lease_token:
            raise LeaseLostError(
                f"the lease on activity {task.name!r} (id {task.activity_id}) of workflow "
                f"{task.instance_id!r}, attempt {task.attempt}, was lost: the task was "
                "completed, retried or claimed again by another worker"
            )
        return stored

    async def heartbeat_activity(
        self, task: ActivityTask, details: bytes | None, lease_seconds: float
    ) -> bool:
        with self._lock:
            stored = self._leased_activity(task)
            if details is not None:  # a lease tick without details keeps the stored ones
                stored.heartbeat_details = bytes(details)
            stored.lease_expires_at = self.clock() + lease_seconds
            return stored.cancel_requested

    async def complete_activity(
        self, task: ActivityTask, event: bytes, *, claim: LocalClaim | None = None
    ) -> WorkflowTask | None:
        follow = None
        with self._lock:
            stored = self._leased_activity(task)
            wake = self._begin()
            del self._activities[stored.task_id]
            run = stored.run
            if run.status.is_open and self._runs.get((run.instance_id, run.run_id)) is run:
                now = self.clock()
                self._store.push(run, event, now)
                if claim is not None and self._claimable_locally(run, claim.worker, now):
                    follow = self._lease_run(run, now, claim.lease_seconds)
                    wake.discard(("workflow", run.queue))  # taken: nothing for pollers
            if stored.queue in self._queue_limits:
                wake.add(("activity", stored.queue))  # a slot freed: held work may start
        self._waiters.notify(wake)
        return follow

    @staticmethod
    def _claimable_locally(run: _Run, worker: str, now: float) -> bool:
        """Continue locally: the run's next task may go to ``worker`` with its completion."""
        return (
            run.sticky_worker == worker
            and run.paused_at is None
            and (run.ready_at is None or run.ready_at <= now)
            and (run.lease_token is None or (run.lease_expires_at or 0.0) <= now)
        )

    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        with self._lock:
            stored = self._leased_activity(task)
            stored.lease_token = None
            stored.lease_expires_at = None
            stored.visible_at = visible_at
            if failure is not None:
                stored.last_failure = bytes(failure)
        self._waiters.notify([("activity", stored.queue)])

    async def previous_run_ids(self, instance_id: str, run_id: str, limit: int) -> list[str]:
        with self._lock:
            self._run(instance_id, run_id)  # WorkflowNotFoundError
            before = {
                r.next_run_id: r.run_id for r in self._instances[instance_id] if r.next_run_id
            }
        found: list[str] = []
        current = run_id
        while len(found) < limit and current in before:
            current = before[current]
            found.append(current)
        return found

    async def claim_closed_runs(self, queues: Sequence[str], limit: int) -> list[ClosedRun]:
        wanted = set(queues)
        with self._lock:
            store = self._store
            taken: list[ClosedRun] = []
            kept: list[tuple[_Run, bytes]] = []
            for run, mark in store.closed_to_report:
                if store.runs.get((run.instance_id, run.run_id)) is not run:
                    continue  # deleted meanwhile: nothing to report
                if run.queue not in wanted or len(taken) >= limit:
                    kept.append((run, mark))
                    continue
                assert run.closed_at is not None
                taken.append(
                    ClosedRun(
                        instance_id=run.instance_id,
                        run_id=run.run_id,
                        workflow_name=run.workflow_name,
                        queue=run.queue,
                        status=run.status,
                        closed_at=run.closed_at,
                        result=run.result,
                        started_event=started_of_mark(mark),
                    )
                )
            store.closed_to_report = kept
            return taken

    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        with self._lock:
            now = self.clock()
            return sorted(
                (
                    ActivityState(
                        activity_id=a.activity_id,
                        name=a.name,
                        attempt=a.attempt,
                        scheduled_at=a.scheduled_at,
                        visible_at=a.visible_at,
                        running=a.is_running(now),
                        cancel_requested=a.cancel_requested,
                        heartbeat_details=a.heartbeat_details,
                        last_failure=a.last_failure,
                    )
                    for a in self._activities.values()
                    if a.run.instance_id == instance_id and a.run.run_id == run_id
                ),
                key=lambda state: state.activity_id,
            )

    # ---- wake-ups --------------------------------------------------------------------------

    def _work_state(
        self, kind: str, queues: set[str], worker: str | None = None, sticky_wait: float = 0.0
    ) -> tuple[bool, float | None]:
        """(work is claimable now, earliest future time some becomes claimable)."""
        now = self.clock()
        soonest: float | None = None
        if kind == "workflow":
            for run in self._pending:
                if run.queue in queues:
                    at = self._claimable_at(run, now, worker, sticky_wait)
                    if at is not None:
                        if at <= now:
                            return True, None
                        soonest = at if soonest is None else min(soonest, at)
        else:
            limited = False
            for task in self._activities.values():
                if task.queue not in queues or task.cancel_requested:
                    continue
                if task.run.paused_at is not None:
                    continue
                at = task.visible_at
                if task.lease_token is not None and task.lease_expires_at is not None:
                    at = max(at, task.lease_expires_at)
                if at <= now:
                    if task.queue in self._queue_limits:
                        limited = True  # ready, unless its queue's limits hold it back
                        continue
                    return True, None
                soonest = at if soonest is None else min(soonest, at)
            if limited:
                # Work held back by limits is no work to wake for (a worker would claim
                # nothing): it is, once a slot frees (an attempt ends: a wake-up; a rate
                # window moves on: a time).
                ready = self._ready_activities(now, queues)
                held = self._held_by_limits(ready, self._activities.values(), now)
                for queue, tasks in ready.items():
                    if held.get(queue, 0) < len(tasks):
                        return True, None
                    frees = self._rate_frees_at(queue, now)
                    if frees is not None:
                        soonest = frees if soonest is None else min(soonest, frees)
        return False, soonest

    async def wait_for_work(
        self,
        kind: str,
        queues: Sequence[str],
        timeout: float,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> None:
        keys = work_keys(kind, queues)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self._waiters.register(keys)
        try:
            while True:
                with self._lock:
                    available, soonest = self._work_state(kind, set(queues), worker, sticky_wait)
                remaining = deadline - loop.time()
                if available or remaining <= 0:
                    return
                wait = remaining
                if soonest is not None:
                    wait = min(wait, max(soonest - self.clock(), 0.0))
                if await wait_on(waiter, wait):
                    return
        finally:
            self._waiters.unregister(waiter)
