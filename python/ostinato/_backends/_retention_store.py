"""What a backend offers for retention: deleting closed instances in batches, and one lease
row per sweep so that one worker at a time sweeps across processes.

``delete_closed_instances`` deletes a bounded batch in one transaction, so a sweep never
holds a long lock and a crash between batches loses nothing: the next sweep carries on from
what is left. The sweep lease is a row claimed by an upsert conditioned on its holder or its
expiry (a compare-and-set, like schedules' rows), so it works the same on every backend.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from ._types import RunStatus

__all__ = ["CLOSED_STATUSES", "RetentionStore", "check_same_length", "still_running"]

# Every final status a latest run can have (continued_as_new never is a latest run's).
CLOSED_STATUSES: tuple[RunStatus, ...] = tuple(s for s in RunStatus if not s.is_open)


def still_running(instance_id: str) -> str:
    return f"workflow {instance_id!r} is still running; only a closed run can be redacted"


def check_same_length(stored: Sequence[object], given: Sequence[bytes]) -> None:
    if len(stored) != len(given):
        raise ValueError(f"redact_run was given {len(given)} events for a history of {len(stored)}")


class RetentionStore(abc.ABC):
    """The retention methods of a backend."""

    @abc.abstractmethod
    async def delete_closed_instances(
        self, closed_before: float, statuses: Sequence[RunStatus], limit: int
    ) -> int:
        """In one transaction, delete at most ``limit`` instances whose latest run has one
        of ``statuses`` (all closed) and closed before ``closed_before``, oldest first, with
        everything ``delete`` removes; return how many were deleted."""

    @abc.abstractmethod
    async def redact_run(self, instance_id: str, run_id: str, history: Sequence[bytes]) -> None:
        """In one transaction, replace the closed run's history events, in seq order, by
        ``history`` (the scrubbed events ``ostinato._events.redact`` built), and drop its
        result or failure, blocked reason, variables, inbox and activity rows (inputs,
        heartbeat details, last failures), the payload of its hook deliveries and the
        errors its hooks reported; record when it was redacted.

        ``WorkflowNotFoundError`` for an unknown run; ``WorkflowAlreadyStartedError`` for a
        running one; ``ValueError`` when ``history`` does not have one event per stored
        event. Nothing is written on error."""

    @abc.abstractmethod
    async def closed_runs_to_redact(
        self, closed_before: float, limit: int
    ) -> list[tuple[str, str]]:
        """At most ``limit`` (instance id, run id) of closed runs (any run, not only the
        latest) closed before ``closed_before`` and not redacted yet by ``redact_run``,
        oldest first (``Worker(redact_after=...)``)."""

    @abc.abstractmethod
    async def claim_sweep(self, name: str, holder: str, lease_seconds: float) -> bool:
        """Take or renew the lease of sweep ``name`` for ``holder`` until now plus
        ``lease_seconds``: True if it was free, expired or already ``holder``'s; False,
        writing nothing, while another holder's lease runs."""

    @abc.abstractmethod
    async def release_sweep(self, name: str, holder: str) -> None:
        """Give the lease of sweep ``name`` back if ``holder`` has it (else do nothing)."""
