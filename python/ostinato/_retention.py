"""Retention: deleting closed workflows, by hand (``Client.delete_closed``) or by a worker's
sweep (``Worker(retention=...)``), see docs/retention.md.

Deleting is done in batches of ``BATCH`` instances, one transaction each, so a sweep never
holds a long lock, and a crash between batches loses nothing: what is left is deleted by the
next sweep. A worker sweeps only while it holds the lease row ``SWEEP_NAME`` (a
compare-and-set in the backend), so among many workers and processes one sweeps at a time;
the lease of a worker that died runs out after ``LEASE`` seconds and another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from . import _events
from ._backends._contract import Backend
from ._backends._hook_store import HookStore
from ._backends._retention_store import CLOSED_STATUSES, RetentionStore, still_running
from ._backends._types import RunStatus
from ._errors import HistoryCorruptError, WorkflowAlreadyStartedError, WorkflowNotFoundError
from ._retry import Duration, to_seconds

__all__ = [
    "BATCH",
    "RedactionSweeper",
    "RetentionSweeper",
    "check_statuses",
    "delete_closed",
    "redact_closed_run",
    "retention_of",
]

log = logging.getLogger("ostinato.retention")

# Instances deleted per transaction.
BATCH = 500
# Runs redacted per batch of the redaction sweep, and at once (one transaction each).
REDACT_BATCH = 100
REDACT_AT_ONCE = 10
REDACTION_NAME = "redaction"
# The sweep lease row, how long a claim holds, and how often a worker sweeps.
SWEEP_NAME = "retention"
LEASE = 60.0
INTERVAL = 60.0


def retention_of(backend: Backend) -> RetentionStore:
    """The backend as a ``RetentionStore``, or a clear error naming what is missing."""
    if not isinstance(backend, RetentionStore):
        raise TypeError(
            f"{type(backend).__name__} cannot delete closed workflows in batches: it does not "
            "implement ostinato.backends.RetentionStore (see docs/retention.md)"
        )
    return backend


def check_older_than(value: Duration, what: str = "older_than") -> float:
    if value is None:
        raise TypeError(f"{what} must be seconds (int/float) or a timedelta, got None")
    seconds = to_seconds(value, what)
    assert seconds is not None
    return seconds


def check_statuses(statuses: Iterable[str | RunStatus] | None) -> tuple[RunStatus, ...]:
    """The closed statuses asked for (all of them for None); a clear error otherwise."""
    if statuses is None:
        return CLOSED_STATUSES
    if isinstance(statuses, (str, bytes)):
        raise TypeError(f"statuses must be a list of statuses, not a single {statuses!r:.80}")
    known = ", ".join(repr(s.value) for s in CLOSED_STATUSES)
    found: list[RunStatus] = []
    for value in statuses:
        try:
            status = RunStatus(value)
        except ValueError:
            raise ValueError(f"statuses must be among {known}, not {value!r:.80}") from None
        if status.is_open:
            raise ValueError(f"only closed workflows are deleted: statuses must be among {known}")
        found.append(status)
    if not found:
        raise ValueError(f"statuses must name at least one of {known} (or be None for all)")
    return tuple(dict.fromkeys(found))


def check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (or None for no limit), not {limit}")
    return limit


async def delete_closed(
    store: RetentionStore,
    closed_before: float,
    statuses: tuple[RunStatus, ...],
    limit: int | None,
    *,
    batch: int | None = None,
) -> int:
    """Delete closed instances batch by batch until none is left (or ``limit`` are gone)."""
    batch = batch or BATCH
    deleted = 0
    while limit is None or deleted < limit:
        size = batch if limit is None else min(batch, limit - deleted)
        done = await store.delete_closed_instances(closed_before, statuses, size)
        deleted += done
        if done < size:
            break
    return deleted


async def redact_closed_run(
    backend: Backend, store: RetentionStore, instance_id: str, run_id: str | None = None
) -> None:
    """Scrub a closed run (the latest of ``instance_id`` when ``run_id`` is None): its
    history rebuilt event by event by ``_events.redact``, then ``redact_run`` in one
    transaction (``handle.redact()`` and the redaction sweep)."""
    info = await backend.describe(instance_id, run_id)
    if info.status.is_open:
        raise WorkflowAlreadyStartedError(instance_id, still_running(instance_id))
    scrubbed = []
    for seq, raw in enumerate(await backend.history(instance_id, info.run_id), 1):
        try:
            scrubbed.append(_events.redact(raw))
        except ValueError as exc:
            raise HistoryCorruptError(
                f"history of workflow {instance_id!r} is corrupt at event #{seq}: {exc}",
                seq=seq,
                instance_id=instance_id,
            ) from None
    await store.redact_run(instance_id, info.run_id, scrubbed)


class RetentionSweeper:
    """A worker's retention sweep: every ``interval`` seconds, if it gets the sweep lease,
    delete the instances closed more than ``retention`` seconds ago, then the hook
    deliveries given up that long ago."""

    # The lease row; what a batch does is ``_batch``.
    name = SWEEP_NAME
    done_what = "deleted %d closed workflows"

    def __init__(
        self,
        backend: Backend,
        holder: str,
        retention: float,
        *,
        interval: float | None = None,
        lease: float | None = None,
        batch: int | None = None,
    ) -> None:
        self.backend = backend
        self.store = retention_of(backend)
        self.holder = holder
        self.retention = retention
        self.interval = INTERVAL if interval is None else interval
        self.lease = LEASE if lease is None else lease
        self.batch = batch or BATCH
        self.deleted = 0  # instances (runs, for redaction) this sweeper did, for tests and logs

    async def _batch(self, closed_before: float, size: int) -> int:
        """One transaction's worth: how many were done (fewer than ``size``: none left)."""
        return await self.store.delete_closed_instances(closed_before, CLOSED_STATUSES, size)

    async def _finish(self, closed_before: float) -> None:
        """After the batches: hook deliveries given up before ``closed_before`` go too."""
        if not isinstance(self.backend, HookStore):
            return
        purged = 0
        while (done := await self.backend.purge_hook_failures(closed_before, self.batch)) > 0:
            purged += done
            if done < self.batch or not await self._renew():
                break
        if purged:
            log.info("retention sweep purged %d given-up hook deliveries", purged)

    async def _renew(self) -> bool:
        return await self.store.claim_sweep(self.name, self.holder, self._hold)

    async def sweep_once(self) -> int | None:
        """One sweep: the number done, or None when another worker holds the lease. The
        lease is renewed before each batch and kept after the sweep (for the interval and
        ``lease`` seconds more), so the same worker sweeps next time while it lives; it is
        given back when the worker stops."""
        if not await self._renew():
            return None
        done_total = 0
        closed_before = self.backend.clock() - self.retention
        try:
            while True:
                closed_before = self.backend.clock() - self.retention
                done = await self._batch(closed_before, self.batch)
                done_total += done
                self.deleted += done
                if done < self.batch:
                    break
                if not await self._renew():
                    log.warning("%s sweep lease lost after %d", self.name, done_total)
                    return done_total
            await self._finish(closed_before)
        finally:
            if done_total:
                log.info("%s sweep " + self.done_what, self.name, done_total)
        return done_total

    @property
    def _hold(self) -> float:
        return self.interval + self.lease

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            while not stopping.is_set():
                try:
                    await self.sweep_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s sweep failed; retrying in %gs", self.name, self.interval)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=self.interval)
        finally:
            await self.release()

    async def release(self) -> None:
        """Give the sweep lease back (if held) so another worker sweeps without waiting."""
        try:
            await self.store.release_sweep(self.name, self.holder)
        except Exception as exc:
            log.warning("could not give the %s sweep lease back (%s)", self.name, exc)


class RedactionSweeper(RetentionSweeper):
    """``Worker(redact_after=...)``: the same sweep (its own lease row, ``redaction``),
    redacting the closed runs older than ``retention`` seconds that are not redacted yet,
    ``REDACT_BATCH`` runs a batch, ``REDACT_AT_ONCE`` of them at a time (one transaction
    each: a run's history is read and rewritten whole)."""

    name = REDACTION_NAME
    done_what = "redacted %d closed runs"

    def __init__(
        self,
        backend: Backend,
        holder: str,
        redact_after: float,
        *,
        interval: float | None = None,
        lease: float | None = None,
        batch: int | None = None,
    ) -> None:
        super().__init__(backend, holder, redact_after, interval=interval, lease=lease)
        self.batch = batch or REDACT_BATCH

    async def _batch(self, closed_before: float, size: int) -> int:
        runs = await self.store.closed_runs_to_redact(closed_before, size)
        redacted = 0
        for start in range(0, len(runs), REDACT_AT_ONCE):
            chunk = runs[start : start + REDACT_AT_ONCE]
            outcomes = await asyncio.gather(
                *(redact_closed_run(self.backend, self.store, i, r) for i, r in chunk),
                return_exceptions=True,
            )
            for (instance_id, run_id), outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                if isinstance(outcome, BaseException) and not isinstance(
                    outcome,
                    WorkflowNotFoundError,  # deleted meanwhile: nothing to redact
                ):
                    log.error(
                        "could not redact run %s of workflow %r: %s", run_id, instance_id, outcome
                    )
                    continue
                redacted += 1
        # A run that failed to redact stays listed: counting it out ends the sweep (the
        # next one tries again) instead of listing it again and again.
        return redacted

    async def _finish(self, closed_before: float) -> None:
        return None


def retention_seconds(value: Duration | None, what: str = "retention") -> float | None:
    """``Worker(retention=...)`` (or ``redact_after``): None (keep forever) or a duration of
    at least one second."""
    if value is None:
        return None
    seconds = check_older_than(value, what)
    if seconds < 1:
        raise ValueError(f"{what} must be at least one second (or None), got {value!r}")
    return seconds
