"""One workflow run in memory: the reducer, the deterministic loop and the user's coroutine.

The worker feeds a run with activations (``activate``); the run applies each job (resolve a
future, fire a timer, deliver a signal ...), runs the workflow code until it is blocked, and
turns what the code did into reducer commands. A run survives between workflow tasks in the
worker's cache ("sticky"), so a new event costs one step instead of a full replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from . import _core, _events
from ._commit import StepOutput
from ._definition import WorkflowDefinition
from ._errors import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    DeadlockError,
    EngineBugError,
    HistoryCorruptError,
    NonDeterminismError,
    PayloadError,
    WorkflowNotFoundError,
    WorkflowNotRunningError,
)
from ._failure import decode_failure, encode_failure
from ._guard import GuardMode, NondeterministicCallError, guarding
from ._loop import WATCHDOG, DeadlockInterrupt, DeterministicLoop, DurableTimer
from ._payloads import PayloadConverter
from ._retry import Duration, to_seconds
from ._tracing import RunTrace, run_trace

__all__ = ["ContinueAsNew", "WorkflowInfo", "WorkflowRun", "current_run"]

log = logging.getLogger("ostinato.workflow")

# The failure type of a run that outgrew the worker's history_max_length.
HISTORY_TOO_LONG = "HistoryTooLongError"


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """What a workflow knows about itself (``workflow.info()``)."""

    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    start_time: datetime
    attempt: int
    history_length: int
    parent_instance_id: str | None
    continued_from_run_id: str | None


class ContinueAsNew(BaseException):
    """Raised by ``workflow.continue_as_new``; ends the run and starts a fresh one."""

    def __init__(self, args: tuple[Any, ...], workflow: str | None) -> None:
        super().__init__("continue as new")
        self.args_ = args
        self.workflow = workflow


class _Abort(BaseException):
    """Stops workflow code after the run hit a nondeterminism error."""


_current: WorkflowRun | None = None

# What the core raises; WorkflowRun._translate turns each into ostinato's error.
_CORE_ERRORS = (_core.NondeterminismError, _core.HistoryCorruptError, _core.EngineBugError)


# What the finally: blocks of a disposed run may still call: reads that change nothing.
_ALLOWED_WHILE_DISPOSING = frozenset(
    {"info", "now", "random", "uuid4", "cancellation_reason", "signal_channel"}
)


def current_run(api: str) -> WorkflowRun:
    run = _current
    if run is None:
        raise RuntimeError(
            f"workflow.{api}() can only be called from workflow code (a function decorated "
            "with @workflow.defn running in a worker)"
        )
    if run.disposing and api not in _ALLOWED_WHILE_DISPOSING:
        raise RuntimeError(
            f"workflow.{api}() called in a finally: block of workflow {run.workflow_name!r} "
            f"({run.instance_id}) while the worker disposed of the suspended run (evicted from "
            "its cache, dropped after a workflow task, or shut down). The run itself goes on "
            "from its history; nothing done here is recorded. Put cleanup that must happen in "
            "an except asyncio.CancelledError: block or after the await, not in finally:."
        )
    if run.closed:
        raise RuntimeError(f"workflow.{api}() called after the workflow run finished")
    return run


@dataclass(slots=True)
class _Pending:
    kind: str  # "activity" | "child" | "signal"
    name: str
    future: asyncio.Future[Any]
    decode: Callable[[bytes], Any] | None
    instance_id: str = ""


class SignalChannel:
    """Signals of one name. Signals that arrive before anyone receives are kept, in order."""

    def __init__(self, run: WorkflowRun, name: str, type_hint: Any) -> None:
        self._run = run
        self.name = name
        self.type_hint = type_hint
        self._buffer: deque[bytes | None] = deque()
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def _decode(self, payload: bytes | None) -> Any:
        if payload is None:
            return None
        return self._run.converter.decode(
            payload,
            Any if self.type_hint is None else self.type_hint,
            what=f"signal {self.name!r} of workflow {self._run.workflow_name!r}",
        )

    def deliver(self, payload: bytes | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                try:
                    waiter.set_result(self._decode(payload))
                except Exception as exc:  # a payload that does not fit the declared type
                    waiter.set_exception(exc)
                return
        self._buffer.append(payload)

    def receive_nowait(self) -> Any:
        """The oldest buffered signal value; ``asyncio.QueueEmpty`` when there is none."""
        if not self._buffer:
            raise asyncio.QueueEmpty(f"no signal {self.name!r} is waiting")
        return self._decode(self._buffer.popleft())

    async def receive(self, timeout: Duration | None = None) -> Any:
        """Wait for the next signal; ``asyncio.TimeoutError`` after ``timeout`` (seconds or a
        timedelta; a durable timer)."""
        if self._buffer:
            return self._decode(self._buffer.popleft())
        seconds = to_seconds(timeout, "timeout")
        waiter: asyncio.Future[Any] = self._run.loop.create_future()
        self._waiters.append(waiter)
        if seconds is None:
            return await waiter
        return await asyncio.wait_for(waiter, seconds)

    def pending(self) -> int:
        return len(self._buffer)

    def __aiter__(self) -> SignalChannel:
        return self

    async def __anext__(self) -> Any:
        return await self.receive()


class WorkflowRun:
    def __init__(
        self,
        *,
        definition: WorkflowDefinition | None,
        workflow_name: str,
        instance_id: str,
        run_id: str,
        queue: str,
        converter: PayloadConverter,
        deadlock_timeout: float | None,
        guard_mode: GuardMode = GuardMode.OFF,
    ) -> None:
        self.definition = definition
        self.guard_mode = guard_mode
        self.workflow_name = workflow_name
        self.instance_id = instance_id
        self.run_id = run_id
        self.queue = queue
        self.converter = converter
        self.deadlock_timeout = deadlock_timeout
        self.reducer = _core.Reducer()
        self.loop = DeterministicLoop(self)  # type: ignore[abstract]
        self.now_us = 0
        self.replaying = False
        self.main: asyncio.Task[Any] | None = None
        self.pending: dict[int, _Pending] = {}
        self.timers: dict[int, DurableTimer] = {}
        self.channels: dict[str, SignalChannel] = {}
        self.conditions: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.vars: dict[str, bytes] = {}
        self.dirty_vars: dict[str, bytes] = {}
        self.cancel_requested = False
        self.cancel_reason: str | None = None
        # dispose() is closing the run's coroutines: their finally: blocks may not issue
        # commands.
        self.disposing = False
        self.closed = False
        self.aborted = False
        self.failure: BaseException | None = None
        self.info: WorkflowInfo | None = None
        self.random = random.Random(0)
        self.children_started = 0
        self.known_workflows = ""
        # History size limits (Worker options history_warn_length / history_max_length).
        self.history_warn_length: int | None = None
        self.history_max_length: int | None = None
        # Set by replay() when the history ends with the hard limit's failure: the number of
        # the activation (batch) that must issue it again, and the failure.
        self._limit_failure_at: tuple[int, bytes] | None = None
        self._activations = 0
        # Absolute deadline of the execution (execution_timeout), carried to the next run
        # by continue-as-new.
        self.execution_deadline: float | None = None
        # Where the run sits in a trace (from its workflow_started event), and whether it
        # was started under a span (a traceparent was recorded).
        self.trace: RunTrace | None = None
        self.traced = False
        # The span events of the run so far (signals, timers, children), kept by a worker
        # that traces (None otherwise): its RunWorkflow span gets them when the run closes.
        self.trace_events: list[_events.TraceEvent] | None = None

    # ---- driving ------------------------------------------------------------------------

    @property
    def history_length(self) -> int:
        return self.reducer.history_length

    def replay(self, history: list[bytes]) -> None:
        """Rebuild the run's state from its recorded history (cold cache).

        ``HistoryCorruptError`` for a redacted history: its payloads are gone, so the code
        would not see what it saw."""
        if _events.is_redacted(history):
            raise HistoryCorruptError(
                f"the history of workflow {self.instance_id!r} was redacted (its payloads were "
                "scrubbed by handle.redact()): it cannot be replayed",
                seq=1,
                instance_id=self.instance_id,
            )
        self._limit_failure_at = _limit_failure(history)
        self._reducer_call(self.reducer.load_history, history)
        while not self.closed:
            activation = self._reducer_call(self.reducer.next_activation)
            if activation is None:
                break
            self.activate(activation)

    def step(self, time_us: int, inbox: list[bytes]) -> None:
        """Run one new workflow task over ``inbox`` events."""
        before = self.history_length
        self._reducer_call(self.reducer.add_new_batch, time_us, inbox)
        activation = self._reducer_call(self.reducer.next_activation)
        if activation is not None:
            self.activate(activation)
        warn = self.history_warn_length
        if warn is not None and before <= warn < self.history_length:
            # Logged by the task that crosses the line, so once per run.
            log.warning(
                "workflow %r (%s) has %d history events, more than history_warn_length=%d; "
                "long-lived workflows should call workflow.continue_as_new() to start over "
                "with a fresh history%s",
                self.workflow_name,
                self.instance_id,
                self.history_length,
                warn,
                ""
                if self.history_max_length is None
                else f" (the run fails at history_max_length={self.history_max_length})",
            )

    def activate(self, activation: _core.Activation) -> None:
        global _current
        self.now_us = activation.time
        self.replaying = activation.replaying
        previous_loop = asyncio.events._get_running_loop()
        previous_run = _current
        asyncio.events._set_running_loop(self.loop)
        _current = self
        flag = (
            WATCHDOG.begin(self.deadlock_timeout)
            if self.deadlock_timeout and sys.gettrace() is None
            else None
        )
        try:
            try:
                with guarding(self.workflow_name, self.guard_mode):
                    try:
                        for job in activation.jobs:
                            self._apply(job)
                            if self.aborted:
                                break
                        self._run_until_blocked()
                    except _Abort:
                        # A command issued by the runtime itself (closing the run, failing
                        # its start) hit nondeterminism: self.failure says which.
                        pass
            finally:
                if flag is not None:
                    WATCHDOG.end()
        except DeadlockInterrupt:
            flag = [True] if flag is None else flag
            flag[0] = True
        finally:
            _current = previous_run
            asyncio.events._set_running_loop(previous_loop)
        if flag is not None and flag[0]:
            self._abort(
                DeadlockError(
                    f"workflow {self.workflow_name!r} ({self.instance_id}) ran for more than "
                    f"{self.deadlock_timeout:g}s without yielding: a blocking call (time.sleep, "
                    "synchronous I/O, a long computation) in workflow code stalls the whole "
                    "worker. Move it into an activity, or raise the worker's deadlock_timeout."
                )
            )
        if self.failure is not None:
            raise self.failure
        self._activations += 1
        self._check_history_limit()
        self._reducer_call(self.reducer.finish_activation)

    def _check_history_limit(self) -> None:
        """Fail a run whose history outgrew the worker's ``history_max_length``.

        The failure is a command of the batch that crossed the limit. Replaying such a
        history issues it again at the same batch, whatever the replaying worker's limit.
        """
        if self.closed:
            return
        if self.replaying:
            at = self._limit_failure_at
            if at is None or at[0] != self._activations:
                return
            failure = at[1]
        else:
            limit = self.history_max_length
            if limit is None or self.history_length <= limit:
                return
            failure = encode_failure(
                ApplicationError(
                    f"workflow {self.workflow_name!r} ({self.instance_id}) has "
                    f"{self.history_length} history events, more than the worker's "
                    f"history_max_length={limit}. A long-lived workflow should call "
                    "workflow.continue_as_new() to carry its state into a new run with a "
                    "fresh history.",
                    type=HISTORY_TOO_LONG,
                    non_retryable=True,
                )
            )
        self._command(self.reducer.fail, failure)
        self.closed = True

    def _run_until_blocked(self) -> None:
        loop = self.loop
        while not self.aborted:
            loop.run_ready()
            if self.aborted:
                return
            if self.main is not None and self.main.done() and not self.closed:
                self._close_from_main()
                return
            if not self._check_conditions():
                return

    def _check_conditions(self) -> bool:
        fired = False
        remaining: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        for predicate, future in self.conditions:
            if future.done():
                continue
            try:
                ok = predicate()
            except Exception as exc:
                future.set_exception(exc)
                fired = True
                continue
            if ok:
                future.set_result(None)
                fired = True
            else:
                remaining.append((predicate, future))
        self.conditions = remaining
        return fired

    def _close_from_main(self) -> None:
        assert self.main is not None
        main = self.main
        if main.cancelled():
            self._command(self.reducer.cancel)
        else:
            exc = main.exception()
            if exc is None:
                try:
                    result = self.converter.encode(
                        main.result(), what=f"result of workflow {self.workflow_name!r}"
                    )
                except PayloadError as error:
                    # Like an activity's: the run fails (for good) and says why, rather
                    # than retrying a task that can never commit.
                    self._command(self.reducer.fail, encode_failure(error))
                else:
                    self._command(self.reducer.complete, result)
            elif isinstance(exc, ContinueAsNew):
                self._continue_as_new(exc)
            elif isinstance(exc, asyncio.CancelledError):
                self._command(self.reducer.cancel)
            elif isinstance(exc, _Abort | DeadlockInterrupt):
                return
            elif isinstance(exc, NondeterministicCallError):
                # Guard mode "raise": a task failure (the run stays, blocked), not a
                # workflow failure: the code, not the business logic, is wrong.
                self._abort(exc)
                return
            else:
                self._command(self.reducer.fail, encode_failure(exc))
        self.closed = True

    def _continue_as_new(self, request: ContinueAsNew) -> None:
        name = request.workflow or self.workflow_name
        unread = {n: c.pending() for n, c in self.channels.items() if c.pending()}
        if unread and not self.replaying:
            log.warning(
                "workflow %r (%s) continues as new with signals it received but did not "
                "handle (%s): they end with this run. Drain them with receive_nowait() and "
                "pass them to continue_as_new().",
                self.workflow_name,
                self.instance_id,
                ", ".join(f"{n!r}: {k}" for n, k in sorted(unread.items())),
            )
        try:
            payload = self.converter.encode_args(
                list(request.args_), what=f"continue_as_new arguments of workflow {name!r}"
            )
        except PayloadError as error:  # like an unserializable result: the run fails
            self._command(self.reducer.fail, encode_failure(error))
            return
        options = orjson.dumps({"workflow": name, "queue": self.queue})
        self._command(self.reducer.continue_as_new, payload, options)

    # ---- jobs ---------------------------------------------------------------------------

    def _apply(self, job: _core.Job) -> None:
        kind = job.kind
        if kind == "activity_completed" or kind == "child_completed":
            pending = self.pending.pop(job.id, None)
            if pending is not None and not pending.future.done():
                payload = job.payload if job.payload is not None else b"null"
                try:
                    value = pending.decode(payload) if pending.decode else orjson.loads(payload)
                except Exception as exc:
                    pending.future.set_exception(exc)
                else:
                    pending.future.set_result(value)
        elif kind == "activity_failed":
            pending = self.pending.pop(job.id, None)
            if pending is not None and not pending.future.done():
                cause = decode_failure(job.payload or b"{}")
                retry_state = "non_retryable"
                if isinstance(cause, ApplicationError):
                    retry_state = str(getattr(cause, "retry_state", "") or retry_state)
                pending.future.set_exception(
                    ActivityError(
                        f"activity {pending.name!r} failed after {job.attempt} attempt(s): {cause}",
                        activity_name=pending.name,
                        activity_id=job.id,
                        attempt=job.attempt,
                        retry_state=retry_state,
                        cause=cause,
                    )
                )
        elif kind == "timer_fired":
            handle = self.timers.pop(job.id, None)
            if handle is not None:
                self.loop.fire_timer(handle)
        elif kind == "signal_received":
            self.signal_channel(job.name, None).deliver(job.payload)
        elif kind == "child_failed":
            pending = self.pending.pop(job.id, None)
            if pending is not None and not pending.future.done():
                cause = decode_failure(job.payload or b"{}")
                pending.future.set_exception(
                    ChildWorkflowError(
                        f"child workflow {pending.name!r} ({pending.instance_id}) did not "
                        f"complete: {cause}",
                        workflow_name=pending.name,
                        instance_id=pending.instance_id,
                        cause=cause,
                    )
                )
        elif kind == "signal_external_completed":
            pending = self.pending.pop(job.id, None)
            if pending is not None and not pending.future.done():
                if job.payload is None or job.payload == b"null":
                    pending.future.set_result(None)
                else:
                    cause = decode_failure(job.payload)
                    error: Exception = cause if isinstance(cause, Exception) else Exception()
                    kind_name = getattr(cause, "type", "")
                    if kind_name == "WorkflowNotFoundError":
                        error = WorkflowNotFoundError(pending.instance_id, str(cause))
                    elif kind_name == "WorkflowNotRunningError":
                        error = WorkflowNotRunningError(pending.instance_id, "closed")
                        error.args = (str(cause),)
                    pending.future.set_exception(error)
        elif kind == "cancel_requested":
            # Only the first request cancels: a repeated one (a second client cancel, a
            # parent's cascade) must not interrupt cleanup that is running after the first.
            if not self.cancel_requested:
                self.cancel_requested = True
                self.cancel_reason = job.name
                if self.main is not None and not self.main.done():
                    self.main.cancel(job.name or None)
        elif kind == "timed_out":
            failure = orjson.dumps(
                {
                    "type": "WorkflowTimedOutError",
                    "message": f"workflow {self.workflow_name!r} exceeded its execution timeout",
                }
            )
            # The reducer records that the deadline closed the run: its close status is
            # timed_out, whatever the failure says.
            self._command(self.reducer.fail, failure)
            self.closed = True
        elif kind == "workflow_started":
            self._start(job)
        else:
            self._abort(
                NonDeterminismError(f"unexpected job {kind!r} for workflow {self.workflow_name!r}")
            )

    def _start(self, job: _core.Job) -> None:
        info = _events.start_info(job.info)
        self.info = WorkflowInfo(
            instance_id=self.instance_id,
            run_id=self.run_id,
            workflow_name=self.workflow_name,
            queue=self.queue,
            start_time=datetime.fromtimestamp(info.start_time, tz=timezone.utc),
            attempt=info.attempt,
            history_length=0,
            parent_instance_id=info.parent_instance_id,
            continued_from_run_id=info.continued_from_run_id,
        )
        self.random = random.Random(uuid.UUID(hex=self.run_id).int)
        self.execution_deadline = info.execution_deadline
        self.trace = run_trace(self.run_id, info.traceparent, info.tracestate)
        self.traced = info.traceparent is not None
        if self.definition is None:
            self._fail_start(
                ApplicationError(
                    f"workflow {self.workflow_name!r} is not registered on the worker that "
                    f"picked up {self.instance_id!r} (registered: {self.known_workflows}); "
                    "register it with Worker(workflows=[...]) or route it to another queue",
                    type="WorkflowNotRegisteredError",
                    non_retryable=True,
                )
            )
            return
        fn = self.definition.fn
        try:
            args = self.converter.decode_args(
                job.payload or b"[]", fn, what=f"arguments of workflow {self.workflow_name!r}"
            )
            coro = fn(*args)
        except Exception as exc:  # wrong argument count or types: fail the run clearly
            self._fail_start(exc)
            return
        self.main = self.loop.create_task(coro, name=f"workflow:{self.workflow_name}")

    def _fail_start(self, exc: BaseException) -> None:
        self._command(self.reducer.fail, encode_failure(exc))
        self.closed = True

    # ---- commands (called by the workflow API) ------------------------------------------

    def _reducer_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except _CORE_ERRORS as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: Exception) -> Exception:
        """The one place where the core's errors become ostinato's."""
        if isinstance(exc, _core.NondeterminismError):
            return NonDeterminismError(
                f"workflow {self.workflow_name!r} ({self.instance_id}) is nondeterministic: "
                f"{exc}. Deploy code that matches the recorded history (or guard the change "
                "with workflow.patched()).",
                seq=exc.seq,
                expected=exc.expected,
                got=exc.got,
                workflow_name=self.workflow_name,
                instance_id=self.instance_id,
            )
        if isinstance(exc, _core.HistoryCorruptError):
            return HistoryCorruptError(
                f"history of workflow {self.instance_id!r} is corrupt at event #{exc.seq}: "
                f"{exc}. The run is kept; repair or terminate it.",
                seq=exc.seq,
                instance_id=self.instance_id,
            )
        return EngineBugError(
            f"engine bug in workflow {self.workflow_name!r} ({self.instance_id}): {exc}. The "
            "run is kept and its task retried; please report this with the run's history "
            "(ostinato history)."
        )

    def _abort(self, failure: BaseException) -> None:
        if self.failure is None:
            self.failure = failure
        self.aborted = True

    def _command(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Issue a command; on nondeterminism stop the workflow code at once."""
        if self.aborted:
            raise _Abort()
        try:
            return fn(*args)
        except _CORE_ERRORS as exc:
            self._abort(self._translate(exc))
            raise _Abort() from None

    def start_timer(self, handle: DurableTimer, when: float) -> int:
        fire_at = max(round(when * 1_000_000), self.now_us)
        timer_id: int = self._command(self.reducer.start_timer, fire_at)
        self.timers[timer_id] = handle
        return timer_id

    def cancel_timer(self, timer_id: int) -> None:
        if self.closed or self.aborted:
            return
        if self.timers.pop(timer_id, None) is not None:
            self._command(self.reducer.cancel_timer, timer_id)

    def schedule_activity(
        self, name: str, payload: bytes, options: bytes, decode: Callable[[bytes], Any] | None
    ) -> tuple[int, asyncio.Future[Any]]:
        activity_id: int = self._command(self.reducer.schedule_activity, name, payload, options)
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[activity_id] = _Pending("activity", name, future, decode)
        future.add_done_callback(lambda f: self._on_done(f, activity_id))
        return activity_id, future

    def _on_done(self, future: asyncio.Future[Any], command_id: int) -> None:
        """A pending future was cancelled by workflow code: cancel what it waits for."""
        if not future.cancelled() or self.closed or self.aborted:
            return
        pending = self.pending.pop(command_id, None)
        if pending is None:
            return
        try:
            if pending.kind == "activity":
                self._command(self.reducer.cancel_activity, command_id)
            elif pending.kind == "child":
                self._command(self.reducer.cancel_child, command_id)
        except _Abort:
            pass

    def start_child(
        self,
        name: str,
        payload: bytes,
        options: dict[str, Any],
        decode: Callable[[bytes], Any] | None,
    ) -> tuple[int, asyncio.Future[Any]]:
        child_id: int = self._command(
            self.reducer.start_child, name, payload, orjson.dumps(options)
        )
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[child_id] = _Pending(
            "child", name, future, decode, instance_id=options["instance_id"]
        )
        future.add_done_callback(lambda f: self._on_done(f, child_id))
        return child_id, future

    def signal_external(self, instance_id: str, name: str, payload: bytes) -> asyncio.Future[Any]:
        options = orjson.dumps({"instance_id": instance_id})
        command_id: int = self._command(self.reducer.signal_external, name, payload, options)
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[command_id] = _Pending("signal", name, future, None, instance_id=instance_id)
        return future

    def cancel_external(self, instance_id: str, reason: str) -> asyncio.Future[Any]:
        options = orjson.dumps({"instance_id": instance_id})
        command_id: int = self._command(self.reducer.cancel_external, options, reason)
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[command_id] = _Pending(
            "cancel", "cancel", future, None, instance_id=instance_id
        )
        return future

    def side_effect(self, fn: Callable[[], Any]) -> Any:
        if self.reducer.replaying:
            _, recorded = self._command(self.reducer.side_effect, None)
            return orjson.loads(recorded)
        value = fn()
        encoded = self.converter.encode(value, what="side_effect value")
        self._command(self.reducer.side_effect, encoded)
        return orjson.loads(encoded)

    def patched(self, change_id: str, deprecated: bool) -> bool:
        return bool(self._command(self.reducer.patched, change_id, deprecated))

    def signal_channel(self, name: str, type_hint: Any) -> SignalChannel:
        channel = self.channels.get(name)
        if channel is None:
            channel = SignalChannel(self, name, type_hint)
            self.channels[name] = channel
        elif type_hint is not None:
            channel.type_hint = type_hint
        return channel

    def wait_condition(self, predicate: Callable[[], bool]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        if predicate():
            future.set_result(None)
        else:
            self.conditions.append((predicate, future))
        return future

    def set_var(self, name: str, value: Any) -> None:
        encoded = self.converter.encode(value, what=f"workflow variable {name!r}")
        self.vars[name] = encoded
        if not self.replaying:
            self.dirty_vars[name] = encoded

    def take_output(self) -> StepOutput:
        """What the workflow task just run produced (its new events, the reducer's
        commands, the variables set, how the run closed), for ``_commit.build_commit``."""
        return StepOutput(
            instance_id=self.instance_id,
            run_id=self.run_id,
            workflow_name=self.workflow_name,
            queue=self.queue,
            new_events=self.reducer.take_new_events(),
            commands=self.reducer.take_commands(),
            vars=self.take_vars(),
            close_status=self.reducer.close_status,
            cancel_reason=self.cancel_reason,
            execution_deadline=self.execution_deadline,
            trace=self.trace,
        )

    def fail_task(
        self, history: list[bytes], time_us: int, inbox: list[bytes], failure: bytes
    ) -> None:
        """Close the run as failed without running its code (the worker option
        ``nondeterminism="fail"``): the reducer, given the run's recorded ``history``, numbers
        the task's ``inbox`` events after it and records ``failure``. Then ``take_output``."""
        self._reducer_call(self.reducer.load_history, history)
        self._reducer_call(self.reducer.fail_task, time_us, inbox, failure)
        self.closed = True

    def take_vars(self) -> Mapping[str, bytes]:
        dirty, self.dirty_vars = self.dirty_vars, {}
        return dirty

    def dispose(self) -> None:
        """Drop the run (cache eviction, failure): its code is never resumed.

        The suspended coroutines are closed, so their ``finally:`` blocks run. They run as
        this run's code (on its closed loop, ``_current`` set, replaying so the logger is
        silent), and every workflow API that would issue a command raises a RuntimeError that
        says why: nothing they do is recorded or reaches the worker's own event loop.
        """
        global _current
        self.closed = True
        self.aborted = True
        self.disposing = True
        self.replaying = True
        self.pending.clear()
        self.timers.clear()
        self.conditions.clear()
        self.dirty_vars.clear()
        # Close the suspended coroutines now rather than leaving them to the garbage
        # collector: finalizers that run Python code at arbitrary points (inside another
        # library's C code) are a source of heisenbugs, and nobody wants "Task was destroyed
        # but it is pending" for a run that was merely evicted.
        self.loop.set_exception_handler(_ignore_loop_errors)
        self.loop.close()
        previous_loop = asyncio.events._get_running_loop()
        previous_run = _current
        asyncio.events._set_running_loop(self.loop)
        _current = self
        try:
            for task in list(self.loop.tasks):
                if task.done():
                    continue
                task._log_destroy_pending = False  # type: ignore[attr-defined]
                coro = task.get_coro()
                if coro is not None and hasattr(coro, "close"):
                    with contextlib.suppress(BaseException):
                        coro.close()
        finally:
            _current = previous_run
            asyncio.events._set_running_loop(previous_loop)
        self.dirty_vars.clear()
        self.main = None


def _ignore_loop_errors(loop: object, context: dict[str, Any]) -> None:
    """Exception handler of a disposed run: nothing it reports is actionable."""


def _limit_failure(history: list[bytes]) -> tuple[int, bytes] | None:
    """When ``history`` ends with the failure of the history size limit: the number of its
    batch (1-based) and the failure payload; else None."""
    if not history or HISTORY_TOO_LONG.encode() not in history[-1]:
        return None
    failure = _events.workflow_failure(history[-1])
    if failure is None or failure.get("type") != HISTORY_TOO_LONG:
        return None
    # The failure closes the last workflow task; the core counts them.
    return _core.view_history(history).batches, orjson.dumps(failure)
