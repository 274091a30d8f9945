"""The SQLite backend's rows and its ``_apply.Store``: the operations of the shared storage
algorithm, each one or two named blocks of ``sql/sqlite/queries.sql``.

Everything here runs on the backend's writer thread, inside the transaction of the operation
under way; wake-ups are collected and notified after the commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._rows import run_info, tags_json
from ._sqlite_sql import QUERIES as Q
from ._types import InboxEvent, NewActivity, NewRun, ParentRef, RunInfo, RunStatus, WorkflowTask

__all__ = ["RunRow", "SqliteStore", "leased_task", "push"]

Wake = set[Hashable]


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as read from the ``runs`` table (the ``run_columns`` of queries.sql)."""

    pk: int
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    status: RunStatus
    created_at: float
    updated_at: float
    closed_at: float | None
    history_length: int
    result: bytes | None
    blocked_reason: str | None
    parent: ParentRef | None
    next_run_id: str | None
    lease_token: str | None
    tags: Mapping[str, str]
    paused_at: float | None = None
    pause_reason: str | None = None
    priority: int = 0

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRow:
        # A tampered row (unknown status, a text where a number belongs) reads as an open
        # run blocked with the reason, so listing and describing keep working.
        i = run_info(row[1:20])
        return cls(
            row[0], i.instance_id, i.run_id, i.workflow_name, i.queue, i.status, i.created_at,
            i.updated_at, i.closed_at, i.history_length, i.result, i.blocked_reason, i.parent,
            i.next_run_id, row[20], i.tags, i.paused_at, i.pause_reason, i.priority,
        )  # fmt: skip

    def info(self) -> RunInfo:
        return RunInfo(
            instance_id=self.instance_id,
            run_id=self.run_id,
            workflow_name=self.workflow_name,
            queue=self.queue,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            closed_at=self.closed_at,
            history_length=self.history_length,
            result=self.result,
            blocked_reason=self.blocked_reason,
            parent=self.parent,
            next_run_id=self.next_run_id,
            tags=dict(self.tags),
            paused_at=self.paused_at,
            pause_reason=self.pause_reason,
            priority=self.priority,
        )


def push(
    conn: sqlite3.Connection,
    run: int,
    queue: str,
    event: bytes,
    visible_at: float,
    wake: Wake,
    timer_id: int | None = None,
) -> None:
    """Put ``event`` in the inbox of the run with primary key ``run``."""
    conn.execute(Q["push_inbox"], (run, queue, visible_at, timer_id, bytes(event)))
    wake.add(("workflow", queue))


def leased_task(
    conn: sqlite3.Connection, pk: int, run: Sequence[Any], token: str, now: float
) -> WorkflowTask:
    """The workflow task of run ``pk``, just leased under ``token``, with its visible inbox.
    ``run`` is (instance_id, run_id, workflow_name, queue, history_length, failed_attempts)
    and optionally the run's ``ready_at`` (a start delay or back-off that ended after its
    first visible event); the task is ready since the later of the two."""
    inbox = conn.execute(Q["visible_inbox"], (pk, now)).fetchall()
    ready_at = min((visible_at for _, _, visible_at in inbox), default=now)
    if len(run) > 6 and run[6] is not None:
        ready_at = max(ready_at, run[6])
    return WorkflowTask(
        instance_id=run[0],
        run_id=run[1],
        workflow_name=run[2],
        queue=run[3],
        lease_token=token,
        history_length=run[4],
        inbox=[InboxEvent(i, e) for i, e, _ in inbox],
        failed_attempts=run[5],
        ready_at=ready_at,
    )


def _row(row: tuple[Any, ...] | None) -> RunRow | None:
    return None if row is None else RunRow.from_row(row)


class SqliteStore:
    """``_apply.Store`` over one connection, for one operation."""

    __slots__ = ("conn", "wake")

    def __init__(self, conn: sqlite3.Connection, wake: Wake) -> None:
        self.conn = conn
        self.wake = wake

    # ---- reading ------------------------------------------------------------------------

    def history_length(self, run: RunRow) -> int:
        return run.history_length

    def latest_run(self, instance_id: str) -> RunRow:
        return RunRow.from_row(self.conn.execute(Q["latest_run"], (instance_id,)).fetchone())

    def open_run(self, instance_id: str) -> RunRow | None:
        return _row(self.conn.execute(Q["open_run"], (instance_id,)).fetchone())

    def open_run_by_id(self, instance_id: str, run_id: str) -> RunRow | None:
        return _row(self.conn.execute(Q["open_run_by_id"], (instance_id, run_id)).fetchone())

    def instance_exists(self, instance_id: str) -> bool:
        return self.conn.execute(Q["instance_exists"], (instance_id,)).fetchone() is not None

    def start_refusal(self, new: NewRun) -> tuple[bool, bool]:
        row = self.conn.execute(Q["latest_run_status"], (new.instance_id,)).fetchone()
        if row is None:
            return False, False
        if row[0] == RunStatus.RUNNING.value:
            return True, True
        if new.id_reuse == "refuse":
            return True, False
        taken = self.conn.execute(Q["run_id_taken"], (new.instance_id, new.run_id)).fetchone()
        return taken is not None, False

    def open_children(self, run: RunRow) -> list[RunRow]:
        rows = self.conn.execute(Q["open_children"], (run.instance_id, run.run_id)).fetchall()
        return [RunRow.from_row(row) for row in rows]

    def inbox_events(self, run: RunRow) -> list[bytes]:
        return [bytes(row[0]) for row in self.conn.execute(Q["run_inbox_events"], (run.pk,))]

    # ---- writing ------------------------------------------------------------------------

    def insert_run(self, new: NewRun, now: float) -> RunRow:
        parent = new.parent
        cursor = self.conn.execute(
            Q["insert_run"],
            (
                new.instance_id, new.run_id, new.workflow_name, new.queue, now, now,
                new.visible_at,
                None if parent is None else parent.instance_id,
                None if parent is None else parent.run_id,
                None if parent is None else parent.command_id,
                tags_json(new.tags), new.priority,
            ),
        )  # fmt: skip
        pk = cursor.lastrowid
        assert pk is not None
        self.conn.execute(Q["set_latest_run"], (new.instance_id, pk))
        return RunRow(
            pk, new.instance_id, new.run_id, new.workflow_name, new.queue, RunStatus.RUNNING,
            now, now, None, 0, None, None, parent, None, None, dict(new.tags),
            priority=new.priority,
        )  # fmt: skip

    def push(
        self, run: RunRow, event: bytes, visible_at: float, timer_id: int | None = None
    ) -> None:
        push(self.conn, run.pk, run.queue, event, visible_at, self.wake, timer_id)

    def append_history(self, run: RunRow, first_seq: int, events: Sequence[bytes]) -> None:
        self.conn.executemany(
            Q["append_history"],
            [(run.pk, seq, bytes(e)) for seq, e in enumerate(events, start=first_seq)],
        )

    def set_history_length(self, run: RunRow, length: int) -> None:
        self.conn.execute(Q["set_history_length"], (length, run.pk))

    def consume_inbox(self, run: RunRow, inbox_ids: Sequence[int]) -> None:
        self.conn.executemany(Q["consume_inbox"], [(run.pk, i) for i in inbox_ids])

    def insert_activities(self, run: RunRow, activities: Sequence[NewActivity], now: float) -> None:
        self.conn.executemany(
            Q["insert_activity_task"],
            [
                (run.pk, a.activity_id, a.name, a.queue, bytes(a.input), bytes(a.options),
                 now, now, a.deadline, a.priority)
                for a in activities
            ],
        )  # fmt: skip
        self.wake.update(("activity", a.queue) for a in activities)

    def cancel_activities(self, run: RunRow, activity_ids: Sequence[int], now: float) -> None:
        for activity_id in activity_ids:
            self.conn.execute(Q["drop_idle_activity"], (run.pk, activity_id, now))
            self.conn.execute(Q["cancel_activity"], (run.pk, activity_id))

    def cancel_timers(self, run: RunRow, timer_ids: Sequence[int]) -> None:
        self.conn.executemany(Q["cancel_timer"], [(run.pk, t) for t in timer_ids])

    def upsert_vars(self, run: RunRow, values: Mapping[str, bytes]) -> None:
        self.conn.executemany(
            Q["upsert_var"], [(run.pk, name, bytes(value)) for name, value in values.items()]
        )

    def finish_task(
        self, run: RunRow, history_length: int, now: float, sticky_worker: str | None
    ) -> None:
        self.conn.execute(Q["finish_task"], (history_length, now, sticky_worker, run.pk))
        if self.conn.execute(Q["run_has_inbox"], (run.pk,)).fetchone() is not None:
            # Events that arrived during the task: claimable now. (Without any, a poller
            # woken here would only claim nothing.)
            self.wake.add(("workflow", run.queue))

    def mark_closed(self, run: RunRow, status: RunStatus, result: bytes | None, now: float) -> None:
        self.conn.execute(Q["close_run"], (status.value, result, now, now, run.pk))
        self.wake.add(("closed", run.instance_id, run.run_id))

    def drop_open_work(self, run: RunRow, now: float) -> None:
        self.conn.execute(Q["drop_run_inbox"], (run.pk,))
        self.conn.execute(Q["drop_idle_run_activities"], (run.pk, now))
        self.conn.execute(Q["cancel_run_activities"], (run.pk,))

    def set_next_run_id(self, run: RunRow, run_id: str) -> None:
        self.conn.execute(Q["set_next_run_id"], (run_id, run.pk))

    def keep_closed(self, run: RunRow, mark: bytes) -> None:
        self.conn.execute(Q["keep_closed"], (run.pk, run.queue, mark))
