"""One attempt of one activity task: run the activity, keep its lease, record the outcome
(completed, retried later, failed for good). ``Worker`` makes one per claimed task."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from . import _events
from ._backends._types import ActivityTask
from ._definition import ActivityDefinition
from ._errors import (
    ApplicationError,
    LeaseLostError,
    PayloadError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ._failure import encode_failure
from ._retry import RetryPolicy, to_seconds
from ._tracing import RunTrace, run_trace
from .activity import ActivityInfo, _ActivityContext, _context

if TYPE_CHECKING:
    from ._worker import Worker

__all__ = ["ActivityAttempt"]

log = logging.getLogger("ostinato.worker")

_DEFAULT_RETRY = RetryPolicy()


class _ActivityTimeout(Exception):
    pass


class ActivityAttempt:
    """One attempt of one activity task: run it, heartbeat its lease, record the outcome."""

    def __init__(self, worker: Worker, task: ActivityTask) -> None:
        self.worker = worker
        self.task = task
        self.backend = worker.backend
        self.retry: RetryPolicy | None = None
        self.start_to_close: float | None = None
        self.heartbeat_timeout: float | None = None
        # Why the task's options cannot be read (a tampered or foreign store), if they can't.
        self.bad_options: str | None = None
        try:
            self._read_options(task.options)
        except Exception as exc:
            self.bad_options = f"{type(exc).__name__}: {exc}"
        # The last heartbeat details known: this attempt's, or the previous attempt's.
        self.details: Any = None
        if task.heartbeat_details:
            with contextlib.suppress(orjson.JSONDecodeError):
                self.details = orjson.loads(task.heartbeat_details)
        # The encoded details not yet written to the store (None: nothing new).
        self.unflushed: bytes | None = None
        self._details_lock = threading.Lock()  # sync activities heartbeat from a thread
        self.last_heartbeat = time.monotonic()
        self.context: _ActivityContext | None = None
        # How the attempt ended, for its span and metrics (the error: type and message).
        self.outcome = "lost"
        self.error: tuple[str, str] | None = None

    _traceparent: str | None = None
    _tracestate: str | None = None

    def _read_options(self, raw: bytes) -> None:
        options = orjson.loads(raw or b"{}")
        if not isinstance(options, dict):
            raise TypeError(f"expected a JSON object, got {type(options).__name__}")
        for key in ("traceparent", "tracestate"):
            if isinstance(options.get(key), str):
                setattr(self, f"_{key}", options[key])
        retry = options.get("retry")
        if retry:
            if not isinstance(retry, dict):
                raise TypeError(f"retry must be a JSON object, got {retry!r}")
            self.retry = RetryPolicy.from_json(retry)
        self.start_to_close = to_seconds(options.get("start_to_close"), "start_to_close")
        self.heartbeat_timeout = to_seconds(options.get("heartbeat"), "heartbeat")

    @property
    def trace(self) -> RunTrace:
        """Where the attempt's span goes: under its run's span (see _tracing)."""
        return run_trace(self.task.run_id, self._traceparent, self._tracestate)

    @property
    def policy(self) -> RetryPolicy:
        return self.retry or _DEFAULT_RETRY

    async def flush_details(self) -> None:
        """Write heartbeat details recorded since the last lease tick, so the next attempt
        sees them (the attempt failed, timed out, or is given back on shutdown)."""
        details = self._take_unflushed()
        if details is not None:
            await self.backend.heartbeat_activity(self.task, details, self.worker.activity_lease)

    def _take_unflushed(self) -> bytes | None:
        with self._details_lock:
            details, self.unflushed = self.unflushed, None
        return details

    def _heartbeat(self, details: Any) -> None:
        self.last_heartbeat = time.monotonic()
        if details is not None:
            # Encoded here so that details that are not JSON fail at the call, in the
            # activity, rather than later in the lease keeper.
            encoded = self.worker.converter.encode(details, what="heartbeat details")
            with self._details_lock:
                self.unflushed = encoded
                self.details = details

    async def run(self) -> None:
        task = self.task
        now = self.backend.clock()
        definition = self.worker.activities.get(task.name)
        if self.bad_options is not None:
            # Retrying cannot help: the options are read the same way every time.
            await self._fail_for_good(
                ApplicationError(
                    f"activity {task.name!r} cannot run: its stored options cannot be read "
                    f"({self.bad_options}); the store was changed outside ostinato or by an "
                    "incompatible version",
                    type="ActivityOptionsError",
                    non_retryable=True,
                ),
                "non_retryable",
            )
            return
        if definition is None:
            await self._fail_for_good(
                ApplicationError(
                    f"activity {task.name!r} is not registered on this worker (registered: "
                    f"{', '.join(sorted(self.worker.activities)) or 'none'})",
                    type="ActivityNotRegisteredError",
                    non_retryable=True,
                ),
                "non_retryable",
            )
            return
        if task.deadline is not None and now >= task.deadline:
            await self._fail_for_good(
                ApplicationError(
                    f"activity {task.name!r} exceeded its schedule_to_close_timeout",
                    type="TimeoutError",
                ),
                "timeout",
            )
            return
        if task.attempt > 1 and not self.policy.allows_another(task.attempt - 1):
            # Earlier attempts were lost with their worker (lease expired) and used up
            # the attempts the policy allows.
            await self._fail_for_good(
                ApplicationError(
                    f"activity {task.name!r}: attempt {task.attempt - 1} was lost (its worker "
                    "stopped or lost its lease) and no attempts are left",
                    type="ActivityAttemptLostError",
                ),
                "maximum_attempts_reached",
                attempt=task.attempt - 1,
            )
            return
        try:
            args = self.worker.converter.decode_args(
                task.input, definition.fn, what=f"arguments of activity {task.name!r}"
            )
        except PayloadError as exc:
            await self._fail_for_good(exc, "non_retryable")
            return
        deadline = None
        if self.start_to_close is not None:
            deadline = now + self.start_to_close
        if task.deadline is not None:
            deadline = min(deadline, task.deadline) if deadline is not None else task.deadline
        info = ActivityInfo(
            activity_id=task.activity_id,
            activity_name=task.name,
            instance_id=task.instance_id,
            run_id=task.run_id,
            workflow_name=task.workflow_name,
            queue=task.queue,
            attempt=task.attempt,
            scheduled_time=datetime.fromtimestamp(task.scheduled_at, tz=timezone.utc),
            started_time=datetime.fromtimestamp(now, tz=timezone.utc),
            deadline=datetime.fromtimestamp(deadline, tz=timezone.utc) if deadline else None,
            heartbeat_timeout=self.heartbeat_timeout,
            heartbeat_details=self.details,
        )
        self.context = _ActivityContext(info, self._heartbeat)
        attempt = asyncio.ensure_future(self._invoke(definition, args))
        keeper = asyncio.create_task(self._keep_lease(attempt))
        timeout = None if deadline is None else max(deadline - now, 0.0)
        try:
            done, _ = await asyncio.wait({attempt}, timeout=timeout)
            if not done:
                attempt.cancel()
                raise _ActivityTimeout(
                    f"activity {task.name!r} attempt {task.attempt} timed out after {timeout:g}s"
                )
            result = attempt.result()
        except _ActivityTimeout as exc:
            await self._attempt_failed(self._timeout_error(str(exc)))
            return
        except asyncio.CancelledError:
            if self.context._cancelled.is_set():
                # Cancelled by the workflow: record it so the task is not run again.
                await self._fail_for_good(
                    ApplicationError(
                        f"activity {task.name!r} was cancelled", type="CancelledError"
                    ),
                    "cancelled",
                )
                return
            error = keeper.exception() if keeper.done() and not keeper.cancelled() else None
            if isinstance(error, _ActivityTimeout):
                await self._attempt_failed(self._timeout_error(str(error)))
                return
            if error is not None:
                raise error from None
            raise
        except BaseException as exc:
            if isinstance(exc, (LeaseLostError,)):
                raise
            await self._attempt_failed(exc)
            return
        finally:
            keeper.cancel()
            if not attempt.done():
                attempt.cancel()
        try:
            payload = self.worker.converter.encode(result, what=f"result of activity {task.name!r}")
        except PayloadError as exc:
            await self._fail_for_good(exc, "non_retryable")
            return
        self.outcome = "completed"
        await self.worker._complete_activity(
            task, _events.activity_completed(task.activity_id, payload, task.attempt)
        )

    async def _invoke(self, definition: ActivityDefinition, args: list[Any]) -> Any:
        assert self.context is not None
        token = _context.set(self.context)
        try:
            if definition.is_async:
                try:
                    return await definition.fn(*args)
                except (SystemExit, KeyboardInterrupt) as exc:
                    # Never let an activity take the worker's event loop down with it.
                    raise _ActivityExit(exc) from exc
            ctx = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self.worker._executor, _run_sync, ctx, definition.fn, args
            )
        finally:
            _context.reset(token)

    async def _keep_lease(self, attempt: asyncio.Future[Any]) -> None:
        """Extend the lease, flush heartbeat details, notice cancellation and heartbeat
        timeouts while the attempt runs."""
        assert self.context is not None
        lease = self.worker.activity_lease
        interval = lease / 3
        if self.heartbeat_timeout:
            interval = min(interval, max(self.heartbeat_timeout / 3, 0.05))
        while not attempt.done():
            await asyncio.sleep(interval)
            if attempt.done():
                return
            if (
                self.heartbeat_timeout
                and time.monotonic() - self.last_heartbeat > self.heartbeat_timeout
            ):
                attempt.cancel()
                raise _ActivityTimeout(
                    f"activity {self.task.name!r} attempt {self.task.attempt} sent no heartbeat "
                    f"for {self.heartbeat_timeout:g}s (heartbeat_timeout)"
                )
            details = self._take_unflushed()
            try:
                cancelled = await self.backend.heartbeat_activity(self.task, details, lease)
            except LeaseLostError:
                attempt.cancel()
                raise
            if cancelled and not self.context._cancelled.is_set():
                self.context._cancelled.set()
                attempt.cancel()

    def _timeout_error(self, message: str) -> ApplicationError:
        """A timed-out attempt's failure: it carries the last heartbeat details, if any."""
        if self.details is None:
            return ApplicationError(message, type="TimeoutError")
        return ApplicationError(message, self.details, type="TimeoutError")

    async def _attempt_failed(self, exc: BaseException) -> None:
        if isinstance(exc, _ActivityExit):
            exc = ApplicationError(
                f"activity {self.task.name!r} raised {type(exc.original).__name__} "
                f"({exc.original}); the worker kept running",
                type=type(exc.original).__name__,
            )
        task = self.task
        policy = self.policy
        type_name = exc.type if isinstance(exc, ApplicationError) else type(exc).__name__
        if (
            isinstance(exc, ApplicationError) and exc.non_retryable
        ) or type_name in policy.non_retryable_error_types:
            await self._fail_for_good(exc, "non_retryable")
            return
        if not policy.allows_another(task.attempt):
            await self._fail_for_good(exc, "maximum_attempts_reached")
            return
        # Retried (now, later, or after a pause); _fail_for_good says otherwise.
        self.outcome, self.error = "retrying", (type_name, str(exc))
        if policy.pauses_after(task.attempt) and await self._pause_run(exc, type_name):
            # Visible at once: resume() retries it without waiting for a back-off.
            await self.flush_details()
            await self.backend.retry_activity(task, self.backend.clock(), encode_failure(exc))
            return
        delay = policy.backoff(task.attempt)
        if isinstance(exc, ApplicationError) and exc.next_retry_delay is not None:
            delay = exc.next_retry_delay.total_seconds()  # the activity asked for it
        visible_at = self.backend.clock() + delay
        if task.deadline is not None and visible_at >= task.deadline:
            await self._fail_for_good(exc, "timeout")
            return
        log.info(
            "activity %s #%d of %s failed (attempt %d): %s: %s; retrying in %.2fs",
            task.name,
            task.activity_id,
            task.instance_id,
            task.attempt,
            type_name,
            exc,
            visible_at - self.backend.clock(),
        )
        await self.flush_details()  # the next attempt starts from the last details
        await self.backend.retry_activity(task, visible_at, encode_failure(exc))

    async def _pause_run(self, exc: BaseException, type_name: str) -> bool:
        """RetryPolicy(pause_after=N): pause the run before giving the task back, so no
        worker starts another attempt (a crash in between leaves the run paused and the task
        to come back when its lease expires). False when the run is closed already."""
        task = self.task
        reason = (
            f"activity {task.name!r} (#{task.activity_id}) failed {task.attempt} attempts in a "
            f"row (RetryPolicy.pause_after={self.policy.pause_after}); last failure: "
            f"{type_name}: {exc}"
        )
        try:
            await self.backend.pause(task.instance_id, reason[:2000])
        except (WorkflowNotRunningError, WorkflowNotFoundError):
            return False
        log.warning("workflow %s paused: %s", task.instance_id, reason)
        return True

    async def _fail_for_good(
        self, exc: BaseException, retry_state: str, *, attempt: int | None = None
    ) -> None:
        failure = orjson.loads(encode_failure(exc))
        failure["retry_state"] = retry_state
        self.outcome = "cancelled" if retry_state == "cancelled" else "failed"
        self.error = (
            exc.type if isinstance(exc, ApplicationError) else type(exc).__name__,
            str(exc),
        )
        await self.worker._complete_activity(
            self.task,
            _events.activity_failed(
                self.task.activity_id,
                orjson.dumps(failure),
                attempt if attempt is not None else self.task.attempt,
            ),
        )


class _ActivityExit(Exception):
    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _run_sync(ctx: contextvars.Context, fn: Callable[..., Any], args: list[Any]) -> Any:
    try:
        return ctx.run(fn, *args)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _ActivityExit(exc) from exc
