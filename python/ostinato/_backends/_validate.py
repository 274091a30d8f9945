"""Checks a backend makes before it writes anything, so a bad run or commit changes
nothing: the ids and options of a new run, the seq and shape of a commit."""

from __future__ import annotations

from .. import _events
from .._checks import check_tags
from .._errors import LeaseLostError
from ._types import NewRun, RunStatus, WorkflowCommit

__all__ = ["ID_CONFLICTS", "first_seq", "validate_commit", "validate_new_run"]

# The seq of a history event (raises ValueError when it has none).
first_seq = _events.seq_of


ID_CONFLICTS = ("fail", "use_existing", "terminate_existing")


def validate_new_run(run: NewRun) -> None:
    if run.id_reuse not in ("allow", "refuse"):
        raise ValueError(f"id_reuse must be 'allow' or 'refuse', not {run.id_reuse!r}")
    if run.id_conflict not in ID_CONFLICTS:
        raise ValueError(
            f"id_conflict must be one of {', '.join(map(repr, ID_CONFLICTS))}, "
            f"not {run.id_conflict!r}"
        )
    if run.id_conflict == "terminate_existing" and run.id_reuse == "refuse":
        raise ValueError("id_conflict='terminate_existing' needs id_reuse='allow'")
    if not run.instance_id:
        raise ValueError("a workflow instance id must not be empty")
    if not run.run_id:
        raise ValueError("a run id must not be empty")
    check_tags(dict(run.tags), "run tags")


def validate_commit(instance_id: str, history_length: int, commit: WorkflowCommit) -> None:
    """Checks made before anything is written: a bad commit changes nothing."""
    if commit.new_events:
        seq = first_seq(commit.new_events[0])
        if seq != history_length + 1:
            raise LeaseLostError(
                f"workflow {instance_id!r} has {history_length} history events but the commit "
                f"starts at seq {seq}: another worker advanced the run"
            )
    for child in commit.children:
        if child.parent is None:
            raise ValueError(f"child run {child.instance_id!r} has no parent reference")
        validate_new_run(child)
    eager = commit.eager
    if eager is not None:
        scheduled = {a.activity_id for a in commit.activities}
        unknown = [i for i in eager.activity_ids if i not in scheduled]
        if unknown:
            raise ValueError(f"eager activity ids {unknown} are not among the commit's activities")
        if len(set(eager.activity_ids)) != len(eager.activity_ids):
            raise ValueError(f"eager activity ids repeat: {list(eager.activity_ids)}")
        lease = eager.lease_seconds
        if not isinstance(lease, (int, float)) or not 0 < lease < float("inf"):
            raise ValueError(f"eager lease_seconds must be a finite number > 0, got {lease!r}")
    close = commit.close
    if close is not None:
        if close.status.is_open:
            raise ValueError("a run cannot be closed with status 'running'")
        if (close.status is RunStatus.CONTINUED_AS_NEW) != (close.next_run is not None):
            raise ValueError("next_run is required with continued_as_new, and only with it")
        if close.next_run is not None:
            validate_new_run(close.next_run)
            if close.next_run.instance_id != instance_id:
                raise ValueError("continue-as-new keeps the instance id")
