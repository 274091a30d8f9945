"""A backend wrapper that lets the test environment see when its worker is idle.

The environment's worker and client talk to the real backend through this wrapper. It counts
the calls in flight, knows which worker pollers are parked in ``wait_for_work``, and how many
callers wait for a result (``wait_closed``, which is what ``handle.result()`` awaits). It can
also *kick* parked pollers so they look for work at once after the virtual clock moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from .._backends._contract import Backend
from .._backends._queue_limits import QueueLimits, QueueLimitStore
from .._backends._retention_store import RetentionStore
from .._backends._schedule_store import ScheduleRecord, ScheduleStore
from .._backends._types import (
    ActivityState,
    ActivityTask,
    BackendStats,
    Clock,
    LocalClaim,
    NewRun,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
)

__all__ = ["ObservedBackend"]

T = TypeVar("T")


class ObservedBackend(ScheduleStore, RetentionStore, QueueLimitStore, Backend):
    """Delegates every call to ``inner``; other attributes (``next_visible_time`` ...) are
    looked up on ``inner`` too."""

    def __init__(self, inner: Backend, on_change: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.eager_dispatch = inner.eager_dispatch
        self.on_change = on_change
        # Changes whenever a call starts or ends: a quiet backend keeps the same number.
        self.ops = 0
        self.calls_in_flight = 0
        self.result_waiters = 0
        # Kicks so far; a poller parked since the last kick is waiting for real.
        self.generation = 0
        self._parked: dict[tuple[str, int], int] = {}
        self._kick: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"ObservedBackend({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found normally: backend-specific extras.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def clock(self) -> Clock:
        return self.inner.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self.inner.clock = value

    # ---- observation ----------------------------------------------------------------------

    def parked(self, kind: str) -> int:
        """Pollers of ``kind`` waiting for work since the last kick."""
        return self._parked.get((kind, self.generation), 0)

    def kick(self) -> None:
        """Make every parked poller return from ``wait_for_work`` and look again."""
        self.generation += 1
        self._parked = {k: n for k, n in self._parked.items() if n}
        kick, self._kick = self._kick, None
        if kick is not None and not kick.done():
            kick.set_result(None)

    def _changed(self) -> None:
        self.ops += 1
        if self.on_change is not None:
            self.on_change()

    async def _op(self, call: Awaitable[T]) -> T:
        self.calls_in_flight += 1
        self._changed()
        try:
            return await call
        finally:
            self.calls_in_flight -= 1
            self._changed()

    # ---- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        await self._op(self.inner.open())

    async def close(self) -> None:
        await self._op(self.inner.close())

    # ---- client side ------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> None:
        await self._op(self.inner.create_run(run))

    async def signal(self, instance_id: str, event: bytes) -> None:
        await self._op(self.inner.signal(instance_id, event))

    async def request_cancel(self, instance_id: str, event: bytes) -> None:
        await self._op(self.inner.request_cancel(instance_id, event))

    async def terminate(self, instance_id: str, reason: str) -> None:
        await self._op(self.inner.terminate(instance_id, reason))

    async def pause(self, instance_id: str, reason: str | None = None) -> bool:
        return await self._op(self.inner.pause(instance_id, reason))

    async def resume(self, instance_id: str) -> bool:
        return await self._op(self.inner.resume(instance_id))

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        return await self._op(self.inner.describe(instance_id, run_id))

    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        return await self._op(self.inner.history(instance_id, run_id))

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
        return await self._op(
            self.inner.list_runs(
                status=status,
                workflow_name=workflow_name,
                limit=limit,
                cursor=cursor,
                queue=queue,
                tags=tags,
                started_after=started_after,
                started_before=started_before,
                closed_after=closed_after,
                blocked=blocked,
                paused=paused,
            )
        )

    async def stats(self) -> BackendStats:
        return await self._op(self.inner.stats())

    async def delete(self, instance_id: str) -> None:
        await self._op(self.inner.delete(instance_id))

    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        return await self._op(self.inner.get_vars(instance_id))

    async def wait_closed(self, instance_id: str, run_id: str, timeout: float | None) -> RunInfo:
        # Not a call in flight: a result waiter is what lets the clock skip.
        self.result_waiters += 1
        self._changed()
        try:
            return await self.inner.wait_closed(instance_id, run_id, timeout)
        finally:
            self.result_waiters -= 1
            self._changed()

    # ---- workflow worker side -----------------------------------------------------------

    async def claim_workflow_tasks(
        self,
        queues: Sequence[str],
        lease_seconds: float,
        max_tasks: int,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> list[WorkflowTask]:
        return await self._op(
            self.inner.claim_workflow_tasks(
                queues, lease_seconds, max_tasks, worker=worker, sticky_wait=sticky_wait
            )
        )

    async def commit_workflow_task(
        self, task: WorkflowTask, commit: WorkflowCommit
    ) -> list[ActivityTask]:
        return await self._op(self.inner.commit_workflow_task(task, commit))

    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        await self._op(self.inner.fail_workflow_task(task, reason, retry_at))

    async def release_workflow_task(self, task: WorkflowTask) -> None:
        await self._op(self.inner.release_workflow_task(task))

    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        await self._op(self.inner.release_sticky(worker, queues))

    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        await self._op(self.inner.extend_workflow_lease(task, lease_seconds))

    # ---- activity worker side -----------------------------------------------------------

    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        return await self._op(self.inner.claim_activity_tasks(queues, lease_seconds, max_tasks))

    async def heartbeat_activity(
        self, task: ActivityTask, details: bytes | None, lease_seconds: float
    ) -> bool:
        return await self._op(self.inner.heartbeat_activity(task, details, lease_seconds))

    async def complete_activity(
        self, task: ActivityTask, event: bytes, *, claim: LocalClaim | None = None
    ) -> WorkflowTask | None:
        if claim is None:  # a backend without eager dispatch takes no claim
            return await self._op(self.inner.complete_activity(task, event))
        return await self._op(self.inner.complete_activity(task, event, claim=claim))

    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        await self._op(self.inner.retry_activity(task, visible_at, failure))

    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        return await self.inner.activity_states(instance_id, run_id)

    # ---- schedules -------------------------------------------------------------------------
    # Reads are not counted as activity: a worker looks for due schedules every poll
    # interval, which must not keep the environment from seeing its worker idle.

    def _schedules(self) -> ScheduleStore:
        if not isinstance(self.inner, ScheduleStore):
            raise TypeError(f"{type(self.inner).__name__} does not store schedules")
        return self.inner

    async def create_schedule(self, record: ScheduleRecord) -> bool:
        return await self._op(self._schedules().create_schedule(record))

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        return await self._schedules().get_schedule(schedule_id)

    async def list_schedules(
        self, *, after: str | None = None, limit: int = 1000
    ) -> list[ScheduleRecord]:
        return await self._schedules().list_schedules(after=after, limit=limit)

    async def update_schedule(self, record: ScheduleRecord, expected_version: int) -> bool:
        return await self._op(self._schedules().update_schedule(record, expected_version))

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self._op(self._schedules().delete_schedule(schedule_id))

    async def due_schedules(
        self, queues: Sequence[str], now: float, limit: int
    ) -> list[ScheduleRecord]:
        return await self._schedules().due_schedules(queues, now, limit)

    async def next_schedule_fire(self, queues: Sequence[str]) -> float | None:
        return await self._schedules().next_schedule_fire(queues)

    def _retention(self) -> RetentionStore:
        if not isinstance(self.inner, RetentionStore):
            raise TypeError(f"{type(self.inner).__name__} does not implement RetentionStore")
        return self.inner

    async def delete_closed_instances(
        self, closed_before: float, statuses: Sequence[RunStatus], limit: int
    ) -> int:
        return await self._op(
            self._retention().delete_closed_instances(closed_before, statuses, limit)
        )

    async def redact_run(self, instance_id: str, run_id: str, history: Sequence[bytes]) -> None:
        await self._op(self._retention().redact_run(instance_id, run_id, history))

    async def closed_runs_to_redact(
        self, closed_before: float, limit: int
    ) -> list[tuple[str, str]]:
        return await self._retention().closed_runs_to_redact(closed_before, limit)

    async def claim_sweep(self, name: str, holder: str, lease_seconds: float) -> bool:
        return await self._op(self._retention().claim_sweep(name, holder, lease_seconds))

    async def release_sweep(self, name: str, holder: str) -> None:
        await self._op(self._retention().release_sweep(name, holder))

    # ---- queue limits (docs/queues.md): enforced by the inner backend, on the virtual clock

    def _limits(self) -> QueueLimitStore:
        if not isinstance(self.inner, QueueLimitStore):
            raise TypeError(
                f"{type(self.inner).__name__} does not store queue limits: it must implement "
                "ostinato.backends.QueueLimitStore (docs/queues.md)"
            )
        return self.inner

    @property
    def limited_claims(self) -> int:
        # The worker backs off when the inner backend's claims found a queue at its limit.
        return int(getattr(self.inner, "limited_claims", 0))

    @limited_claims.setter
    def limited_claims(self, value: int) -> None:
        self.inner.limited_claims = value  # type: ignore[attr-defined]

    async def set_queue_limits(self, queue: str, limits: QueueLimits | None) -> None:
        await self._op(self._limits().set_queue_limits(queue, limits))

    async def get_queue_limits(self, queue: str) -> QueueLimits | None:
        return await self._limits().get_queue_limits(queue)

    # ---- wake-ups --------------------------------------------------------------------------

    async def wait_for_work(
        self,
        kind: str,
        queues: Sequence[str],
        timeout: float,
        *,
        worker: str | None = None,
        sticky_wait: float = 0.0,
    ) -> None:
        if self._kick is None:
            self._kick = asyncio.get_running_loop().create_future()
        kick = self._kick
        key = (kind, self.generation)
        self._parked[key] = self._parked.get(key, 0) + 1
        waiting = asyncio.ensure_future(
            self.inner.wait_for_work(kind, queues, timeout, worker=worker, sticky_wait=sticky_wait)
        )
        try:
            await asyncio.wait({waiting, kick}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._parked[key] -= 1
            if not waiting.done():
                waiting.cancel()
                waiting.add_done_callback(_consume)
        if waiting.done() and not waiting.cancelled():
            waiting.result()  # re-raise a backend error


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
