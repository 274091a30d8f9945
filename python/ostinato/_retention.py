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

from ._backends._contract import Backend
from ._backends._retention_store import CLOSED_STATUSES, RetentionStore
from ._backends._types import RunStatus
from ._retry import Duration, to_seconds

__all__ = ["BATCH", "RetentionSweeper", "check_statuses", "delete_closed", "retention_of"]

log = logging.getLogger("ostinato.retention")

# Instances deleted per transaction.
BATCH = 500
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


class RetentionSweeper:
    """A worker's retention sweep: every ``interval`` seconds, if it gets the sweep lease,
    delete the instances closed more than ``retention`` seconds ago."""

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
        self.deleted = 0  # instances this sweeper deleted, for tests and logs

    async def sweep_once(self) -> int | None:
        """One sweep: the number of instances deleted, or None when another worker holds
        the lease. The lease is renewed before each batch and kept after the sweep (for the
        interval and ``lease`` seconds more), so the same worker sweeps next time while it
        lives; it is given back when the worker stops."""
        if not await self.store.claim_sweep(SWEEP_NAME, self.holder, self._hold):
            return None
        deleted = 0
        try:
            while True:
                closed_before = self.backend.clock() - self.retention
                done = await self.store.delete_closed_instances(
                    closed_before, CLOSED_STATUSES, self.batch
                )
                deleted += done
                self.deleted += done
                if done < self.batch:
                    break
                if not await self.store.claim_sweep(SWEEP_NAME, self.holder, self._hold):
                    log.warning("retention sweep lease lost after %d deletions", deleted)
                    return deleted
        finally:
            if deleted:
                log.info("retention sweep deleted %d closed workflows", deleted)
        return deleted

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
                    log.exception("retention sweep failed; retrying in %gs", self.interval)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=self.interval)
        finally:
            await self.release()

    async def release(self) -> None:
        """Give the sweep lease back (if held) so another worker sweeps without waiting."""
        try:
            await self.store.release_sweep(SWEEP_NAME, self.holder)
        except Exception as exc:
            log.warning("could not give the retention sweep lease back (%s)", exc)


def retention_seconds(value: Duration | None) -> float | None:
    """``Worker(retention=...)``: None (keep forever) or a duration of at least one second."""
    if value is None:
        return None
    seconds = check_older_than(value, "retention")
    if seconds < 1:
        raise ValueError(f"retention must be at least one second (or None), got {value!r}")
    return seconds
