"""Eager dispatch on SQLite (docs/operations.md "Eager dispatch"): the activity tasks a
workflow-task commit leases to its worker, and the workflow task an activity's completion
leases to the worker that has the run cached (continuing locally), each in the transaction
of the write that made the work ready."""

from __future__ import annotations

import sqlite3

from ._eager import eager_activities, leased_new_activity, quiet_eager_queues
from ._sqlite_sql import QUERIES as Q
from ._sqlite_store import RunRow, Wake, leased_task
from ._tokens import new_lease_token
from ._types import ActivityTask, LocalClaim, WorkflowCommit, WorkflowTask

__all__ = ["claim_locally", "lease_eager"]


def lease_eager(
    conn: sqlite3.Connection, run: RunRow, commit: WorkflowCommit, now: float, wake: Wake
) -> list[ActivityTask]:
    """Eager dispatch: lease the commit's activities its worker asked for, in the
    commit's transaction, except on queues with limits."""
    assert commit.eager is not None
    wanted = eager_activities(commit)
    if not wanted:
        return []
    queues = sorted({a.queue for a in wanted})
    limits_of = Q.for_queues("queue_limits_of", len(queues))
    limited = {row[0] for row in conn.execute(limits_of, queues)}
    expires = now + commit.eager.lease_seconds
    leased = []
    for activity in wanted:
        if activity.queue in limited:
            continue
        token = new_lease_token()
        row = conn.execute(
            Q["lease_new_activity"], (token, expires, expires, run.pk, activity.activity_id)
        ).fetchone()
        if row is not None:
            leased.append(
                leased_new_activity(
                    activity,
                    task_id=row[0],
                    instance_id=run.instance_id,
                    run_id=run.run_id,
                    workflow_name=run.workflow_name,
                    lease_token=token,
                    now=now,
                )
            )
    quiet_eager_queues(commit, leased, wake)
    return leased


def claim_locally(
    conn: sqlite3.Connection, run_pk: int, claim: LocalClaim, now: float, wake: Wake
) -> WorkflowTask | None:
    """Continue locally: lease the run to ``claim.worker`` if it has it cached and
    nothing else holds it."""
    token = new_lease_token()
    row = conn.execute(
        Q["claim_run_locally"],
        (token, now + claim.lease_seconds, run_pk, claim.worker, now, now),
    ).fetchone()
    if row is None:
        return None
    wake.discard(("workflow", row[3]))  # taken: nothing for the pollers
    return leased_task(conn, run_pk, row, token, now)
