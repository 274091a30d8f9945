"""The activity worker side of the PostgreSQL backend: claims, heartbeats, completions
(batched) and retries of activity tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ..._errors import (
    LeaseLostError,
)
from .._queue_limits import QueueLimits, QueueLimitStore, claim_budget
from .._rows import inboxes_by_run
from .._tokens import new_lease_token
from .._types import ActivityState, ActivityTask, InboxEvent, LocalClaim, WorkflowTask
from ._core import (
    _Completion,
    _Core,
    _Effects,
)
from ._pool import Conn


class _ActivitySide(_Core, QueueLimitStore):
    # ---- activity worker side -----------------------------------------------------------

    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        if max_tasks < 1 or not queues:
            return []

        async def body(conn: Conn, effects: _Effects) -> list[ActivityTask]:
            now = self.clock()
            rows = await self._fetchall_unflushed(
                conn,
                "claim_activity_tasks",
                {
                    "queues": list(queues),
                    "now": now,
                    "lease_seconds": lease_seconds,
                    "max_tasks": max_tasks,
                },
            )
            return self._activity_tasks(rows)

        limited = await self._run(
            "reading queue limits",
            lambda conn, effects: self._fetchall(conn, "limited_queues", {"queues": list(queues)}),
            transaction=False,
        )
        if limited:
            return await self._claim_within_limits(queues, lease_seconds, max_tasks)
        # One statement: atomic without a transaction block (one round trip, not four).
        return await self._run("claiming activity tasks", body, transaction=False)

    async def _claim_within_limits(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        """A claim on queues of which some have limits: in one transaction, lock their limits
        rows, count what is in flight and started, and claim within the budget."""

        async def body(conn: Conn, effects: _Effects) -> list[ActivityTask]:
            now = self.clock()
            locked = await self._fetchall(conn, "lock_queue_limits", {"queues": list(queues)})
            params: dict[str, Any] = {"now": now, "lease_seconds": lease_seconds}
            # The unlimited queues (the statement skips limited ones by itself).
            rows = await self._fetchall(
                conn,
                "claim_activity_tasks",
                params | {"queues": list(queues), "max_tasks": max_tasks},
            )
            for queue, *values in locked:
                limits = QueueLimits(*values)
                usage = await self._fetchone(
                    conn, "queue_usage", {"queue": queue, "now": now, "period": limits.rate_period}
                )
                budget = min(max_tasks - len(rows), claim_budget(limits, usage[0], usage[1]))
                if budget <= 0:
                    self.limited_claims += 1
                    continue
                per_key = limits.max_concurrent_per_key
                claimed = await self._fetchall(
                    conn,
                    "claim_limited_activity_tasks"
                    if per_key is None
                    else "claim_keyed_activity_tasks",
                    params | {"queue": queue, "max_tasks": budget, "per_key": per_key},
                )
                if per_key is not None and len(claimed) < budget:
                    self.limited_claims += 1  # maybe keys at their limit, maybe no more work
                if claimed and limits.rate_count is not None:
                    await self._execute(
                        conn,
                        "record_queue_starts",
                        {"queue": queue, "now": now, "count": len(claimed)},
                    )
                rows += claimed
            return self._activity_tasks(rows)

        return await self._run("claiming activity tasks of limited queues", body)

    @staticmethod
    def _activity_tasks(rows: list[Any]) -> list[ActivityTask]:
        rows.sort(key=lambda r: (r[13], r[0]))  # visible_at, task_id
        return [
            ActivityTask(
                task_id=r[0],
                instance_id=r[1],
                run_id=r[2],
                activity_id=r[3],
                name=bytes(r[4]).decode(),
                queue=r[5],
                input=bytes(r[6]),
                options=bytes(r[7]),
                attempt=r[8],
                lease_token=r[9],
                scheduled_at=r[10],
                deadline=r[11],
                heartbeat_details=None if r[12] is None else bytes(r[12]),
                workflow_name=r[14],
                ready_at=r[15],
            )
            for r in rows
        ]

    async def set_queue_limits(self, queue: str, limits: QueueLimits | None) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            if limits is None or limits.is_empty:
                await self._execute(conn, "delete_queue_limits", {"queue": queue})
            else:
                params = {
                    "queue": queue,
                    "max_concurrent": limits.max_concurrent,
                    "rate_count": limits.rate_count,
                    "rate_period": limits.rate_period,
                    "per_key": limits.max_concurrent_per_key,
                }
                await self._execute(conn, "set_queue_limits", params)
            self._work(effects, "activity", queue, sql_notifies=False)

        await self._run(f"setting the limits of queue {queue!r}", body)

    async def get_queue_limits(self, queue: str) -> QueueLimits | None:
        async def body(conn: Conn, effects: _Effects) -> QueueLimits | None:
            row = await self._fetchone(conn, "get_queue_limits", {"queue": queue})
            return None if row is None else QueueLimits(*row[1:])

        return await self._run(f"reading the limits of queue {queue!r}", body, transaction=False)

    def _activity_lease_lost(self, task: ActivityTask) -> LeaseLostError:
        return LeaseLostError(
            f"the lease on activity {task.name!r} (id {task.activity_id}) of workflow "
            f"{task.instance_id!r}, attempt {task.attempt}, was lost: the task was "
            "completed, retried or claimed again by another worker"
        )

    async def heartbeat_activity(
        self, task: ActivityTask, details: bytes | None, lease_seconds: float
    ) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            params = {
                "task_id": task.task_id,
                "lease_token": task.lease_token,
                "details": None if details is None else bytes(details),
                "lease_seconds": lease_seconds,
                "now": self.clock(),
            }
            if details is None:  # a lease tick only: no need to wait for the disk
                rows = await self._fetchall_unflushed(conn, "heartbeat_activity", params)
            else:  # the details an attempt resumes from are kept durably
                rows = await self._fetchall(conn, "heartbeat_activity", params)
            if not rows:
                raise self._activity_lease_lost(task)
            return bool(rows[0][0])

        return await self._run(
            f"recording a heartbeat of activity {task.name!r}", body, transaction=False
        )

    async def complete_activity(
        self, task: ActivityTask, event: bytes, *, claim: LocalClaim | None = None
    ) -> WorkflowTask | None:
        # Group commit: concurrent completions go in the same statement.
        return await self._completions.submit((task, bytes(event), claim))

    async def _complete_claiming(
        self, task: ActivityTask, event: bytes, claim: LocalClaim
    ) -> WorkflowTask | None:
        """Continue locally: the completion, and the run's next workflow task for
        ``claim.worker`` if it has the run cached and nothing else holds it."""
        token = new_lease_token()
        now = self.clock()

        async def body(conn: Conn, effects: _Effects) -> WorkflowTask | None:
            row = await self._fetchone(
                conn,
                "complete_activity_claiming",
                {
                    "task_id": task.task_id,
                    "lease_token": task.lease_token,
                    "event": event,
                    "now": now,
                    "channel": self._channels["workflow"],
                    "new_lease_token": token,
                    "lease_seconds": claim.lease_seconds,
                    "worker": claim.worker,
                },
            )
            if row is None or not row[0]:
                raise self._activity_lease_lost(task)
            _, queue, _, workflow_name, history_length, failed, ids, events = row
            if queue is None:
                return None  # the run is closed
            if workflow_name is None:
                self._work(effects, "workflow", queue, sql_notifies=True)
                return None
            return WorkflowTask(
                instance_id=task.instance_id,
                run_id=task.run_id,
                workflow_name=workflow_name,
                queue=queue,
                lease_token=token,
                history_length=history_length,
                inbox=[InboxEvent(i, bytes(e)) for i, e in zip(ids, events, strict=True)],
                failed_attempts=failed,
                ready_at=now,  # made ready by this completion and handed over at once
            )

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the task gone and reports LeaseLostError; nothing is written twice (the run,
        # if it was leased, comes back when the lease expires).
        return await self._run(
            f"completing activity {task.name!r} of workflow {task.instance_id!r}",
            body,
            transaction=False,
        )

    async def _apply_completions(
        self, items: list[_Completion]
    ) -> list[WorkflowTask | BaseException | None]:
        """One batch of ``_completions``: per item the workflow task leased by continuing
        locally, None (done) or the caller's exception."""
        if len(items) > 1:
            try:
                return await self._complete_many(items)
            except psycopg.OperationalError:
                raise  # outcome unknown: every caller gets the error
            except (psycopg.Error, ValueError):
                pass  # nothing was written: one by one, each caller gets its own outcome
        outcomes: list[WorkflowTask | BaseException | None] = []
        for task, event, claim in items:
            try:
                if claim is None:
                    await self._complete_one(task, event)
                    outcomes.append(None)
                else:
                    outcomes.append(await self._complete_claiming(task, event, claim))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    async def _complete_many(
        self, items: list[_Completion]
    ) -> list[WorkflowTask | BaseException | None]:
        tokens = [None if claim is None else new_lease_token() for _, _, claim in items]
        now = self.clock()

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            rows = await self._fetchall(
                conn,
                "complete_activities",
                {
                    "task_ids": [task.task_id for task, _, _ in items],
                    "lease_tokens": [task.lease_token for task, _, _ in items],
                    "events": [event for _, event, _ in items],
                    "workers": [None if c is None else c.worker for _, _, c in items],
                    "new_lease_tokens": tokens,
                    "lease_seconds": [None if c is None else c.lease_seconds for _, _, c in items],
                    "now": now,
                    "channel": self._channels["workflow"],
                },
                prepare=False,
            )
            leased_runs = {items[k - 1][0].run_id for k, *_, name, _, _ in rows if name}
            for k, queue, *_ in rows:
                if queue is not None and items[k - 1][0].run_id not in leased_runs:
                    self._work(effects, "workflow", queue, sql_notifies=True)
            return rows

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the tasks gone and reports LeaseLostError; nothing is written twice.
        rows = await self._run(f"completing {len(items)} activities", body, transaction=False)
        done = {k for k, *_ in rows}
        leased = {k: (queue, name, length, failed) for k, queue, _, name, length, failed in rows}
        inboxes, ready_ats = await self._inboxes_of(
            [items[k - 1][0] for k, (_, name, _, _) in leased.items() if name], now
        )
        outcomes: list[WorkflowTask | BaseException | None] = []
        for k, (task, _, _) in enumerate(items, 1):
            if k not in done:
                outcomes.append(self._activity_lease_lost(task))
                continue
            queue, name, length, failed = leased[k]
            token = tokens[k - 1]
            if name is None or queue is None or token is None:
                outcomes.append(None)
                continue
            outcomes.append(
                WorkflowTask(
                    instance_id=task.instance_id,
                    run_id=task.run_id,
                    workflow_name=name,
                    queue=queue,
                    lease_token=token,
                    history_length=length,
                    inbox=inboxes.get((task.instance_id, task.run_id), []),
                    failed_attempts=failed,
                    ready_at=ready_ats.get((task.instance_id, task.run_id)),
                )
            )
        return outcomes

    async def _inboxes_of(
        self, tasks: list[ActivityTask], now: float
    ) -> tuple[dict[tuple[str, str], list[InboxEvent]], dict[tuple[str, str], float]]:
        """The visible inbox events of the runs of ``tasks`` (and when the first became
        visible), leased to this worker by their
        completions (nobody else consumes them meanwhile), as claim_workflow_tasks reads
        them."""
        if not tasks:
            return {}, {}

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            return await self._fetchall(
                conn,
                "visible_inbox",
                {
                    "instance_ids": [t.instance_id for t in tasks],
                    "run_ids": [t.run_id for t in tasks],
                    "now": now,
                },
            )

        rows = await self._run(
            "reading the inboxes of runs continued locally", body, transaction=False
        )
        return inboxes_by_run(rows)

    async def _complete_one(self, task: ActivityTask, event: bytes) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "complete_activity",
                {
                    "task_id": task.task_id,
                    "lease_token": task.lease_token,
                    "event": bytes(event),
                    "now": self.clock(),
                    "channel": self._channels["workflow"],
                },
            )
            if row is None or not row[0]:
                raise self._activity_lease_lost(task)
            if row[1] is not None:
                self._work(effects, "workflow", row[1], sql_notifies=True)

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the task gone and reports LeaseLostError; nothing is written twice.
        await self._run(
            f"completing activity {task.name!r} of workflow {task.instance_id!r}",
            body,
            transaction=False,
        )

    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "retry_activity",
                {
                    "task_id": task.task_id,
                    "lease_token": task.lease_token,
                    "visible_at": visible_at,
                    "failure": None if failure is None else bytes(failure),
                    "channel": self._channels["activity"],
                },
            )
            if row is None:
                raise self._activity_lease_lost(task)
            self._work(effects, "activity", row[0], sql_notifies=True)

        await self._run(f"scheduling a retry of activity {task.name!r}", body, transaction=False)

    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        async def body(conn: Conn, effects: _Effects) -> list[ActivityState]:
            rows = await self._fetchall(
                conn,
                "activity_states",
                {"instance_id": instance_id, "run_id": run_id, "now": self.clock()},
            )
            return [
                ActivityState(
                    activity_id=activity_id,
                    name=bytes(name).decode(),
                    attempt=attempt,
                    scheduled_at=scheduled_at,
                    visible_at=visible_at,
                    running=running,
                    cancel_requested=cancel_requested,
                    heartbeat_details=None if details is None else bytes(details),
                    last_failure=None if failure is None else bytes(failure),
                )
                for (
                    activity_id,
                    name,
                    attempt,
                    scheduled_at,
                    visible_at,
                    running,
                    cancel_requested,
                    details,
                    failure,
                ) in rows
            ]

        return await self._run(
            f"reading the activities of workflow {instance_id!r}", body, transaction=False
        )
