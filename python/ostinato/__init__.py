"""ostinato: durable workflows for Python.

Workflows are plain ``async def`` functions; the engine records every decision in an event
history so a run survives crashes, restarts and deploys and resumes by deterministic replay.
"""

from __future__ import annotations

from . import activity, backends, workflow
from ._backends._contract import Backend
from ._backends._queue_limits import QueueLimits
from ._backends._types import RunStatus
from ._client import Client, WorkflowDescription, WorkflowHandle
from ._connect import connect
from ._errors import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    DeadlockError,
    EngineBugError,
    HistoryCorruptError,
    LeaseLostError,
    NonDeterminismError,
    OstinatoError,
    PayloadError,
    PayloadTooLargeError,
    RegistrationError,
    WorkflowAlreadyStartedError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
    WorkflowTerminatedError,
    WorkflowTimedOutError,
)
from ._hooks import RunStateChange, hook
from ._logcontext import LogContextFilter
from ._payloads import PayloadConverter
from ._retry import RetryPolicy
from ._schedules import (
    ScheduleAlreadyExistsError,
    ScheduleDescription,
    ScheduledRun,
    ScheduleHandle,
    ScheduleNotFoundError,
)
from ._sync import SyncClient
from ._worker import Worker

try:
    from importlib.metadata import version as _version

    __version__ = _version("ostinato")
except Exception:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = [
    "ActivityError",
    "ApplicationError",
    "Backend",
    "ChildWorkflowError",
    "Client",
    "DeadlockError",
    "EngineBugError",
    "HistoryCorruptError",
    "LeaseLostError",
    "LogContextFilter",
    "NonDeterminismError",
    "OstinatoError",
    "PayloadConverter",
    "PayloadError",
    "PayloadTooLargeError",
    "QueueLimits",
    "RegistrationError",
    "RetryPolicy",
    "RunStateChange",
    "RunStatus",
    "ScheduleAlreadyExistsError",
    "ScheduleDescription",
    "ScheduleHandle",
    "ScheduleNotFoundError",
    "ScheduledRun",
    "SyncClient",
    "Worker",
    "WorkflowAlreadyStartedError",
    "WorkflowCancelledError",
    "WorkflowDescription",
    "WorkflowFailedError",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "WorkflowNotRunningError",
    "WorkflowTerminatedError",
    "WorkflowTimedOutError",
    "activity",
    "backends",
    "connect",
    "hook",
    "workflow",
]
