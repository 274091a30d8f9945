"""Eager dispatch, shared by the backends: the activity tasks a workflow-task commit leases to
the committing worker (``WorkflowCommit.eager``), as that worker receives them, and the
wake-ups they make unnecessary."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from ._types import ActivityTask, NewActivity, WorkflowCommit

__all__ = ["eager_activities", "leased_new_activity", "quiet_eager_queues"]


def eager_activities(commit: WorkflowCommit) -> list[NewActivity]:
    """The commit's new activities the committing worker asked to take, in its order."""
    if commit.eager is None:
        return []
    by_id = {a.activity_id: a for a in commit.activities}
    return [by_id[i] for i in commit.eager.activity_ids if i in by_id]


def leased_new_activity(
    activity: NewActivity,
    *,
    task_id: int,
    instance_id: str,
    run_id: str,
    workflow_name: str,
    lease_token: str,
    now: float,
) -> ActivityTask:
    """The first attempt of an activity the commit just queued and leased, as a claim would
    return it (nothing of it is read back: it is what the commit wrote)."""
    return ActivityTask(
        task_id=task_id,
        instance_id=instance_id,
        run_id=run_id,
        activity_id=activity.activity_id,
        name=activity.name,
        queue=activity.queue,
        input=bytes(activity.input),
        options=bytes(activity.options),
        attempt=1,
        lease_token=lease_token,
        scheduled_at=now,
        deadline=activity.deadline,
        heartbeat_details=None,
        workflow_name=workflow_name,
        ready_at=now,  # handed over by the commit that made it ready: no time in queue
    )


def quiet_eager_queues(
    commit: WorkflowCommit, leased: Sequence[ActivityTask], wake: set[Hashable]
) -> None:
    """Drop the activity wake-up of queues whose new tasks all went to the committing
    worker: a poller woken for them would only claim nothing."""
    taken = {t.activity_id for t in leased}
    queued = {a.queue for a in commit.activities if a.activity_id not in taken}
    for task in leased:
        if task.queue not in queued:
            wake.discard(("activity", task.queue))
