"""What a backend stores for hooks (``ostinato.hook``): an outbox of run state changes.

A run state change of interest (a close as completed, failed, canceled, terminated or
timed_out; later paused) writes one *delivery* row in the same transaction as the change,
when a worker with hooks has subscribed the run's queue in the last ``SUBSCRIPTION_TTL``
seconds (``subscribe_hooks``). Workers with hooks claim (delivery, hook) pairs under a lease,
one *attempt* row per pair, so a hook that keeps failing never holds back another hook of
the same delivery. A delivery whose every hook (of the worker finishing it: the workers of
a queue register the same hooks) was delivered is deleted; a pair given up is kept, with its
delivery, for ``list_hook_failures``, until the retention sweep purges it
(``purge_hook_failures``). Deleting a run deletes its deliveries in the same transaction, and
redacting it scrubs their payload (the run's result, failure or pause reason) and the errors
its hooks reported.

A pause (``paused_at`` set, the run's status unchanged) is a change of its own each time:
its id ends in ``:paused:<n>``, n counting the run's pauses, and its ``result`` is the pause
reason (UTF-8).

The SQL backends write deliveries with a trigger on the runs table (every path that changes
a run's status is covered, including the set-based PostgreSQL commits); the memory backend
in its ``mark_closed``. Another feature that changes a run's status calls
``record_state_change`` (memory) or updates ``runs.status`` (SQL: the trigger fires).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HOOK_STATUSES",
    "SUBSCRIPTION_TTL",
    "HookDelivery",
    "HookFailureRecord",
    "HookStore",
    "delivery_id",
    "failure_record",
    "pause_delivery_id",
]

# Stored run statuses that make a delivery (runs.status spelling: "canceled").
HOOK_STATUSES = frozenset({"completed", "failed", "canceled", "terminated", "timed_out", "paused"})

# A queue stays subscribed this long after a worker with hooks last said so.
SUBSCRIPTION_TTL = 7 * 24 * 3600.0


def delivery_id(instance_id: str, run_id: str, status: str) -> str:
    """The stable id of a run's state change (a run closes once; ``event.id`` of hooks)."""
    return f"{instance_id}:{run_id}:{status}"


def pause_delivery_id(instance_id: str, run_id: str, pause: int) -> str:
    """The id of a run's ``pause``-th pause (1, 2 ...): each pause is a change of its own."""
    return f"{instance_id}:{run_id}:paused:{pause}"


@dataclass(frozen=True)
class HookDelivery:
    """One (delivery, hook) pair claimed under a lease."""

    delivery_id: str
    hook: str
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    status: str
    occurred_at: float
    # The run's stored result: the encoded value (completed) or failure (the others).
    result: bytes | None
    # 1 on the first delivery of this pair.
    attempt: int
    lease_token: str


@dataclass(frozen=True)
class HookFailureRecord:
    """A (delivery, hook) pair given up after its last attempt."""

    delivery_id: str
    hook: str
    instance_id: str
    run_id: str
    workflow_name: str
    status: str
    occurred_at: float
    attempts: int
    last_error: str


def failure_record(row: Sequence[Any]) -> HookFailureRecord:
    """A ``list_hook_failures`` row of the SQL backends."""
    delivery, hook, instance_id, run_id, name, status, occurred_at, attempts, error = row
    return HookFailureRecord(
        delivery_id=delivery,
        hook=hook,
        instance_id=instance_id,
        run_id=run_id,
        workflow_name=name,
        status=status,
        occurred_at=float(occurred_at),
        attempts=int(attempts),
        last_error=error or "",
    )


class HookStore(abc.ABC):
    """The hook methods of a backend."""

    @abc.abstractmethod
    async def subscribe_hooks(self, queues: Sequence[str]) -> None:
        """Record that a worker with hooks serves ``queues`` now: state changes of their runs
        make deliveries for ``SUBSCRIPTION_TTL`` seconds from now."""

    @abc.abstractmethod
    async def claim_hook_deliveries(
        self, queues: Sequence[str], hooks: Sequence[str], lease_seconds: float, limit: int
    ) -> list[HookDelivery]:
        """Lease up to ``limit`` (delivery, hook) pairs of runs on ``queues``, oldest delivery
        first: pairs never attempted, and pending pairs whose retry time came and whose lease
        (if any) expired. Each claim adds one to the pair's attempt count."""

    @abc.abstractmethod
    async def hook_delivered(self, delivery: HookDelivery, hooks: Sequence[str]) -> bool:
        """Mark the pair delivered (fenced by its lease: False, writing nothing, if lost);
        delete the delivery once each of ``hooks`` was delivered."""

    @abc.abstractmethod
    async def hook_failed(self, delivery: HookDelivery, error: str, retry_at: float | None) -> bool:
        """Release the pair's lease after a failed attempt: claimable again at ``retry_at``,
        or given up for good (kept, with ``error``) when None. Fenced like hook_delivered."""

    @abc.abstractmethod
    async def list_hook_failures(self, limit: int = 100) -> list[HookFailureRecord]:
        """Pairs given up, newest state change first."""

    @abc.abstractmethod
    async def purge_hook_failures(self, given_up_before: float, limit: int) -> int:
        """In one transaction, delete at most ``limit`` deliveries (with all their pairs)
        whose change occurred before ``given_up_before`` and which have a pair given up,
        oldest first, and pairs left without their delivery; return how many deliveries were
        deleted. (The retention sweep calls it; deliveries of deleted runs go with the runs.)"""
