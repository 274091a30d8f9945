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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._errors import (
    LeaseLostError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ._apply import apply_commit, start_run, terminate_run
from ._contract import TimeSkipping
from ._queue_limits import (
    QueueLimits,
    QueueLimitStore,
    claim_budget,
    claim_rank,
    concurrency_key,
)
from ._rows import check_history_length, closed_run
from ._sqlite_core import SAFETY_NET
from ._sqlite_eager import claim_locally, lease_eager
from ._sqlite_hooks import SqliteHooks
from ._sqlite_queue_limits import LIMITED_RECHECK, limits_state
from ._sqlite_retention import SqliteRetention, delete_instance_rows
from ._sqlite_schedules import SqliteSchedules
from ._sqlite_sql import QUERIES as Q
from ._sqlite_sql import load_migrations
from ._sqlite_store import RunRow, SqliteStore, Wake, leased_task, push
from ._tokens import decode_cursor, encode_cursor, new_lease_token
from ._types import (
    ActivityState,
    ActivityTask,
    BackendStats,
    ClosedRun,
    LocalClaim,
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


class SqliteBackend(SqliteSchedules, SqliteHooks, SqliteRetention, QueueLimitStore, TimeSkipping):
    """Workflows in one SQLite file (or ``":memory:"``).

    ``durable=True`` (default) runs with ``synchronous=FULL``: a committed workflow task
    survives a power loss. ``durable=False`` uses ``synchronous=NORMAL``: still safe against
    process crashes, but the last commits may be lost if the machine loses power; it saves
    one fsync per commit.
    ``busy_timeout`` is how long SQLite waits for another process's write lock in one try;
    ``lock_timeout`` bounds the total retrying before an operation fails.
    ``group_commit=False`` commits every operation on its own (for benchmarks).
    """

    eager_dispatch = True

    def __repr__(self) -> str:
        return f"SqliteBackend({self.path!r}, durable={self.durable})"

    async def __aenter__(self) -> SqliteBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def next_visible_time(self) -> float | None:
        """The earliest time after now at which a timer, delayed start, back-off or activity
        retry becomes visible or a lease on pending work runs out, or the next schedule fire
        (which may be due already); None when nothing is scheduled."""

        def op(conn: sqlite3.Connection, wake: Wake) -> float | None:
            now = self.clock()
            times = [
                conn.execute(Q[query], (now,))
                for query in (
                    "next_visible_inbox",
                    "next_visible_ready",
                    "next_visible_activity",
                    "next_visible_lease",
                    "next_visible_schedule",
                )
            ]
            found = [row[0] for cursor in times for row in cursor if row[0] is not None]
            # Work held back by a rate limit becomes claimable when its window moves on;
            # limited work that is claimable now (a slot freed, its workers look again
            # within LIMITED_RECHECK) keeps a time-skipping driver from moving on before.
            for state in limits_state(conn, now, None).values():
                if state.ready > state.held:
                    found.append(now)
                elif state.held and state.rate_frees_at is not None:
                    found.append(state.rate_frees_at)
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

    async def create_run_leased(self, run: NewRun, lease_seconds: float) -> WorkflowTask | None:
        if run.visible_at is not None:
            await self.create_run(run)
            return None
        validate_new_run(run)

        def op(conn: sqlite3.Connection, wake: Wake) -> WorkflowTask | None:
            now = self.clock()
            start_run(SqliteStore(conn, wake), run, now)
            row = conn.execute(Q["run_by_id"], (run.instance_id, run.run_id)).fetchone()
            new = None if row is None else RunRow.from_row(row)
            if new is None or not new.status.is_open or new.lease_token is not None:
                return None  # id_conflict="use_existing": the open run is another one
            token = new_lease_token()
            conn.execute(Q["lease_run"], (token, now + lease_seconds, new.pk))
            if run.id_conflict != "terminate_existing":  # (its parent may need the wake)
                wake.discard(("workflow", run.queue))  # nobody else may claim it
            # Ready since its start (the started event, visible now): no time in a queue.
            fields = (run.instance_id, run.run_id, run.workflow_name, run.queue)
            return leased_task(conn, new.pk, (*fields, new.history_length, 0), token, now)

        return await self._call(op)

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

    async def pause(self, instance_id: str, reason: str | None = None) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            run = self._run_row(conn, instance_id, None)
            if not run.status.is_open:
                raise WorkflowNotRunningError(instance_id, run.status.value)
            changed = conn.execute(Q["pause_run"], (self.clock(), reason, run.pk)).rowcount
            return changed == 1

        return await self._call(op)

    async def resume(self, instance_id: str) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            run = self._run_row(conn, instance_id, None)
            if not run.status.is_open:
                raise WorkflowNotRunningError(instance_id, run.status.value)
            unpaused = conn.execute(Q["unpause_run"], (run.pk,)).rowcount == 1
            if unpaused:
                for (queue,) in conn.execute(Q["run_activity_queues"], (run.pk,)).fetchall():
                    wake.add(("activity", queue))
            retried = conn.execute(Q["retry_blocked_now"], (run.pk,)).rowcount == 1
            if not (unpaused or retried):
                return False
            wake.add(("workflow", run.queue))
            return True

        return await self._call(op)

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        def op(conn: sqlite3.Connection, wake: Wake) -> RunInfo:
            return self._run_row(conn, instance_id, run_id).info()

        return await self._read(op)

    async def previous_run_ids(self, instance_id: str, run_id: str, limit: int) -> list[str]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[str]:
            self._run_row(conn, instance_id, run_id)  # WorkflowNotFoundError
            if limit < 1:
                return []
            rows = conn.execute(Q["previous_runs"], (instance_id, run_id, instance_id, limit))
            return [row[0] for row in rows]

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
        if queue is not None:
            filters.append("filter_queue")
            params.append(queue)
        for key, value in sorted((tags or {}).items()):
            filters.append("filter_tag")
            params.extend((key, value))
        if started_after is not None:
            filters.append("filter_started_after")
            params.append(started_after)
        if started_before is not None:
            filters.append("filter_started_before")
            params.append(started_before)
        if closed_after is not None:
            filters.append("filter_closed_after")
            params.append(closed_after)
        if blocked is True:
            filters.append("filter_blocked")
        if blocked is False:
            filters.append("filter_not_blocked")
        if paused is True:
            filters.append("filter_paused")
        if paused is False:
            filters.append("filter_not_paused")
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
                RunCount(name, RunStatus(status), bool(blocked), count, paused=bool(paused))
                for name, status, blocked, count, paused in conn.execute(Q["stats_runs"])
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
            held = {q: state.held for q, state in limits_state(conn, now, None).items()}
            for queue_name, count in held.items():
                if queue_name in queues:
                    queues[queue_name][1] -= count
            backlog = [
                QueueBacklog(q, queues[q][0], queues[q][1], queues[q][2], held.get(q, 0))
                for q in sorted(queues)
            ]
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
                tasks.append(leased_task(conn, pk, row, token, now))
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

    async def commit_workflow_task(
        self, task: WorkflowTask, commit: WorkflowCommit
    ) -> list[ActivityTask]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityTask]:
            run = self._leased_run(conn, task)
            validate_commit(run.instance_id, run.history_length, commit)
            now = self.clock()
            apply_commit(SqliteStore(conn, wake), run, commit, now)
            if commit.eager is None or commit.close is not None or run.paused_at is not None:
                return []
            return lease_eager(conn, run, commit, now, wake)

        return await self._call(op)

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

        limits_of = Q.for_queues("queue_limits_of", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> list[ActivityTask]:
            now = self.clock()
            conn.execute(drop, (*queues, now))
            limited = {row[0]: QueueLimits(*row[1:]) for row in conn.execute(limits_of, queues)}
            if limited:
                rows = self._claimable_within_limits(conn, queues, limited, now, max_tasks)
            else:
                rows = conn.execute(find, (*queues, now, now, max_tasks)).fetchall()
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
                        # Its visible_at: the retry time, or a lost lease's expiry (a lease
                        # moves visible_at to its expiry).
                        ready_at=row[13],
                    )
                )
            return claimed

        return await self._call(op)

    def _claimable_within_limits(
        self,
        conn: sqlite3.Connection,
        queues: list[str],
        limited: dict[str, QueueLimits],
        now: float,
        max_tasks: int,
    ) -> list[Any]:
        """The claimable rows of ``queues`` that their limits let start now, in claim order
        (at most ``max_tasks``); records their starts on rate-limited queues. Runs in the
        claim's write transaction, so no other process claims in between."""
        rows: list[Any] = []
        free = [q for q in queues if q not in limited]
        if free:
            find = Q.for_queues("find_claimable_activities", len(free))
            rows += conn.execute(find, (*free, now, now, max_tasks)).fetchall()
        find_one = Q.for_queues("find_claimable_activities", 1)
        for queue, limits in limited.items():
            in_flight = conn.execute(Q["activities_in_flight"], (queue, now)).fetchone()[0]
            started = 0
            if limits.rate_period is not None:
                horizon = now - limits.rate_period
                conn.execute(Q["prune_queue_starts"], (queue, horizon))
                started = conn.execute(Q["count_queue_starts"], (queue, horizon)).fetchone()[0]
            budget = min(max_tasks, claim_budget(limits, in_flight, started))
            if budget <= 0:
                self.limited_claims += 1
                continue
            per_key = limits.max_concurrent_per_key
            if per_key is None:
                rows += conn.execute(find_one, (queue, now, now, budget)).fetchall()
                continue
            running: dict[str, int] = {}
            for (options,) in conn.execute(Q["options_in_flight"], (queue, now)):
                key = concurrency_key(options)
                if key is not None:
                    running[key] = running.get(key, 0) + 1
            # Read lazily (LIMIT -1: no limit), until the budget is spent: the tasks of keys
            # at their limit are passed over, the others keep their order.
            for row in conn.execute(find_one, (queue, now, now, -1)):
                key = concurrency_key(row[7])
                if key is not None:
                    if running.get(key, 0) >= per_key:
                        self.limited_claims += 1
                        continue
                    running[key] = running.get(key, 0) + 1
                rows.append(row)
                budget -= 1
                if budget == 0:
                    break
        rows.sort(key=lambda r: (claim_rank(r[13], r[14]), r[0]))  # as the claim orders
        rows = rows[:max_tasks]
        for row in rows:
            if limited.get(row[5], QueueLimits()).rate_count is not None:
                conn.execute(Q["record_queue_start"], (row[5], now))
        return rows

    async def set_queue_limits(self, queue: str, limits: QueueLimits | None) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            if limits is None or limits.is_empty:
                conn.execute(Q["delete_queue_limits"], (queue,))
                conn.execute(Q["delete_queue_starts"], (queue,))
            else:
                values = (
                    limits.max_concurrent,
                    limits.rate_count,
                    limits.rate_period,
                    limits.max_concurrent_per_key,
                )
                conn.execute(Q["set_queue_limits"], (queue, *values))
            wake.add(("activity", queue))  # a raised limit may let waiting work start

        await self._call(op)

    async def get_queue_limits(self, queue: str) -> QueueLimits | None:
        def op(conn: sqlite3.Connection, wake: Wake) -> QueueLimits | None:
            row = conn.execute(Q["get_queue_limits"], (queue,)).fetchone()
            return None if row is None else QueueLimits(*row[1:])

        return await self._read(op)

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

    async def complete_activity(
        self, task: ActivityTask, event: bytes, *, claim: LocalClaim | None = None
    ) -> WorkflowTask | None:
        def op(conn: sqlite3.Connection, wake: Wake) -> WorkflowTask | None:
            run_pk, _ = self._leased_activity(conn, task)
            conn.execute(Q["delete_activity"], (task.task_id,))
            row = conn.execute(Q["open_run_queue_by_pk"], (run_pk,)).fetchone()
            if row is None:
                return None
            now = self.clock()
            push(conn, run_pk, row[0], event, now, wake)
            if claim is None:
                return None
            return claim_locally(conn, run_pk, claim, now, wake)

        return await self._call(op)

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

    async def claim_closed_runs(self, queues: Sequence[str], limit: int) -> list[ClosedRun]:
        queues = list(queues)
        if limit < 1 or not queues:
            return []
        find = Q.for_queues("closed_marks", len(queues))

        def op(conn: sqlite3.Connection, wake: Wake) -> list[ClosedRun]:
            rows = conn.execute(find, (*queues, limit)).fetchall()
            conn.executemany(Q["delete_closed_mark"], [(row[0],) for row in rows])
            return [closed_run(row[1:]) for row in rows]  # row[0]: the mark's id

        return await self._call(op)

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
            times: list[float | None] = []
            if conn.execute(sql, params(now)).fetchone():
                if kind == "workflow":
                    return True, None
                # Activity work held back by its queue's limits is no work to wake for: it
                # is, once a slot frees (an attempt ends: a wake-up; a window moves on).
                limited = limits_state(conn, now, queues)
                if any(state.ready > state.held for state in limited.values()):
                    return True, None
                free = [q for q in queues if q not in limited]
                if (
                    free
                    and conn.execute(
                        Q.for_queues("activity_work_available", len(free)), (*free, now)
                    ).fetchone()
                ):
                    return True, None
                times += [state.rate_frees_at for state in limited.values() if state.held]
                # A slot freed by an attempt that ends (in any process) is seen by looking
                # again: as soon as the limited claims' back-off, so that workers of every
                # process share the queue.
                times.append(now + LIMITED_RECHECK)
            times += [conn.execute(sql, params(now)).fetchone()[0] for sql, params in soonest]
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
