"""The SQLite backend (stdlib ``sqlite3``): one file, many processes, fsync on commit.

``SqliteBackend`` is its operations over ``_sqlite_core.SqliteCore`` (the connection, its
writer thread and group commit: the concurrency model is described there). Claims run inside
the writer's ``BEGIN IMMEDIATE`` transactions, so they are atomic across processes; another
process's commits are noticed by polling (20-200 ms, adaptive), commits in this process wake
waiters at once.

Where things are: the SQL is in ``sql/sqlite/`` (named blocks, loaded by ``_sqlite_sql``);
commits, closes, terminates and starts run the shared algorithm of ``_apply`` over
``_sqlite_store.SqliteStore``; this module holds the operations of its own (claims, listing,
activity tasks, wake-ups).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ._apply import apply_commit, start_run, terminate_run
from ._contract import TimeSkipping
from ._rows import check_history_length
from ._sqlite_core import SAFETY_NET
from ._sqlite_retention import SqliteRetention, delete_instance_rows
from ._sqlite_schedules import SqliteSchedules
from ._sqlite_sql import QUERIES as Q
from ._sqlite_sql import load_migrations
from ._sqlite_store import RunRow, SqliteStore, Wake, push
from ._tokens import decode_cursor, encode_cursor, new_lease_token
from ._types import (
    ActivityState,
    ActivityTask,
    BackendStats,
    InboxEvent,
    NewRun,
    QueueBacklog,
    RunCount,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
)
from ._validate import validate_commit, validate_new_run
from ._wakeups import wait_on, work_keys

__all__ = ["SqliteBackend", "load_migrations"]


def _claimable_params(now: float, worker: str, sticky_wait: float) -> tuple[object, ...]:
    """The parameters of the ``claimable`` fragment of queries.sql."""
    return (now, now, now, worker, sticky_wait, now)


class SqliteBackend(SqliteSchedules, SqliteRetention, TimeSkipping):
    """Workflows in one SQLite file (or ``":memory:"``).

    ``durable=True`` (default) runs with ``synchronous=FULL``: a committed workflow task
    survives a power loss. ``durable=False`` uses ``synchronous=NORMAL``: still safe against
    process crashes, but the last commits may be lost if the machine loses power; it saves
    one fsync per commit.
    ``busy_timeout`` is how long SQLite waits for another process's write lock in one try;
    ``lock_timeout`` bounds the total retrying before an operation fails.
    ``group_commit=False`` commits every operation on its own (for benchmarks).
    """

    def __repr__(self) -> str:
        return f"SqliteBackend({self.path!r}, durable={self.durable})"

    async def __aenter__(self) -> SqliteBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def next_visible_time(self) -> float | None:
        """The earliest time after now at which a timer, delayed start, back-off or activity
        retry becomes visible, or the next schedule fire (which may be due already); None
        when nothing is scheduled."""

        def op(conn: sqlite3.Connection, wake: Wake) -> float | None:
            now = self.clock()
            times = [
                conn.execute(Q[query], (now,))
                for query in (
                    "next_visible_inbox",
                    "next_visible_ready",
                    "next_visible_activity",
                    "next_visible_schedule",
                )
            ]
            found = [row[0] for cursor in times for row in cursor if row[0] is not None]
            return min(found, default=None)

        return await self._read(op)

    def wake_waiters(self) -> None:
        """Wake every waiter so it looks again (after moving a virtual clock forward)."""
        self._waiters.notify_all()

    # ---- helpers run on the writer thread ---------------------------------------------------

    @staticmethod
    def _run_row(conn: sqlite3.Connection, instance_id: str, run_id: str | None) -> RunRow:
        if run_id is None:
            row = conn.execute(Q["latest_run"], (instance_id,)).fetchone()
            if row is None:
                raise WorkflowNotFoundError(instance_id)
        else:
            row = conn.execute(Q["run_by_id"], (instance_id, run_id)).fetchone()
            if row is None:
                raise WorkflowNotFoundError(
                    instance_id, f"no workflow with id {instance_id!r} and run id {run_id!r}"
                )
        return RunRow.from_row(row)

    # ---- client side ------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> None:
        validate_new_run(run)

        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            start_run(SqliteStore(conn, wake), run, self.clock())

        await self._call(op)

    async def signal(self, instance_id: str, event: bytes) -> None:
        await self._deliver(instance_id, event)

    async def request_cancel(self, instance_id: str, event: bytes) -> None:
        await self._deliver(instance_id, event)

    async def _deliver(self, instance_id: str, event: bytes) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._run_row(conn, instance_id, None)
            if not run.status.is_open:
                raise WorkflowNotRunningError(instance_id, run.status.value)
            push(conn, run.pk, run.queue, event, self.clock(), wake)

        await self._call(op)

    async def terminate(self, instance_id: str, reason: str) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._run_row(conn, instance_id, None)
            if not run.status.is_open:
                raise WorkflowNotRunningError(instance_id, run.status.value)
            terminate_run(SqliteStore(conn, wake), run, reason, self.clock())

        await self._call(op)

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        def op(conn: sqlite3.Connection, wake: Wake) -> RunInfo:
            return self._run_row(conn, instance_id, run_id).info()

        return await self._read(op)

    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[bytes]:
            run = self._run_row(conn, instance_id, run_id)
            rows = conn.execute(Q["history"], (run.pk,))
            events = [bytes(event) for (event,) in rows]
            return check_history_length(run.instance_id, run.run_id, run.history_length, events)

        return await self._read(op)

    async def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[RunInfo], str | None]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        filters: list[str] = []
        params: list[object] = []
        if cursor is not None:
            filters.append("filter_before")
            params.append(decode_cursor(cursor))
        if status is not None:
            filters.append("filter_status")
            params.append(RunStatus(status).value)
        if workflow_name is not None:
            filters.append("filter_workflow")
            params.append(workflow_name)
        sql = Q.list_runs(filters)
        params.append(limit + 1)

        def op(conn: sqlite3.Connection, wake: Wake) -> list[RunRow]:
            return [RunRow.from_row(row) for row in conn.execute(sql, params)]

        rows = await self._read(op)
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].pk) if len(rows) > limit else None
        return [row.info() for row in page], next_cursor

    async def stats(self) -> BackendStats:
        def op(conn: sqlite3.Connection, wake: Wake) -> BackendStats:
            now = self.clock()
            runs = [
                RunCount(name, RunStatus(status), bool(blocked), count)
                for name, status, blocked, count in conn.execute(Q["stats_runs"])
            ]
            # queue -> [workflow tasks, activity tasks, oldest ready at]
            queues: dict[str, list[Any]] = {}
            workflow_rows = conn.execute(
                Q["stats_workflow_backlog"], _claimable_params(now, "", 0.0)
            )
            for queue_name, count, since in workflow_rows:
                queues[queue_name] = [count, 0, since]
            activity_rows = conn.execute(Q["stats_activity_backlog"], (now,))
            for queue_name, count, since in activity_rows:
                entry = queues.setdefault(queue_name, [0, 0, since])
                entry[1] = count
                entry[2] = since if entry[2] is None else min(entry[2], since)
            backlog = [QueueBacklog(q, *queues[q]) for q in sorted(queues)]
            return BackendStats(now=now, runs=runs, backlog=backlog)

        return await self._read(op)

    async def delete(self, instance_id: str) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            latest = self._run_row(conn, instance_id, None)
            if latest.status.is_open:
                raise WorkflowAlreadyStartedError(
                    instance_id,
                    f"workflow {instance_id!r} is still running; terminate it before deleting",
                )
            delete_instance_rows(conn, instance_id)

        await self._call(op)

    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        def op(conn: sqlite3.Connection, wake: Wake) -> dict[str, bytes]:
            run = self._run_row(conn, instance_id, None)
            rows = conn.execute(Q["get_vars"], (run.pk,))
            return {name: value for name, value in rows}

        return await self._read(op)

    async def wait_closed(self, instance_id: str, run_id: str, timeout: float | None) -> RunInfo:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        waiter = self._waiters.register([("closed", instance_id, run_id)])
        try:
            while True:
                info = await self.describe(instance_id, run_id)
                if not info.status.is_open:
                    return info
                # Woken by in-process commits at once and by other processes' commits
                # through the writer thread's data_version check; the timeout is a safety net.
                wait = SAFETY_NET
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return info
                    wait = min(wait, remaining)
                if await wait_on(waiter, wait):
                    self._waiters.unregister(waiter)
                    waiter = self._waiters.register([("closed", instance_id, run_id)])
        finally:
            self._waiters.unregister(waiter)

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
        queues = list(queues)
        if max_tasks < 1 or not queues:
            return []
        find = Q.for_queues("find_claimable_runs", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> list[WorkflowTask]:
            now = self.clock()
            claimable = _claimable_params(now, worker or "", sticky_wait)
            found = conn.execute(find, (*queues, *claimable, max_tasks)).fetchall()
            tasks = []
            for pk, _ in found:
                token = new_lease_token()
                conn.execute(Q["lease_run"], (token, now + lease_seconds, pk))
                row = conn.execute(Q["claimed_run"], (pk,)).fetchone()
                inbox = conn.execute(Q["visible_inbox"], (pk, now))
                tasks.append(
                    WorkflowTask(
                        instance_id=row[0],
                        run_id=row[1],
                        workflow_name=row[2],
                        queue=row[3],
                        lease_token=token,
                        history_length=row[4],
                        inbox=[InboxEvent(i, e) for i, e in inbox],
                        failed_attempts=row[5],
                    )
                )
            return tasks

        return await self._call(op)

    def _leased_run(self, conn: sqlite3.Connection, task: WorkflowTask) -> RunRow:
        row = conn.execute(Q["run_by_id"], (task.instance_id, task.run_id)).fetchone()
        run = None if row is None else RunRow.from_row(row)
        if run is None or not run.status.is_open or run.lease_token != task.lease_token:
            raise LeaseLostError(
                f"the lease on workflow {task.instance_id!r} (run {task.run_id}) was lost: "
                "another worker took the task over, or the run was closed"
            )
        return run

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            validate_commit(run.instance_id, run.history_length, commit)
            apply_commit(SqliteStore(conn, wake), run, commit, self.clock())

        await self._call(op)

    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            conn.execute(Q["fail_task"], (reason, retry_at, self.clock(), run.pk))
            wake.add(("workflow", run.queue))

        await self._call(op)

    async def release_workflow_task(self, task: WorkflowTask) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            try:
                run = self._leased_run(conn, task)
            except LeaseLostError:
                return
            conn.execute(Q["release_task"], (run.pk,))
            wake.add(("workflow", run.queue))

        await self._call(op)

    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        queues = list(queues)
        if not queues:
            return

        find = Q.for_queues("sticky_queues", len(queues))
        release = Q.for_queues("release_sticky", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            released = conn.execute(find, (worker, *queues)).fetchall()
            conn.execute(release, (worker, *queues))
            wake.update(("workflow", queue) for (queue,) in released)

        await self._call(op)

    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run = self._leased_run(conn, task)
            conn.execute(Q["extend_run_lease"], (self.clock() + lease_seconds, run.pk))

        await self._call(op)

    # ---- activity worker side -----------------------------------------------------------

    async def claim_activity_tasks(
        self, queues: Sequence[str], lease_seconds: float, max_tasks: int
    ) -> list[ActivityTask]:
        queues = list(queues)
        if max_tasks < 1 or not queues:
            return []
        drop = Q.for_queues("drop_cancelled_activities", len(queues))
        find = Q.for_queues("find_claimable_activities", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityTask]:
            now = self.clock()
            conn.execute(drop, (*queues, now))
            rows = conn.execute(find, (*queues, now, max_tasks)).fetchall()
            claimed = []
            expires = now + lease_seconds
            for row in rows:
                token = new_lease_token()
                conn.execute(Q["lease_activity"], (token, expires, expires, row[0]))
                claimed.append(
                    ActivityTask(
                        task_id=row[0],
                        instance_id=row[1],
                        run_id=row[2],
                        activity_id=row[3],
                        name=row[4],
                        queue=row[5],
                        input=row[6],
                        options=row[7],
                        attempt=row[8] + 1,
                        lease_token=token,
                        scheduled_at=row[9],
                        deadline=row[10],
                        heartbeat_details=row[11],
                        workflow_name=row[12],
                    )
                )
            return claimed

        return await self._call(op)

    @staticmethod
    def _leased_activity(conn: sqlite3.Connection, task: ActivityTask) -> tuple[int, int]:
        """(run pk, cancel_requested) of the task, if ``task`` still holds its lease."""
        row = conn.execute(Q["leased_activity"], (task.task_id, task.lease_token)).fetchone()
        if row is None:
            raise LeaseLostError(
                f"the lease on activity {task.name!r} (id {task.activity_id}) of workflow "
                f"{task.instance_id!r}, attempt {task.attempt}, was lost: the task was "
                "completed, retried or claimed again by another worker"
            )
        return row[0], row[1]

    async def heartbeat_activity(
        self, task: ActivityTask, details: bytes | None, lease_seconds: float
    ) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            _, cancel_requested = self._leased_activity(conn, task)
            expires = self.clock() + lease_seconds
            conn.execute(
                Q["heartbeat_activity"],
                (None if details is None else bytes(details), expires, expires, task.task_id),
            )
            return bool(cancel_requested)

        return await self._call(op)

    async def complete_activity(self, task: ActivityTask, event: bytes) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            run_pk, _ = self._leased_activity(conn, task)
            conn.execute(Q["delete_activity"], (task.task_id,))
            row = conn.execute(Q["open_run_queue_by_pk"], (run_pk,)).fetchone()
            if row is not None:
                push(conn, run_pk, row[0], event, self.clock(), wake)

        await self._call(op)

    async def retry_activity(
        self, task: ActivityTask, visible_at: float, failure: bytes | None = None
    ) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            self._leased_activity(conn, task)
            conn.execute(
                Q["retry_activity"],
                (visible_at, None if failure is None else bytes(failure), task.task_id),
            )
            wake.add(("activity", task.queue))

        await self._call(op)

    async def activity_states(self, instance_id: str, run_id: str) -> list[ActivityState]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityState]:
            now = self.clock()
            rows = conn.execute(Q["activity_states"], (instance_id, run_id)).fetchall()
            return [
                ActivityState(
                    activity_id=row[0],
                    name=row[1],
                    attempt=row[2],
                    scheduled_at=row[3],
                    visible_at=row[4],
                    running=row[5] is not None and row[5] > now,
                    cancel_requested=bool(row[6]),
                    heartbeat_details=row[7],
                    last_failure=row[8],
                )
                for row in rows
            ]

        return await self._read(op)

    # ---- wake-ups --------------------------------------------------------------------------

    def _work_probe(
        self, kind: str, queues: list[str], worker: str, sticky_wait: float
    ) -> Callable[[sqlite3.Connection, Wake], tuple[bool, float | None]]:
        """(work is claimable now, earliest future time some becomes claimable). Each query
        comes with its parameters as a function of ``now``."""
        n = len(queues)
        Query = tuple[str, Callable[[float], tuple[object, ...]]]
        available: Query
        soonest: list[Query]
        if kind == "workflow":
            available = (
                Q.for_queues("workflow_work_available", n),
                lambda now: (*queues, *_claimable_params(now, worker, sticky_wait)),
            )
            soonest = [
                (Q.for_queues("next_inbox_time", n), lambda now: (*queues, now)),
                (Q.for_queues("next_ready_time", n), lambda now: (*queues, now)),
                (
                    Q.for_queues("next_sticky_time", n),
                    lambda now: (sticky_wait, *queues, worker, now, sticky_wait, now),
                ),
            ]
        else:
            available = (
                Q.for_queues("activity_work_available", n),
                lambda now: (*queues, now),
            )
            soonest = [(Q.for_queues("next_activity_time", n), lambda now: (*queues, now))]

        def op(conn: sqlite3.Connection, wake: Wake) -> tuple[bool, float | None]:
            now = self.clock()
            sql, params = available
            if conn.execute(sql, params(now)).fetchone():
                return True, None
            times = [conn.execute(sql, params(now)).fetchone()[0] for sql, params in soonest]
            return False, min((t for t in times if t is not None), default=None)

        return op

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
        probe = self._work_probe(kind, list(queues), worker or "", sticky_wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self._waiters.register(keys)
        try:
            while True:
                available, soonest = await self._read(probe) if queues else (False, None)
                remaining = deadline - loop.time()
                if available or remaining <= 0:
                    return
                wait = min(remaining, SAFETY_NET)
                if soonest is not None:
                    wait = min(wait, max(soonest - self.clock(), 0.0))
                if await wait_on(waiter, wait):
                    if not waiter.broad:
                        return
                    # Another process committed something: probe again.
                    self._waiters.unregister(waiter)
                    waiter = self._waiters.register(keys)
        finally:
            self._waiters.unregister(waiter)
