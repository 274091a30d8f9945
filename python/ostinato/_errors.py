"""Public exception types.

Every error says what went wrong, for which workflow/activity/event, and what to do.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

__all__ = [
    "OstinatoError",
    "EngineBugError",
    "ApplicationError",
    "ActivityError",
    "ChildWorkflowError",
    "WorkflowFailedError",
    "WorkflowCancelledError",
    "WorkflowTerminatedError",
    "WorkflowTimedOutError",
    "NonDeterminismError",
    "WorkflowAlreadyStartedError",
    "WorkflowNotFoundError",
    "WorkflowNotRunningError",
    "PayloadError",
    "PayloadTooLargeError",
    "HistoryCorruptError",
    "LeaseLostError",
    "RegistrationError",
    "DeadlockError",
]


class OstinatoError(Exception):
    """Base class of every error raised by ostinato."""


class ApplicationError(OstinatoError):
    """Raise from an activity or workflow to fail it with a message you choose.

    ``non_retryable=True`` stops activity retries at once. ``type`` names the error kind
    (defaults to the class name) and ``details`` carries JSON-able data to the caller.
    ``next_retry_delay`` (seconds or a ``timedelta``), raised from an activity, replaces the
    retry policy's back-off before the next attempt (the policy's ``max_attempts`` and the
    ``schedule_to_close_timeout`` still apply).
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
        next_retry_delay: float | timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: Sequence[Any] = details
        self.type = type or builtins.type(self).__name__
        self.non_retryable = non_retryable
        self.next_retry_delay: timedelta | None = None
        if next_retry_delay is not None:
            from ._retry import to_seconds  # _retry does not import this module back

            seconds = to_seconds(next_retry_delay, "ApplicationError next_retry_delay")
            self.next_retry_delay = timedelta(seconds=seconds or 0.0)
        # Set when the error was rebuilt from a stored failure (another process raised it).
        self.remote_traceback: str | None = None

    def __str__(self) -> str:
        return self.message


class ActivityError(OstinatoError):
    """An activity failed for good (retries exhausted, non-retryable, or timed out).

    ``cause`` (also ``__cause__``) is the rebuilt original error: an ``ApplicationError``
    whose ``type`` is the original exception's class name and whose ``remote_traceback``
    holds the original traceback text.
    """

    def __init__(
        self,
        message: str,
        *,
        activity_name: str,
        activity_id: int,
        attempt: int,
        retry_state: str,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.activity_name = activity_name
        self.activity_id = activity_id
        self.attempt = attempt
        self.retry_state = retry_state
        self.cause = cause
        self.__cause__ = cause


class ChildWorkflowError(OstinatoError):
    """A child workflow failed, was cancelled or terminated; ``cause`` says why."""

    def __init__(
        self,
        message: str,
        *,
        workflow_name: str,
        instance_id: str,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.workflow_name = workflow_name
        self.instance_id = instance_id
        self.cause = cause
        self.__cause__ = cause


class WorkflowFailedError(OstinatoError):
    """Raised by ``handle.result()`` when the run did not complete successfully."""

    def __init__(
        self,
        message: str,
        *,
        instance_id: str,
        run_id: str,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.run_id = run_id
        self.cause = cause
        self.__cause__ = cause


class WorkflowCancelledError(WorkflowFailedError):
    """The run ended because it was cancelled."""


class WorkflowTerminatedError(WorkflowFailedError):
    """The run was terminated from outside; no workflow code ran after that."""


class WorkflowTimedOutError(WorkflowFailedError):
    """The run exceeded its ``execution_timeout``."""


class NonDeterminismError(OstinatoError):
    """Workflow code no longer matches the history it recorded.

    ``seq`` is the history event's sequence number, ``expected`` what history holds there and
    ``got`` what the code did instead.
    """

    def __init__(
        self,
        message: str,
        *,
        seq: int = 0,
        expected: str = "",
        got: str = "",
        workflow_name: str = "",
        instance_id: str = "",
    ) -> None:
        super().__init__(message)
        self.seq = seq
        self.expected = expected
        self.got = got
        self.workflow_name = workflow_name
        self.instance_id = instance_id


class WorkflowAlreadyStartedError(OstinatoError):
    """A run with this workflow id is still open (or the id-reuse policy refuses reuse)."""

    def __init__(self, instance_id: str, message: str | None = None) -> None:
        super().__init__(message or f"workflow id {instance_id!r} already has a running workflow")
        self.instance_id = instance_id


class WorkflowNotFoundError(OstinatoError, LookupError):
    """No workflow with this id (or run id) exists."""

    def __init__(self, instance_id: str, message: str | None = None) -> None:
        super().__init__(message or f"no workflow with id {instance_id!r}")
        self.instance_id = instance_id


class WorkflowNotRunningError(OstinatoError):
    """The operation needs an open run, but the run has already closed."""

    def __init__(self, instance_id: str, status: str) -> None:
        super().__init__(f"workflow {instance_id!r} is not running (status: {status})")
        self.instance_id = instance_id
        self.status = status


class PayloadError(OstinatoError, TypeError):
    """A value could not be converted to or from a JSON payload."""


class PayloadTooLargeError(PayloadError, ValueError):
    """An encoded payload is larger than the configured limit."""


class HistoryCorruptError(OstinatoError):
    """A stored history event could not be decoded."""

    def __init__(self, message: str, *, seq: int = 0, instance_id: str = "") -> None:
        super().__init__(message)
        self.seq = seq
        self.instance_id = instance_id


class EngineBugError(OstinatoError):
    """The engine reached a state only a bug in ostinato can cause (an illegal transition of
    the core). The workflow task fails and the run is kept; please report it."""


class LeaseLostError(OstinatoError):
    """The worker's lease on a task expired or was taken over; its commit was refused."""


class RegistrationError(OstinatoError, ValueError):
    """A workflow or activity definition is invalid, or two share a name."""


class DeadlockError(OstinatoError):
    """Workflow code ran too long without yielding (a blocking call in workflow code)."""
