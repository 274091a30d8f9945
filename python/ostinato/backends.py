"""Storage backends and the contract they implement.

Users construct a backend (or let ``ostinato.connect(url)`` do it) and hand it to a
``Worker`` and a ``Client``:

- ``MemoryBackend``: everything in this process's memory (tests, ``ostinato.testing``);
- ``SqliteBackend``: one SQLite file, shared by the processes of one machine;
- ``PostgresBackend``: PostgreSQL, shared by many machines (needs ``ostinato[postgres]``).

Writers of a new backend implement ``Backend`` over the value types below, optionally
``TimeSkipping`` (so ``ostinato.testing`` can skip time on it), ``ScheduleStore`` (so
workers can fire schedules from it), ``QueueLimitStore`` (so clients can limit queues,
docs/queues.md) and ``RetentionStore`` (so closed workflows can be deleted in batches, by
hand or by a worker's retention sweep), and run the conformance suite
``ostinato.testing.conformance`` against it. docs/backends.md walks through it.

The errors a backend raises are ostinato's own: ``LeaseLostError`` (a fenced write by a
worker that lost its lease), ``WorkflowNotFoundError``, ``WorkflowNotRunningError``,
``WorkflowAlreadyStartedError``, ``HistoryCorruptError``, all importable from ``ostinato``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._backends._contract import Backend, TimeSkipping
from ._backends._hook_store import HookDelivery, HookFailureRecord, HookStore
from ._backends._queue_limits import QueueLimits, QueueLimitStore
from ._backends._retention_store import RetentionStore
from ._backends._schedule_store import ScheduleRecord, ScheduleStore
from ._backends._types import (
    ActivityState,
    ActivityTask,
    BackendStats,
    Clock,
    ClosedRun,
    EagerActivities,
    InboxEvent,
    LocalClaim,
    NewActivity,
    NewRun,
    NewTimer,
    OutgoingSignal,
    ParentRef,
    QueueBacklog,
    RunClose,
    RunCount,
    RunInfo,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
    system_clock,
)
from ._backends.memory import MemoryBackend
from ._backends.sqlite import SqliteBackend

if TYPE_CHECKING:
    from ._backends.postgres import PostgresBackend

__all__ = [
    "ActivityState",
    "ActivityTask",
    "Backend",
    "BackendStats",
    "Clock",
    "ClosedRun",
    "EagerActivities",
    "HookDelivery",
    "HookFailureRecord",
    "HookStore",
    "InboxEvent",
    "LocalClaim",
    "MemoryBackend",
    "NewActivity",
    "NewRun",
    "NewTimer",
    "OutgoingSignal",
    "ParentRef",
    "PostgresBackend",
    "QueueBacklog",
    "QueueLimitStore",
    "QueueLimits",
    "RetentionStore",
    "RunClose",
    "RunCount",
    "RunInfo",
    "RunStatus",
    "ScheduleRecord",
    "ScheduleStore",
    "SqliteBackend",
    "TimeSkipping",
    "WorkflowCommit",
    "WorkflowTask",
    "system_clock",
]


def __getattr__(name: str) -> Any:
    # PostgresBackend needs psycopg, an optional dependency: imported when first asked for.
    if name == "PostgresBackend":
        try:
            from ._backends.postgres import PostgresBackend
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] in ("psycopg", "psycopg_pool"):
                raise ImportError(
                    "the PostgreSQL backend needs psycopg: pip install 'ostinato[postgres]'"
                ) from None
            raise
        return PostgresBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
