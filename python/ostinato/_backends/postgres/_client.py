"""The client side of the PostgreSQL backend: start, signal, cancel, terminate, describe,
list, delete and wait for runs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from ..._errors import (
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from .._backend_events import timed_out_event
from .._queue_limits import QueueLimits, held_by_limits
from .._rows import check_history_length, closed_run, tags_json
from .._tokens import decode_cursor, encode_cursor, new_lease_token
from .._types import (
    BackendStats,
    ClosedRun,
    InboxEvent,
    NewRun,
    QueueBacklog,
    RunCount,
    RunInfo,
    RunStatus,
    WorkflowTask,
)
from .._validate import validate_new_run
from .._wakeups import wait_on
from ._core import (
    _CREATED,
    _KNOWN,
    _KNOWN_AFTER_RETRY,
    _SAFETY_POLL,
    _check_text_fields,
    _Core,
    _Effects,
    _not_found,
)
from ._pool import Conn


class _ClientSide(_Core):
    # ---- client side ------------------------------------------------------------------------

    async def create_run(self, run: NewRun) -> None:
        validate_new_run(run)
        _check_text_fields(run)
        retried = False
        if run.parent is None:
            # Group commit: concurrent starts of new ids go in the same statement. An id
            # that is known already is started the single way, which decides the error.
            outcome = await self._starts.submit(run)
            if outcome == _CREATED:
                return
            retried = outcome == _KNOWN_AFTER_RETRY
        await self._create_run_alone(run, retried)

    async def create_run_leased(self, run: NewRun, lease_seconds: float) -> WorkflowTask | None:
        if run.parent is not None or run.visible_at is not None:
            await self.create_run(run)
            return None
        validate_new_run(run)
        _check_text_fields(run)
        token, created = new_lease_token(), list[int]()
        ready_at = self.clock()  # handed over by its start: no time in a queue
        self._start_leases[run.run_id] = (token, lease_seconds, created)
        try:
            outcome = await self._starts.submit(run)
        finally:
            del self._start_leases[run.run_id]
        if outcome != _CREATED:
            # A known id: started the single way, unleased. (After a lost COMMIT whose
            # first try did create it, the run waits for that try's lease to expire.)
            await self._create_run_alone(run, outcome == _KNOWN_AFTER_RETRY)
            return None
        return WorkflowTask(
            instance_id=run.instance_id,
            run_id=run.run_id,
            workflow_name=run.workflow_name,
            queue=run.queue,
            lease_token=token,
            history_length=0,
            inbox=[InboxEvent(created[0], bytes(run.started_event))],
            ready_at=ready_at,
        )

    async def _create_run_alone(self, run: NewRun, retried: bool) -> None:
        """Start ``run`` in a transaction of its own. ``retried``: a batch statement that may
        have created it already was retried after its connection broke."""

        async def body(conn: Conn, effects: _Effects) -> None:
            started, open_run, same_run = await self._start_run(conn, effects, run, self.clock())
            if started or (same_run and (retried or effects.attempt > 0)):
                return  # (a retry finding its own run: the first try did commit)
            if open_run:
                raise WorkflowAlreadyStartedError(run.instance_id)
            raise WorkflowAlreadyStartedError(
                run.instance_id,
                f"workflow id {run.instance_id!r} was used before and this start refuses "
                "id reuse (id_reuse='refuse')",
            )

        await self._run(f"starting workflow {run.instance_id!r}", body)

    async def _apply_starts(self, runs: list[NewRun]) -> list[str | BaseException]:
        """One batch of ``_starts``: per run ``_CREATED``, or ``_KNOWN`` /
        ``_KNOWN_AFTER_RETRY`` when it must be started the single way (nothing was written
        for it)."""
        try:
            return await self._start_many(runs)
        except psycopg.OperationalError:
            raise  # outcome unknown: every caller gets the error
        except (psycopg.Error, ValueError):
            # One run's error failed the statement, which wrote nothing: each is started the
            # single way, so the error reaches only its own caller.
            return [_KNOWN] * len(runs)

    async def _start_many(self, runs: list[NewRun]) -> list[str | BaseException]:
        """Create the runs whose ids are new in one statement (one round trip, one
        transaction, one notification per queue)."""
        p: dict[str, list[Any]] = {
            "instance_ids": [r.instance_id for r in runs],
            "run_ids": [r.run_id for r in runs],
            "workflow_names": [r.workflow_name for r in runs],
            "queues": [r.queue for r in runs],
            "ready_ats": [r.visible_at for r in runs],
            "events": [bytes(r.started_event) for r in runs],
            "deadlines": [r.execution_deadline for r in runs],
            "tags": [tags_json(r.tags) for r in runs],
            "priorities": [r.priority for r in runs],
        }
        leases = [self._start_leases.get(r.run_id) for r in runs]
        p["lease_tokens"] = [None if lease is None else lease[0] for lease in leases]
        p["lease_seconds"] = [None if lease is None else lease[1] for lease in leases]
        attempts = 0

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            nonlocal attempts
            attempts = effects.attempt + 1
            now = self.clock()
            for run, lease in zip(runs, leases, strict=True):
                if lease is None:  # (a run leased at its start is claimable by nobody)
                    self._work(effects, "workflow", run.queue)
            # The statement sends them itself, once for the batch, if it creates a run.
            notifications = sorted(effects.notifications)
            effects.notifications.clear()
            return await self._fetchall(
                conn,
                "create_runs",
                {
                    **p,
                    "now": now,
                    "visible_ats": [now if r.visible_at is None else r.visible_at for r in runs],
                    "timed_out": timed_out_event(),
                    "channels": [channel for channel, _ in notifications],
                    "payloads": [payload for _, payload in notifications],
                },
                prepare=False,
            )

        # One statement: atomic without a transaction block. After a lost COMMIT the retry
        # finds the ids taken: those callers look again the single way, where finding their
        # own run id means the first try did commit.
        rows = await self._run(f"starting {len(runs)} workflows", body, transaction=False)
        created = {k for k, _, _ in rows}
        for k, _, first_event in rows:
            lease = leases[k - 1]
            if lease is not None:
                lease[2].append(first_event)
        known = _KNOWN_AFTER_RETRY if attempts > 1 else _KNOWN
        return [_CREATED if k in created else known for k in range(1, len(runs) + 1)]

    async def signal(self, instance_id: str, event: bytes) -> None:
        await self._deliver(f"signalling workflow {instance_id!r}", instance_id, event)

    async def request_cancel(self, instance_id: str, event: bytes) -> None:
        await self._deliver(f"cancelling workflow {instance_id!r}", instance_id, event)

    async def _deliver(self, action: str, instance_id: str, event: bytes) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            if await self._deliver_to_open_run(
                conn, effects, instance_id, event, self.clock(), wait=True
            ):
                return
            row = await self._fetchone(conn, "latest_status", {"instance_id": instance_id})
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            raise WorkflowNotRunningError(instance_id, row[0])

        # Not retried once COMMIT may have happened: the event would arrive twice.
        await self._run(action, body, retry_ambiguous=False)

    async def terminate(self, instance_id: str, reason: str) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._lock_latest_run(conn, instance_id)
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            run_id, status = row
            if status != RunStatus.RUNNING.value:
                if effects.attempt > 0 and status == RunStatus.TERMINATED.value:
                    return  # the first try did commit
                raise WorkflowNotRunningError(instance_id, status)
            await self._terminate_tree(conn, effects, instance_id, run_id, reason, self.clock())

        await self._run(f"terminating workflow {instance_id!r}", body)

    async def claim_closed_runs(self, queues: Sequence[str], limit: int) -> list[ClosedRun]:
        if limit < 1 or not queues:
            return []

        async def body(conn: Conn, effects: _Effects) -> list[ClosedRun]:
            rows = await self._fetchall(
                conn, "claim_closed_runs", {"queues": list(queues), "limit": limit}
            )
            return [closed_run(row) for row in rows]

        # Not retried once COMMIT may have happened: the marks would be lost, not doubled.
        return await self._run("claiming closed runs", body, retry_ambiguous=False)

    async def pause(self, instance_id: str, reason: str | None = None) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            row = await self._lock_latest_run(conn, instance_id)
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            run_id, status = row
            if status != RunStatus.RUNNING.value:
                raise WorkflowNotRunningError(instance_id, status)
            params = {
                "instance_id": instance_id,
                "run_id": run_id,
                "now": self.clock(),
                "reason": reason,
            }
            return await self._fetchone(conn, "pause_run", params) is not None

        return await self._run(f"pausing workflow {instance_id!r}", body)

    async def resume(self, instance_id: str) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            row = await self._lock_latest_run(conn, instance_id)
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            run_id, status = row
            if status != RunStatus.RUNNING.value:
                raise WorkflowNotRunningError(instance_id, status)
            run = {"instance_id": instance_id, "run_id": run_id}
            woken = await self._fetchall(conn, "unpause_run", run)
            for kind, queue in woken:
                self._work(effects, kind, queue)
            changed = await self._fetchone(conn, "retry_blocked_now", run)
            if changed is not None:
                self._work(effects, "workflow", changed[0])
            return bool(woken) or changed is not None

        return await self._run(f"resuming workflow {instance_id!r}", body)

    async def describe(self, instance_id: str, run_id: str | None = None) -> RunInfo:
        async def body(conn: Conn, effects: _Effects) -> RunInfo:
            if run_id is None:
                row = await self._fetchone(conn, "describe_latest", {"instance_id": instance_id})
            else:
                row = await self._fetchone(
                    conn, "describe_run", {"instance_id": instance_id, "run_id": run_id}
                )
            if row is None:
                raise _not_found(instance_id, run_id)
            return self._row_to_info(row)

        return await self._run(f"describing workflow {instance_id!r}", body, transaction=False)

    async def previous_run_ids(self, instance_id: str, run_id: str, limit: int) -> list[str]:
        ids = {"instance_id": instance_id, "run_id": run_id}

        async def body(conn: Conn, effects: _Effects) -> list[str]:
            if await self._fetchone(conn, "describe_run", ids) is None:
                raise _not_found(instance_id, run_id)
            if limit < 1:
                return []
            rows = await self._fetchall(conn, "previous_runs", {**ids, "limit": limit})
            return [row[0] for row in rows]

        return await self._run(f"reading the runs before {run_id!r}", body, transaction=False)

    async def history(self, instance_id: str, run_id: str | None = None) -> list[bytes]:
        async def body(conn: Conn, effects: _Effects) -> list[bytes]:
            if run_id is None:
                rows = await self._fetchall(conn, "history_latest", {"instance_id": instance_id})
            else:
                rows = await self._fetchall(
                    conn, "history_run", {"instance_id": instance_id, "run_id": run_id}
                )
            if not rows:
                raise _not_found(instance_id, run_id)
            events = [bytes(event) for (event, *_) in rows if event is not None]
            _, found_run_id, history_length = rows[0]
            return check_history_length(instance_id, found_run_id, history_length, events)

        return await self._run(
            f"reading the history of workflow {instance_id!r}", body, transaction=False
        )

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
        params = list_params(
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

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            # Unprepared: a plan for these values, using the index the filters call for.
            return await self._fetchall(conn, "list_runs", params, prepare=False)

        rows = await self._run("listing workflows", body, transaction=False)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][-1]) if more else None  # r.ordinal
        return [self._row_to_info(row) for row in rows], next_cursor

    async def stats(self) -> BackendStats:
        now = self.clock()

        async def body(conn: Conn, effects: _Effects) -> BackendStats:
            runs = [
                RunCount(name, RunStatus(status), bool(blocked), int(count), paused=bool(paused))
                for name, status, blocked, count, paused in await self._fetchall(
                    conn, "stats_runs", {}
                )
            ]
            # queue -> [workflow tasks, activity tasks, oldest ready at]
            queues: dict[str, list[Any]] = {}
            for queue, count, since in await self._fetchall(
                conn, "stats_workflow_backlog", {"now": now}
            ):
                queues[queue] = [int(count), 0, since]
            for queue, count, since in await self._fetchall(
                conn, "stats_activity_backlog", {"now": now}
            ):
                entry = queues.setdefault(queue, [0, 0, since])
                entry[1] = int(count)
                entry[2] = since if entry[2] is None else min(entry[2], since)
            held = await self._held_by_limits(conn, now, queues)
            backlog = [
                QueueBacklog(
                    q, queues[q][0], queues[q][1] - held.get(q, 0), queues[q][2], held.get(q, 0)
                )
                for q in sorted(queues)
            ]
            return BackendStats(now=now, runs=runs, backlog=backlog)

        return await self._run("reading stats", body, transaction=False)

    async def _held_by_limits(
        self, conn: Conn, now: float, queues: dict[str, list[Any]]
    ) -> dict[str, int]:
        """Per limited queue with ready activity tasks (``queues``: stats' backlog so far),
        how many of them a claim made now would pass over."""
        held: dict[str, int] = {}
        for queue, *values, in_flight, started in await self._fetchall(
            conn, "stats_limited_queues", {"now": now}
        ):
            ready = queues.get(queue, [0, 0])[1]
            if not ready:
                continue
            limits = QueueLimits(*values)
            if limits.max_concurrent_per_key is None:
                count = held_by_limits(limits, started, [None] * in_flight, [None] * ready)
            else:
                rows = await self._fetchall(conn, "stats_queue_keys", {"now": now, "queue": queue})
                running = [key for is_running, key in rows if is_running]
                waiting = [key for is_running, key in rows if not is_running]
                count = held_by_limits(limits, started, running, waiting)
            if count:
                held[queue] = count
        return held

    async def delete(self, instance_id: str) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._lock_latest_run(conn, instance_id)
            if row is None:
                if effects.attempt > 0:
                    return  # the first try did commit
                raise WorkflowNotFoundError(instance_id)
            if row[1] == RunStatus.RUNNING.value:
                raise WorkflowAlreadyStartedError(
                    instance_id,
                    f"workflow {instance_id!r} is still running; terminate it before deleting",
                )
            await self._execute(conn, "delete_instance", {"instance_id": instance_id})

        await self._run(f"deleting workflow {instance_id!r}", body)

    async def get_vars(self, instance_id: str) -> dict[str, bytes]:
        async def body(conn: Conn, effects: _Effects) -> dict[str, bytes]:
            rows = await self._fetchall(conn, "get_vars", {"instance_id": instance_id})
            if not rows:
                raise WorkflowNotFoundError(instance_id)
            return {bytes(name).decode(): bytes(value) for name, value in rows if name is not None}

        return await self._run(
            f"reading the variables of workflow {instance_id!r}", body, transaction=False
        )

    async def wait_closed(self, instance_id: str, run_id: str, timeout: float | None) -> RunInfo:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        key = ("closed", instance_id, run_id)
        while True:
            waiter = self._waiters.register([key])
            try:
                info = await self.describe(instance_id, run_id)
                if not info.status.is_open:
                    return info
                poll = _SAFETY_POLL if self._listening else self._poll_interval
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return info
                    poll = min(poll, remaining)
                await wait_on(waiter, poll)
            finally:
                self._waiters.unregister(waiter)


def list_params(
    *,
    status: RunStatus | None,
    workflow_name: str | None,
    limit: int,
    cursor: str | None,
    queue: str | None,
    tags: Mapping[str, str] | None,
    started_after: float | None,
    started_before: float | None,
    closed_after: float | None,
    blocked: bool | None,
    paused: bool | None = None,
) -> dict[str, Any]:
    """The parameters of the ``list_runs`` query (also what the query-plan test explains)."""
    return {
        "status": None if status is None else RunStatus(status).value,
        "workflow_name": workflow_name,
        "queue": queue,
        "tags": tags_json(tags) if tags else None,
        "started_after": started_after,
        "started_before": started_before,
        "closed_after": closed_after,
        "blocked": blocked,
        "paused": paused,
        "before": decode_cursor(cursor) if cursor is not None else None,
        "limit": limit + 1,
    }
