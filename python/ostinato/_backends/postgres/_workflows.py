"""The workflow worker side of the PostgreSQL backend: claims, commits (in general, in one
statement, and batched), failures, releases and leases of workflow tasks."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg

from ..._errors import (
    LeaseLostError,
)
from .._backend_events import (
    child_closed_event,
    child_start_refused_event,
    signal_external_completed_event,
    signal_target_missing,
)
from .._eager import leased_new_activity
from .._rows import inboxes_by_run
from .._tokens import new_lease_token
from .._types import ActivityTask, ParentRef, WorkflowCommit, WorkflowTask
from .._validate import validate_commit
from ._core import (
    _COMMIT_BATCH_ARRAYS,
    _MAX_PAYLOAD,
    _carries_over,
    _check_text_fields,
    _Core,
    _Effects,
    _fits_one_statement,
    _no_nul,
    _with_parent,
)
from ._pool import Conn


class _WorkflowSide(_Core):
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
        if max_tasks < 1 or not queues:
            return []

        async def body(conn: Conn, effects: _Effects) -> list[WorkflowTask]:
            now = self.clock()
            rows = await self._fetchall_unflushed(
                conn,
                "claim_workflow_tasks",
                {
                    "queues": list(queues),
                    "now": now,
                    "lease_seconds": lease_seconds,
                    "max_tasks": max_tasks,
                    "worker": worker or "",
                    "sticky_wait": sticky_wait,
                },
            )
            if not rows:
                return []
            rows.sort(key=lambda r: (r[7], r[8]))  # oldest pending event first
            inbox_rows = await self._fetchall(
                conn,
                "visible_inbox",
                {
                    "instance_ids": [r[0] for r in rows],
                    "run_ids": [r[1] for r in rows],
                    "now": now,
                },
            )
            inboxes, first_visible = inboxes_by_run(inbox_rows)
            return [
                WorkflowTask(
                    instance_id=instance_id,
                    run_id=run_id,
                    workflow_name=workflow_name,
                    queue=queue,
                    lease_token=lease_token,
                    history_length=history_length,
                    inbox=inboxes.get((instance_id, run_id), []),
                    failed_attempts=failed_attempts,
                    # Time in queue from the earliest visible event, or from the end of a
                    # start delay or back-off (the run's ready_at before the claim) if later.
                    ready_at=max(
                        first_visible.get((instance_id, run_id), visible_at),
                        visible_at if was_ready is None else was_ready,
                    ),
                )
                for (
                    instance_id,
                    run_id,
                    workflow_name,
                    queue,
                    lease_token,
                    history_length,
                    failed_attempts,
                    visible_at,
                    _,
                    was_ready,
                ) in rows
            ]

        # No transaction block: the claim commits on its own, then the inbox is read
        # under the lease (no one else consumes it meanwhile), in a fresh snapshot that sees
        # every event committed before the claim. Two round trips instead of four.
        return await self._run("claiming workflow tasks", body, transaction=False)

    def _lease_lost(self, task: WorkflowTask) -> LeaseLostError:
        return LeaseLostError(
            f"the lease on workflow {task.instance_id!r} (run {task.run_id}) was lost: "
            "another worker took the task over, or the run was closed"
        )

    async def commit_workflow_task(
        self, task: WorkflowTask, commit: WorkflowCommit
    ) -> list[ActivityTask]:
        if _fits_one_statement(commit):
            validate_commit(task.instance_id, task.history_length, commit)
            for act in commit.activities:
                _no_nul("activity queue", act.queue)
            # Group commit: concurrent commits of other runs go in the same statement.
            leased = await self._commits.submit((task, commit))
            if leased is not None:
                return leased
        # Eager dispatch only in the one-statement shapes: here the activities are queued.
        await self._commit_in_general(task, commit)
        return []

    @staticmethod
    def _queue_payload(queue: str) -> str:
        """A work notification's payload: the queue (empty, meaning any, if too long)."""
        return queue if len(queue.encode()) <= _MAX_PAYLOAD else ""

    @staticmethod
    def _eager_tokens(commit: WorkflowCommit) -> dict[int, str]:
        """activity id -> the lease token of each activity the commit's worker asks for."""
        if commit.eager is None:
            return {}
        return {activity_id: new_lease_token() for activity_id in commit.eager.activity_ids}

    def _announce_activities(
        self, effects: _Effects, commit: WorkflowCommit, eager: dict[int, str]
    ) -> None:
        """Wake activity workers for the commit's new activities, except those asked for
        eagerly (see ``_eager_leased``)."""
        for activity in commit.activities:
            if activity.activity_id not in eager:
                self._work(effects, "activity", activity.queue)

    def _eager_leased(
        self,
        effects: _Effects,
        task: WorkflowTask,
        commit: WorkflowCommit,
        eager: dict[int, str],
        task_ids: Sequence[int],
        activity_ids: Sequence[int],
        now: float,
    ) -> list[ActivityTask]:
        """The activity tasks the commit leased to its worker (eager dispatch); those asked
        for but left queued (a queue with limits, a paused run) get their wake-up now."""
        if not eager:
            return []
        by_id = {a.activity_id: a for a in commit.activities}
        leased = [
            leased_new_activity(
                by_id[activity_id],
                task_id=task_id,
                instance_id=task.instance_id,
                run_id=task.run_id,
                workflow_name=task.workflow_name,
                lease_token=eager[activity_id],
                now=now,
            )
            for task_id, activity_id in zip(task_ids, activity_ids, strict=True)
        ]
        taken = set(activity_ids)
        for activity_id in eager:
            if activity_id not in taken:
                self._work(effects, "activity", by_id[activity_id].queue)
        return leased

    async def _commit_in_general(self, task: WorkflowTask, commit: WorkflowCommit) -> None:
        """Any commit, statement by statement in one transaction."""

        async def body(conn: Conn, effects: _Effects) -> None:
            now = self.clock()
            run = {"instance_id": task.instance_id, "run_id": task.run_id}
            row = await self._fetchone(
                conn, "lock_leased_run", {**run, "lease_token": task.lease_token}
            )
            if row is None:
                raise self._lease_lost(task)
            history_length, queue, parent_instance, parent_run, parent_command = row
            validate_commit(task.instance_id, history_length, commit)
            for child in commit.children:
                _check_text_fields(child)
            if commit.close is not None and commit.close.next_run is not None:
                _check_text_fields(commit.close.next_run)
            for act in commit.activities:
                _no_nul("activity queue", act.queue)
            if commit.new_events:
                await self._execute(
                    conn,
                    "append_history",
                    {
                        **run,
                        "first_seq": history_length + 1,
                        "events": [bytes(e) for e in commit.new_events],
                    },
                )
            if commit.consumed_inbox:
                await self._execute(
                    conn, "delete_inbox_events", {**run, "ids": list(commit.consumed_inbox)}
                )
            if commit.activities:
                acts = commit.activities
                await self._execute(
                    conn,
                    "insert_activity_tasks",
                    {
                        **run,
                        "now": now,
                        "activity_ids": [a.activity_id for a in acts],
                        "names": [a.name.encode() for a in acts],
                        "queues": [a.queue for a in acts],
                        "inputs": [bytes(a.input) for a in acts],
                        "options": [bytes(a.options) for a in acts],
                        "deadlines": [a.deadline for a in acts],
                        "priorities": [a.priority for a in acts],
                    },
                )
                for activity in acts:
                    self._work(effects, "activity", activity.queue)
            if commit.cancel_activities:
                await self._execute(
                    conn,
                    "cancel_activity_tasks",
                    {**run, "activity_ids": list(commit.cancel_activities), "now": now},
                )
            if commit.timers:
                timers = commit.timers
                await self._execute(
                    conn,
                    "insert_inbox_events",
                    {
                        **run,
                        "timer_ids": [t.timer_id for t in timers],
                        "fire_ats": [t.fire_at for t in timers],
                        "events": [bytes(t.event) for t in timers],
                    },
                )
            if commit.cancel_timers:
                await self._execute(
                    conn, "cancel_timers", {**run, "timer_ids": list(commit.cancel_timers)}
                )
            # Events for this run's own inbox, in the order they happen.
            own: list[bytes] = []
            for child in commit.children:
                assert child.parent is not None  # validate_commit checked
                started, open_run, _ = await self._start_run(conn, effects, child, now)
                if not started:
                    own.append(
                        child_start_refused_event(
                            child.parent.command_id, child.instance_id, open_run
                        )
                    )
            for target, event in commit.cancel_instances:
                await self._deliver_to_open_run(conn, effects, target, event, now)
            for signal in commit.signals:
                target = signal.target_instance_id
                failure = None
                if not await self._deliver_to_open_run(conn, effects, target, signal.event, now):
                    exists = await self._fetchone(conn, "latest_status", {"instance_id": target})
                    failure = signal_target_missing(target, exists is not None)
                own.append(signal_external_completed_event(signal.command_id, failure))
            if own:
                await self._execute(
                    conn,
                    "insert_inbox_events",  # no timer id, visible now
                    {
                        **run,
                        "timer_ids": [None] * len(own),
                        "fire_ats": [now] * len(own),
                        "events": own,
                    },
                )
            if commit.vars:
                names = list(commit.vars)
                await self._execute(
                    conn,
                    "upsert_vars",
                    {
                        **run,
                        "names": [n.encode() for n in names],
                        "values": [bytes(commit.vars[n]) for n in names],
                    },
                )
            await self._execute(
                conn,
                "finish_workflow_task",
                {
                    **run,
                    "new_events": len(commit.new_events),
                    "now": now,
                    "sticky_worker": commit.sticky_worker,
                },
            )
            # Released: events that arrived during the task (or timers) make it claimable.
            self._work(effects, "workflow", queue)
            close = commit.close
            if close is not None:
                result = None if close.result is None else bytes(close.result)
                next_run = close.next_run
                await self._execute(
                    conn,
                    "close_run",
                    {
                        **run,
                        "status": close.status.value,
                        "result": result,
                        "now": now,
                        "next_run_id": None if next_run is None else next_run.run_id,
                    },
                )
                carried: list[bytes] = []
                if next_run is not None:
                    # Signals and cancel requests that arrived while this task ran are meant
                    # for the instance: they move to the next run.
                    rows = await self._fetchall(
                        conn,
                        "visible_inbox",
                        {
                            "instance_ids": [task.instance_id],
                            "run_ids": [task.run_id],
                            "now": now + 1e9,  # every event, whatever its visible_at
                        },
                    )
                    carried = [bytes(r[3]) for r in rows if _carries_over(bytes(r[3]))]
                await self._drop_pending_work(conn, task.instance_id, task.run_id, now)
                self._closed(effects, task.instance_id, task.run_id)
                parent = None
                if parent_instance is not None:
                    parent = ParentRef(parent_instance, parent_run, parent_command)
                if next_run is not None:
                    if next_run.parent is None and parent is not None:
                        next_run = _with_parent(next_run, parent)
                    row = await self._fetchone(conn, "run_tags", run)
                    if row is not None:
                        # continue_as_new takes no priority: the next run keeps the run's
                        next_run = dataclasses.replace(
                            next_run, tags=next_run.tags or row[0] or {}, priority=row[1]
                        )
                    await self._execute(
                        conn,
                        "set_latest_run",
                        {"instance_id": next_run.instance_id, "run_id": next_run.run_id},
                    )
                    await self._insert_run(conn, effects, next_run, now)
                    if carried:
                        await self._execute(
                            conn,
                            "insert_inbox_events",  # no timer id, visible now
                            {
                                "instance_id": next_run.instance_id,
                                "run_id": next_run.run_id,
                                "timer_ids": [None] * len(carried),
                                "fire_ats": [now] * len(carried),
                                "events": carried,
                            },
                        )
                elif parent is not None:
                    event = child_closed_event(
                        parent.command_id, task.instance_id, close.status, result
                    )
                    await self._deliver_to_run(conn, effects, parent, event, now)

        await self._run(f"committing a task of workflow {task.instance_id!r}", body)

    async def _apply_commits(
        self, items: list[tuple[WorkflowTask, WorkflowCommit]]
    ) -> list[list[ActivityTask] | BaseException | None]:
        """One batch of ``_commits``: per item the activity tasks leased eagerly (done),
        None (to be done the general way: nothing was written) or the caller's
        exception."""
        if len(items) > 1:
            try:
                return await self._commit_many(items)
            except psycopg.OperationalError:
                raise  # outcome unknown: every caller gets the error
            except (psycopg.Error, ValueError):
                # One item's error failed the statement, which wrote nothing: apply them one
                # by one, so the error reaches only its own caller.
                pass
        outcomes: list[list[ActivityTask] | BaseException | None] = []
        for task, commit in items:
            try:
                outcomes.append(await self._commit_in_one_statement(task, commit))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    async def _commit_many(
        self, items: list[tuple[WorkflowTask, WorkflowCommit]]
    ) -> list[list[ActivityTask] | BaseException | None]:
        """Several runs' commits (each of the ``_fits_one_statement`` shape) in one
        statement, each fenced on its own."""
        p: dict[str, list[Any]] = {name: [] for name in _COMMIT_BATCH_ARRAYS}
        tokens = [self._eager_tokens(commit) for _, commit in items]
        now = self.clock()
        for (task, commit), eager in zip(items, tokens, strict=True):
            close = commit.close
            p["instance_ids"].append(task.instance_id)
            p["run_ids"].append(task.run_id)
            p["lease_tokens"].append(task.lease_token)
            p["history_lengths"].append(task.history_length)
            p["closings"].append(close is not None)
            p["close_statuses"].append(None if close is None else close.status.value)
            p["results"].append(
                None if close is None or close.result is None else bytes(close.result)
            )
            # 1-based inclusive slices of the flat arrays (from > to: none).
            p["event_from"].append(len(p["events"]) + 1)
            p["events"].extend(bytes(e) for e in commit.new_events)
            p["event_to"].append(len(p["events"]))
            p["consumed_from"].append(len(p["consumed"]) + 1)
            p["consumed"].extend(commit.consumed_inbox)
            p["consumed_to"].append(len(p["consumed"]))
            p["activity_from"].append(len(p["a_activity_ids"]) + 1)
            for a in commit.activities:
                p["a_activity_ids"].append(a.activity_id)
                p["a_names"].append(a.name.encode())
                p["a_queues"].append(a.queue)
                p["a_inputs"].append(bytes(a.input))
                p["a_options"].append(bytes(a.options))
                p["a_deadlines"].append(a.deadline)
                p["a_priorities"].append(a.priority)
                token = eager.get(a.activity_id)
                p["a_eager_tokens"].append(token)
                lease = None if commit.eager is None else commit.eager.lease_seconds
                p["a_eager_expires"].append(None if token is None else now + (lease or 0.0))
            p["activity_to"].append(len(p["a_activity_ids"]))
            p["timer_from"].append(len(p["m_timer_ids"]) + 1)
            for t in commit.timers:
                p["m_timer_ids"].append(t.timer_id)
                p["m_fire_ats"].append(t.fire_at)
                p["m_events"].append(bytes(t.event))
            p["timer_to"].append(len(p["m_timer_ids"]))
            p["var_from"].append(len(p["v_names"]) + 1)
            for name, value in commit.vars.items():
                p["v_names"].append(name.encode())
                p["v_values"].append(bytes(value))
            p["var_to"].append(len(p["v_names"]))
            p["sticky_workers"].append(commit.sticky_worker)
            p["release_payloads"].append(self._queue_payload(task.queue))

        async def body(conn: Conn, effects: _Effects) -> list[Any]:
            for (task, commit), eager in zip(items, tokens, strict=True):
                self._announce_activities(effects, commit, eager)
                if commit.close is not None:
                    self._closed(effects, task.instance_id, task.run_id)
            # The statement sends them itself, once for the batch, if any fence holds.
            notifications = sorted(effects.notifications)
            effects.notifications.clear()
            rows = await self._fetchall(
                conn,
                "commit_workflow_tasks",
                {
                    **p,
                    "now": now,
                    "channels": [channel for channel, _ in notifications],
                    "payloads": [payload for _, payload in notifications],
                    "release_channel": self._channels["workflow"],
                },
                prepare=False,
            )
            outcomes: dict[int, list[ActivityTask] | None] = {}
            for k, ok, _, released, task_ids, activity_ids in rows:
                task, commit = items[k - 1]
                outcomes[k] = None
                if released:
                    self._work(effects, "workflow", task.queue, sql_notifies=True)
                if ok:
                    outcomes[k] = self._eager_leased(
                        effects, task, commit, tokens[k - 1], task_ids, activity_ids, now
                    )
            return [outcomes] if outcomes else []

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the leases released and reports LeaseLostError; nothing is written twice.
        found = await self._run(f"committing {len(items)} workflow tasks", body, transaction=False)
        held = found[0] if found else {}
        outcomes: list[list[ActivityTask] | BaseException | None] = []
        for k, (task, _) in enumerate(items, 1):
            outcomes.append(held[k] if k in held else self._lease_lost(task))
        return outcomes

    async def _commit_in_one_statement(
        self, task: WorkflowTask, commit: WorkflowCommit
    ) -> list[ActivityTask] | None:
        """The common commits (see ``_fits_one_statement``, validated by the caller) as one
        statement: one round trip instead of about eight. Returns the activity tasks leased
        eagerly; None when it must be done the general way after all (it closes a run that
        has a parent: nothing was written then)."""
        acts, timers, close = commit.activities, commit.timers, commit.close
        names = list(commit.vars)
        eager = self._eager_tokens(commit)

        async def body(conn: Conn, effects: _Effects) -> list[ActivityTask] | None:
            now = self.clock()
            self._announce_activities(effects, commit, eager)
            if close is not None:
                self._closed(effects, task.instance_id, task.run_id)
            # The statement sends them itself, and only when the fence holds.
            notifications = sorted(effects.notifications)
            effects.notifications.clear()
            row = await self._fetchone(
                conn,
                "commit_workflow_task",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "history_length": task.history_length,
                    "now": now,
                    "events": [bytes(e) for e in commit.new_events],
                    "consumed": list(commit.consumed_inbox),
                    "activity_ids": [a.activity_id for a in acts],
                    "names": [a.name.encode() for a in acts],
                    "queues": [a.queue for a in acts],
                    "inputs": [bytes(a.input) for a in acts],
                    "options": [bytes(a.options) for a in acts],
                    "deadlines": [a.deadline for a in acts],
                    "priorities": [a.priority for a in acts],
                    "eager_tokens": [eager.get(a.activity_id) for a in acts],
                    "eager_expires": None
                    if commit.eager is None
                    else now + commit.eager.lease_seconds,
                    "timer_ids": [t.timer_id for t in timers],
                    "fire_ats": [t.fire_at for t in timers],
                    "timer_events": [bytes(t.event) for t in timers],
                    "var_names": [n.encode() for n in names],
                    "var_values": [bytes(commit.vars[n]) for n in names],
                    "sticky_worker": commit.sticky_worker,
                    "closing": close is not None,
                    "close_status": None if close is None else close.status.value,
                    "result": None
                    if close is None or close.result is None
                    else bytes(close.result),
                    "channels": [channel for channel, _ in notifications],
                    "payloads": [payload for _, payload in notifications],
                    "release_channel": self._channels["workflow"],
                    "release_payload": self._queue_payload(task.queue),
                },
            )
            if row is None:
                raise self._lease_lost(task)
            if not row[0]:
                effects.keys.clear()
                return None
            if row[4]:  # released with events waiting: the statement notified
                self._work(effects, "workflow", task.queue, sql_notifies=True)
            return self._eager_leased(effects, task, commit, eager, row[2], row[3], now)

        # One statement: atomic without a transaction block. A retry after a lost COMMIT
        # finds the lease released and reports LeaseLostError; nothing is written twice.
        return await self._run(
            f"committing a task of workflow {task.instance_id!r}", body, transaction=False
        )

    async def fail_workflow_task(self, task: WorkflowTask, reason: str, retry_at: float) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "fail_workflow_task",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "reason": reason.replace("\x00", "\\x00"),  # text holds no NUL
                    "retry_at": retry_at,
                    "now": self.clock(),
                    "channel": self._channels["workflow"],
                },
            )
            if row is None:
                raise self._lease_lost(task)
            self._work(effects, "workflow", row[0], sql_notifies=True)

        await self._run(f"failing a task of workflow {task.instance_id!r}", body, transaction=False)

    async def release_workflow_task(self, task: WorkflowTask) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(
                conn,
                "release_workflow_task",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "channel": self._channels["workflow"],
                },
            )
            if row is not None:
                self._work(effects, "workflow", row[0], sql_notifies=True)

        await self._run(
            f"releasing a task of workflow {task.instance_id!r}", body, transaction=False
        )

    async def release_sticky(self, worker: str, queues: Sequence[str]) -> None:
        if not queues:
            return

        async def body(conn: Conn, effects: _Effects) -> None:
            rows = await self._fetchall(
                conn,
                "release_sticky",
                {"worker": worker, "queues": list(queues), "channel": self._channels["workflow"]},
            )
            for queue, _ in rows:
                self._work(effects, "workflow", queue, sql_notifies=True)

        await self._run("releasing a worker's cached runs", body, transaction=False)

    async def extend_workflow_lease(self, task: WorkflowTask, lease_seconds: float) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            rows = await self._fetchall_unflushed(
                conn,
                "extend_workflow_lease",
                {
                    "instance_id": task.instance_id,
                    "run_id": task.run_id,
                    "lease_token": task.lease_token,
                    "lease_seconds": lease_seconds,
                    "now": self.clock(),
                },
            )
            if not rows:
                raise self._lease_lost(task)

        await self._run(
            f"extending the lease of workflow {task.instance_id!r}", body, transaction=False
        )
