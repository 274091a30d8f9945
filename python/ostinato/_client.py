"""The client: start workflows, signal, cancel, terminate, inspect and await them."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, TypeVar, overload

import orjson

from . import _core, _eager_start, _events, _queues, _retention, _schedules
from ._backends._contract import Backend
from ._backends._hook_store import HookFailureRecord, HookStore
from ._backends._schedule_store import ScheduleStore
from ._backends._tokens import decode_cursor
from ._backends._types import ActivityState, NewRun, RunInfo, RunStatus
from ._backends._validate import ID_CONFLICTS
from ._checks import check_priority, check_tags, check_text
from ._definition import workflow_definition, workflow_name
from ._errors import (
    HistoryCorruptError,
    PayloadError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowTerminatedError,
    WorkflowTimedOutError,
)
from ._failure import decode_failure, failure_message
from ._payloads import PayloadConverter, default_converter, prepare_call
from ._retry import Duration, to_seconds
from ._schedules import ScheduleDescription, ScheduleHandle
from ._tracing import build_tracing, start_span

__all__ = ["Client", "WorkflowDescription", "WorkflowHandle"]

T = TypeVar("T")

# The largest page list_workflows returns; the largest start delay or execution timeout
# (a hundred years: later instants are not datetimes every backend and tool can show).
MAX_LIST_LIMIT = 10_000
MAX_DURATION = 100 * 365.25 * 86400
# How long after its timeout result() gives up on a backend that does not answer.
_RESULT_GRACE = 1.0


def _limit(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"limit must be an int, not {type(value).__name__} ({value!r:.80})")
    if not 1 <= value <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}, not {value}")
    return value


def _bounded(value: Duration | None, what: str) -> float | None:
    seconds = to_seconds(value, what)
    if seconds is not None and not seconds <= MAX_DURATION:
        raise ValueError(f"{what} must be at most 100 years ({MAX_DURATION:g}s), not {value!r}")
    return seconds


def _timeout(value: Duration | None) -> float | None:
    """A wait's timeout: any non-negative duration; inf means no timeout."""
    seconds = to_seconds(value, "timeout")
    return None if seconds == float("inf") else seconds


def _status(value: object) -> RunStatus | None:
    if value is None or isinstance(value, RunStatus):
        return value
    check_text(value, "status")
    try:
        return RunStatus(value)
    except ValueError:
        known = ", ".join([repr(s.value) for s in RunStatus] + ["'paused'", "'blocked'"])
        raise ValueError(f"status must be one of {known}, not {value!r:.80}") from None


def _instant(value: object, what: str) -> float | None:
    """A filter's instant as epoch seconds; naive datetimes are refused (which zone?)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__} ({value!r:.80})")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} must be timezone-aware (e.g. datetime.now(timezone.utc)), not {value!r}"
        )
    return value.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass(frozen=True)
class PendingActivity:
    """An activity the workflow waits for. ``state`` is "scheduled" (no attempt started yet),
    "running", "retrying" (an attempt failed; the next starts at ``next_attempt_at``) or
    "finished" (its outcome is in, waiting for the workflow's next step to see it)."""

    activity_id: int
    name: str
    state: str = "scheduled"
    # Attempts started so far.
    attempt: int = 0
    next_attempt_at: datetime | None = None
    # "Type: message" of the last failed attempt, while it is being retried.
    last_failure: str | None = None
    # The last heartbeat's details (JSON value), if any.
    heartbeat_details: Any = None
    cancel_requested: bool = False


@dataclass(frozen=True)
class PendingTimer:
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True)
class WorkflowDescription:
    """What ``handle.describe()`` reports about the run."""

    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    status: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    history_length: int
    blocked_reason: str | None
    failure: str | None
    parent_instance_id: str | None
    next_run_id: str | None
    pending_activities: list[PendingActivity] = field(default_factory=list)
    pending_timers: list[PendingTimer] = field(default_factory=list)
    pending_children: list[str] = field(default_factory=list)
    # The run's tags (``start_workflow(tags=...)``).
    tags: dict[str, str] = field(default_factory=dict)
    # The run's priority (``start_workflow(priority=...)``; 0 by default).
    priority: int = 0
    # While status is "paused": since when and why (``handle.pause(reason)``).
    paused_at: datetime | None = None
    pause_reason: str | None = None
    # The run's payloads were scrubbed by handle.redact() (see docs/retention.md).
    redacted: bool = False

    @property
    def is_running(self) -> bool:
        """Open: running, paused or blocked (not closed)."""
        return self.status in (RunStatus.RUNNING.value, "paused")

    @property
    def is_paused(self) -> bool:
        return self.status == "paused"

    @property
    def is_blocked(self) -> bool:
        return self.blocked_reason is not None


class WorkflowHandle(Generic[T]):
    """A handle on one workflow instance (its latest run, or a given run)."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        run_id: str | None = None,
        result_decoder: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.client = client
        self.id = instance_id
        self.run_id = run_id
        self._decode = result_decoder
        # The run that start_workflow created: result() waits for it (and the runs it
        # continues as) without first reading which run is the latest.
        self._started_run_id: str | None = None

    def __repr__(self) -> str:
        return f"WorkflowHandle(id={self.id!r}, run_id={self.run_id!r})"

    async def result(self, timeout: Duration | None = None) -> T:
        """Wait for the workflow's result, following continue-as-new to the final run.

        Raises ``WorkflowFailedError`` (with the cause) if it failed, its subclasses
        ``WorkflowCancelledError`` / ``WorkflowTerminatedError`` / ``WorkflowTimedOutError``,
        and ``TimeoutError`` if ``timeout`` seconds pass first.
        """
        seconds = _timeout(timeout)
        if seconds is None:
            return await self._result(None)
        # The backend's own waits (a database that does not answer) count against the
        # timeout too: give up a moment after it whatever the backend is doing.
        self._last_error: BaseException | None = None
        try:
            return await asyncio.wait_for(self._result(seconds), seconds + _RESULT_GRACE)
        except asyncio.TimeoutError as exc:
            if str(exc):  # the run's own "did not finish" (the builtin one on 3.11+)
                raise
            raise self._timed_out(seconds) from None

    def _timed_out(self, seconds: float) -> TimeoutError:
        error = self._last_error
        why = f"{type(error).__name__}: {error}" if error else "it did not respond in time"
        return TimeoutError(
            f"workflow {self.id!r}: no answer within {seconds:g}s: the backend could not "
            f"be read ({why})"
        )

    async def _result(self, seconds: float | None) -> T:
        backend = self.client.backend
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        run_id = self.run_id or self._started_run_id
        while True:
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            try:
                await backend.open()
                if run_id is None:
                    run_id = (await backend.describe(self.id)).run_id
                info = await backend.wait_closed(self.id, run_id, remaining)
            except Exception as exc:
                # With a timeout, an outage is ridden out until the deadline.
                if seconds is None or not backend.is_transient(exc):
                    raise
                self._last_error = exc
                if remaining is not None and remaining <= 0:
                    raise self._timed_out(seconds) from exc
                await asyncio.sleep(min(0.5, remaining or 0.0))
                continue
            if info.status is RunStatus.RUNNING:
                assert seconds is not None
                blocked = f"; blocked: {info.blocked_reason}" if info.blocked_reason else ""
                raise TimeoutError(
                    f"workflow {self.id!r} did not finish within {seconds:g}s "
                    f"(still running{blocked})"
                )
            if info.status is RunStatus.CONTINUED_AS_NEW and info.next_run_id:
                run_id = info.next_run_id
                continue
            return self._outcome(info)  # type: ignore[no-any-return]

    def _outcome(self, info: RunInfo) -> Any:
        if info.status is RunStatus.COMPLETED:
            payload = info.result or b"null"
            if self._decode is not None:
                return self._decode(payload)
            try:
                return orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise PayloadError(
                    f"the stored result of workflow {info.instance_id!r} is not valid JSON "
                    f"({exc}): the store was tampered with or damaged"
                ) from None
        cause = decode_failure(info.result) if info.result else None
        message = failure_message(info.result) if info.result else info.status.value
        error_type: type[WorkflowFailedError] = {
            RunStatus.CANCELED: WorkflowCancelledError,
            RunStatus.TERMINATED: WorkflowTerminatedError,
            RunStatus.TIMED_OUT: WorkflowTimedOutError,
        }.get(info.status, WorkflowFailedError)
        raise error_type(
            f"workflow {info.workflow_name!r} ({info.instance_id}) {info.status.value}: {message}",
            instance_id=info.instance_id,
            run_id=info.run_id,
            cause=cause,
        )

    async def signal(self, name: str, value: Any = None) -> None:
        """Send a signal; ``WorkflowNotFoundError`` / ``WorkflowNotRunningError``."""
        check_text(name, "signal name")
        payload = self.client.converter.encode(value, what=f"value of signal {name!r}")
        await self.client.backend.open()
        await self.client.backend.signal(self.id, _events.signal_received(name, payload))

    async def cancel(self, reason: str = "cancelled by client") -> None:
        """Ask the workflow to cancel: ``asyncio.CancelledError`` reaches its current await.
        A paused run is resumed so that the cancellation takes effect."""
        check_text(reason, "reason", empty=True)
        await self.client.backend.open()
        await self.client.backend.request_cancel(self.id, _events.cancel_requested(reason))
        if (await self.client.backend.describe(self.id)).paused_at is not None:
            await self.client.backend.resume(self.id)

    async def pause(self, reason: str | None = None) -> bool:
        """Pause the run: no new workflow task and no new activity attempt is started until
        ``resume()`` (those under way finish and are recorded); timers that fire and signals
        that arrive wait and are delivered on resume. Returns False when it was paused
        already (the first reason stays). ``WorkflowNotRunningError`` for a closed run."""
        if reason is not None:
            check_text(reason, "reason", empty=True)
        await self.client.backend.open()
        return await self.client.backend.pause(self.id, reason)

    async def terminate(self, reason: str = "terminated by client") -> None:
        """End the run at once, without running any more workflow code."""
        check_text(reason, "reason", empty=True)
        await self.client.backend.open()
        await self.client.backend.terminate(self.id, reason)
        if "@" in self.id and isinstance(self.client.backend, ScheduleStore):
            # A schedule's buffered fire may wait for this run (see _schedules._driver).
            await _schedules.ScheduleDriver(self.client).run_closed(self.id)

    async def resume(self) -> bool:
        """Resume a paused run, and retry the workflow task of a run blocked on it
        (nondeterminism, a crash of workflow code) now instead of after its back-off: call
        it after deploying the fix. Returns whether the run was paused or blocked; for a
        healthy open run it does nothing and returns False. ``WorkflowNotFoundError`` /
        ``WorkflowNotRunningError`` (closed)."""
        await self.client.backend.open()
        return await self.client.backend.resume(self.id)

    async def describe(self) -> WorkflowDescription:
        backend = self.client.backend
        await backend.open()
        info = await backend.describe(self.id, self.run_id)
        try:
            history = await backend.history(self.id, info.run_id)
        except HistoryCorruptError as exc:
            # A tampered store: describe what the run row says, and why it is stuck.
            history = []
            if info.blocked_reason is None and info.status is RunStatus.RUNNING:
                info = dataclasses.replace(info, blocked_reason=str(exc))
        states = []
        if info.status is RunStatus.RUNNING:
            states = await backend.activity_states(self.id, info.run_id)
        return _describe(info, history, states)

    async def history(self) -> list[dict[str, Any]]:
        """The run's history as JSON-able dicts (save it for ``ostinato.testing.replay``).

        ``HistoryCorruptError`` when a stored event is not a JSON object (a tampered store).
        """
        await self.client.backend.open()
        events = []
        for seq, raw in enumerate(await self.client.backend.history(self.id, self.run_id), 1):
            try:
                events.append(_events.decode(raw))
            except ValueError as exc:
                raise HistoryCorruptError(
                    f"history of workflow {self.id!r} is corrupt at event #{seq}: {exc}",
                    seq=seq,
                    instance_id=self.id,
                ) from None
        return events

    async def get_vars(self) -> dict[str, Any]:
        return await self.client.get_vars(self.id)

    async def redact(self) -> None:
        """Scrub every payload of this closed run, for PII deletion: inputs, results,
        failures, signal payloads, side effect values, variables, activity inputs, results
        and heartbeat details, child inputs and results. The event skeleton stays (kinds,
        seqs, ids, names, times), each event marked ``"redacted": true``; ``describe()``
        says ``redacted``. A redacted history cannot be replayed.

        ``WorkflowAlreadyStartedError`` for a running run (nothing is changed);
        ``WorkflowNotFoundError``. See docs/retention.md."""
        backend = self.client.backend
        store = _retention.retention_of(backend)
        await backend.open()
        await _retention.redact_closed_run(backend, store, self.id, self.run_id)


def _json_or_text(payload: bytes | None) -> Any:
    """A stored JSON payload for display: decoded, or (unreadable) described as such."""
    if not payload:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return f"<unreadable payload: {bytes(payload[:80])!r}>"


def _child_instance_id(options: bytes) -> str:
    """The instance a child's options name (``workflow.start_child`` writes them)."""
    try:
        data = orjson.loads(options)
    except orjson.JSONDecodeError:
        return ""
    return str(data.get("instance_id", "")) if isinstance(data, dict) else ""


def _pending_activity(activity_id: int, name: str, state: ActivityState | None) -> PendingActivity:
    if state is None:
        return PendingActivity(activity_id, name, state="finished")
    if state.running:
        status = "running"
    elif state.attempt == 0:
        status = "scheduled"
    else:
        status = "retrying"
    return PendingActivity(
        activity_id,
        name,
        state=status,
        attempt=state.attempt,
        next_attempt_at=_dt(state.visible_at) if status == "retrying" else None,
        last_failure=failure_message(state.last_failure) if state.last_failure else None,
        heartbeat_details=_json_or_text(state.heartbeat_details),
        cancel_requested=state.cancel_requested,
    )


def _describe(
    info: RunInfo, history: list[bytes], states: Sequence[ActivityState] = ()
) -> WorkflowDescription:
    # The core says what the run waits for; a corrupt event ends what it can tell.
    view = _core.view_history(history)
    activities = dict(view.pending_activities)
    timers = dict(view.pending_timers)
    children = {
        command_id: _child_instance_id(options)
        for command_id, _name, options in view.pending_children
    }
    is_open = info.status is RunStatus.RUNNING
    by_id = {state.activity_id: state for state in states}
    created = _dt(info.created_at)
    updated = _dt(info.updated_at)
    assert created is not None and updated is not None
    return WorkflowDescription(
        instance_id=info.instance_id,
        run_id=info.run_id,
        workflow_name=info.workflow_name,
        queue=info.queue,
        status="paused" if is_open and info.paused_at is not None else info.status.value,
        created_at=created,
        updated_at=updated,
        closed_at=_dt(info.closed_at),
        history_length=info.history_length,
        blocked_reason=info.blocked_reason,
        failure=failure_message(info.result)
        if info.result and info.status not in (RunStatus.COMPLETED, RunStatus.RUNNING)
        else None,
        parent_instance_id=info.parent.instance_id if info.parent else None,
        next_run_id=info.next_run_id,
        pending_activities=[_pending_activity(k, v, by_id.get(k)) for k, v in activities.items()]
        if is_open
        else [],
        pending_timers=[
            PendingTimer(k, datetime.fromtimestamp(v / 1_000_000, tz=timezone.utc))
            for k, v in timers.items()
        ]
        if is_open
        else [],
        pending_children=list(children.values()) if is_open else [],
        tags=dict(info.tags),
        priority=info.priority,
        paused_at=_dt(info.paused_at) if is_open else None,
        pause_reason=info.pause_reason if is_open else None,
        redacted=_events.is_redacted(history),
    )


class Client:
    """Starts and manages workflows in ``backend`` (``tracer_provider``: docs/tracing.md).

    ``eager_start`` (default True): a workflow started while a ``Worker`` of this process
    runs on the same backend object and can take it has its first task leased to that worker
    at the start and run there without a claim (docs/start-options.md, "Eager start")."""

    def __init__(
        self,
        backend: Backend,
        *,
        converter: PayloadConverter | None = None,
        tracer_provider: Any = None,
        eager_start: bool = True,
    ) -> None:
        if not isinstance(eager_start, bool):
            raise TypeError(f"eager_start must be True or False, not {eager_start!r:.80}")
        self.backend = backend
        self.converter = converter or default_converter()
        self.eager_start = eager_start
        self._tracing = build_tracing(tracer_provider)

    @overload
    async def start_workflow(
        self,
        workflow: Callable[..., Coroutine[Any, Any, T]],
        *args: Any,
        id: str | None = ...,
        queue: str | None = ...,
        start_delay: Duration | None = ...,
        execution_timeout: Duration | None = ...,
        id_reuse_policy: str = ...,
        id_conflict: str = ...,
        tags: dict[str, str] | None = ...,
        priority: int = ...,
    ) -> WorkflowHandle[T]: ...
    @overload
    async def start_workflow(
        self,
        workflow: str,
        *args: Any,
        id: str | None = ...,
        queue: str | None = ...,
        start_delay: Duration | None = ...,
        execution_timeout: Duration | None = ...,
        id_reuse_policy: str = ...,
        id_conflict: str = ...,
        tags: dict[str, str] | None = ...,
        priority: int = ...,
    ) -> WorkflowHandle[Any]: ...
    async def start_workflow(
        self,
        workflow: Any,
        *args: Any,
        id: str | None = None,
        queue: str | None = None,
        start_delay: Duration | None = None,
        execution_timeout: Duration | None = None,
        id_reuse_policy: str = "allow",
        id_conflict: str = "fail",
        tags: dict[str, str] | None = None,
        priority: int = 0,
    ) -> WorkflowHandle[Any]:
        """Start a workflow and return its handle.

        Arguments are checked against the workflow's signature and encoded here: a wrong
        count, an unserializable value or a bad option raises before anything is stored.
        While a run with the same ``id`` is still open, ``id_conflict`` decides: "fail"
        (default) raises ``WorkflowAlreadyStartedError``, "use_existing" starts nothing and
        returns a handle on the open run, "terminate_existing" terminates it and starts this
        one. A closed one is replaced by a new run unless ``id_reuse_policy="refuse"``.
        ``tags`` (str to str, see docs/search.md for the limits) label the run for
        ``list_workflows(tags=...)``; a continue-as-new keeps them. ``priority`` (an int
        from 0 to 100) orders the run's workflow tasks among ready work on its queue, higher
        first, aged so that none waits forever (docs/queues.md); a continue-as-new keeps it.
        """
        if id_reuse_policy not in ("allow", "refuse"):
            raise ValueError(
                f"id_reuse_policy must be 'allow' or 'refuse', not {id_reuse_policy!r:.80}"
            )
        if id_conflict not in ID_CONFLICTS:
            raise ValueError(
                f"id_conflict must be one of {', '.join(map(repr, ID_CONFLICTS))}, "
                f"not {id_conflict!r:.80}"
            )
        if id_conflict == "terminate_existing" and id_reuse_policy == "refuse":
            raise ValueError(
                "id_conflict='terminate_existing' needs id_reuse_policy='allow': the new run "
                "reuses the id of the run it terminates"
            )
        if id is not None:
            check_text(id, "id")
        if queue is not None:
            check_text(queue, "queue")
        run_tags = {} if tags is None else check_tags(tags)
        check_priority(priority)
        delay = _bounded(start_delay, "start_delay")
        timeout = _bounded(execution_timeout, "execution_timeout")
        call = prepare_call(
            self.converter,
            workflow,
            args,
            kind="workflow",
            check_name=lambda name: check_text(name, "workflow name"),
        )
        assert call.payload is not None  # encoded: prepare_call was not told otherwise
        instance_id = id if id is not None else uuid.uuid4().hex
        # The run records the StartWorkflow span's context: the whole run nests under it.
        with start_span(self._tracing, call.name, instance_id, queue or "default") as trace:
            run_id = await self._create_run(
                call.name,
                call.payload,
                instance_id=instance_id,
                queue=queue or "default",
                delay=delay,
                timeout=timeout,
                id_reuse_policy=id_reuse_policy,
                id_conflict=id_conflict,
                tags=run_tags,
                priority=priority,
                trace=trace,
            )
        handle: WorkflowHandle[Any] = WorkflowHandle(self, instance_id, None, call.decode)
        if id_conflict != "use_existing":  # else the open run may be another one
            handle._started_run_id = run_id
        return handle

    async def _create_run(
        self,
        name: str,
        payload: bytes,
        *,
        instance_id: str,
        queue: str,
        delay: float | None = None,
        timeout: float | None = None,
        id_reuse_policy: str = "allow",
        id_conflict: str = "fail",
        tags: dict[str, str] | None = None,
        priority: int = 0,
        trace: tuple[str | None, str | None] = (None, None),
    ) -> str:
        """Store a new run of ``name``, its arguments already checked and encoded; its run
        id."""
        run_id = uuid.uuid4().hex
        await self.backend.open()
        now = self.backend.clock()
        start_at = now + delay if delay else now
        deadline = start_at + timeout if timeout else None
        started = _events.workflow_started(
            name,
            payload,
            instance_id=instance_id,
            run_id=run_id,
            queue=queue,
            start_time=start_at,
            execution_deadline=deadline,
            traceparent=trace[0],
            tracestate=trace[1],
        )
        run = NewRun(
            instance_id=instance_id,
            run_id=run_id,
            workflow_name=name,
            queue=queue,
            started_event=started,
            visible_at=start_at if delay else None,
            id_reuse=id_reuse_policy,
            id_conflict=id_conflict,
            execution_deadline=deadline,
            tags=tags or {},
            priority=priority,
        )
        eager = self.eager_start and not delay
        worker = _eager_start.find(self.backend, name, queue) if eager else None
        if worker is not None:
            await _eager_start.start(worker, run)
        else:
            await self.backend.create_run(run)
        return run_id

    def get_handle(
        self, id: str, *, run_id: str | None = None, workflow: Any = None
    ) -> WorkflowHandle[Any]:
        """A handle on an existing workflow (its latest run, or ``run_id``); pass
        ``workflow`` to decode the result with its return annotation."""
        check_text(id, "id")
        if run_id is not None:
            check_text(run_id, "run_id")
        decode = None
        if workflow is not None and not isinstance(workflow, str):
            fn = workflow_definition(workflow).fn
            decode = functools.partial(self.converter.decode_result, fn=fn, what="workflow result")

        return WorkflowHandle(self, id, run_id, decode)

    async def list_workflows(
        self,
        status: str | RunStatus | None = None,
        workflow: Any = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        name: Any = None,
        queue: str | None = None,
        tags: dict[str, str] | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        closed_after: datetime | None = None,
    ) -> tuple[list[WorkflowDescription], str | None]:
        """A page of workflows (latest run of each, newest first) and the next cursor.

        Filters, all optional and combined: ``status`` (a run status, "paused", or
        "blocked": open runs stuck on a failed workflow task); ``name`` (a workflow or its name;
        ``workflow`` is the older spelling); ``queue``; ``tags`` (runs having every one of
        these key/value pairs); ``started_after <= start < started_before`` and
        ``closed_after <= close`` (timezone-aware datetimes). ``limit`` is 1 to 10,000;
        pass the returned cursor, with the same filters, for the next page.
        """
        if workflow is not None and name is not None:
            raise TypeError("pass the workflow as name= or workflow=, not both")
        blocked = paused = None
        run_status: RunStatus | None
        if status == "blocked":
            run_status, blocked = RunStatus.RUNNING, True
        elif status == "paused":
            run_status, paused = RunStatus.RUNNING, True
        else:
            run_status = _status(status)
            if run_status is RunStatus.RUNNING:
                paused = False  # as describe() says: a paused run's status is "paused"
        chosen = name if name is not None else workflow
        workflow_filter = None
        if chosen is not None:
            what = "name" if name is not None else "workflow"
            workflow_filter = check_text(workflow_name(chosen), what)
        if queue is not None:
            check_text(queue, "queue")
        tag_filter = None if tags is None else check_tags(tags)
        after = _instant(started_after, "started_after")
        before = _instant(started_before, "started_before")
        closed = _instant(closed_after, "closed_after")
        _limit(limit)
        if cursor is not None:
            decode_cursor(check_text(cursor, "cursor"))
        await self.backend.open()
        runs, next_cursor = await self.backend.list_runs(
            status=run_status,
            workflow_name=workflow_filter,
            limit=limit,
            cursor=cursor,
            queue=queue,
            tags=tag_filter or None,
            started_after=after,
            started_before=before,
            closed_after=closed,
            blocked=blocked,
            paused=paused,
        )
        return [_describe(info, []) for info in runs], next_cursor

    async def get_vars(self, id: str) -> dict[str, Any]:
        """Runtime variables set with ``workflow.set_var`` (as of the last committed step)."""
        check_text(id, "id")
        await self.backend.open()
        return {k: orjson.loads(v) for k, v in (await self.backend.get_vars(id)).items()}

    # ---- retention (see docs/retention.md) --------------------------------------------------

    async def delete(self, id: str) -> None:
        """Remove a closed workflow: every run, its history, variables, inbox and activity
        rows. ``WorkflowNotFoundError`` for an unknown id; a running one is refused with
        ``WorkflowAlreadyStartedError`` (terminate or cancel it first)."""
        check_text(id, "id")
        await self.backend.open()
        await self.backend.delete(id)

    async def delete_closed(
        self,
        older_than: Duration = timedelta(days=30),
        statuses: Sequence[str | RunStatus] | None = None,
        limit: int | None = None,
    ) -> int:
        """Delete the workflows whose latest run closed more than ``older_than`` ago (with a
        status among ``statuses``, default all closed ones), at most ``limit`` (default no
        limit), in batches of 500 per transaction; returns how many were deleted."""
        seconds = _retention.check_older_than(older_than)
        wanted = _retention.check_statuses(statuses)
        most = _retention.check_limit(limit)
        store = _retention.retention_of(self.backend)
        await self.backend.open()
        closed_before = self.backend.clock() - seconds
        return await _retention.delete_closed(store, closed_before, wanted, most)

    # ---- schedules (see docs/schedules.md) --------------------------------------------------

    async def create_schedule(
        self,
        schedule_id: str,
        workflow: Any,
        *args: Any,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        catchup_window: timedelta | float = timedelta(minutes=1),
        jitter: timedelta | float | None = None,
        paused: bool = False,
        queue: str | None = None,
    ) -> ScheduleHandle:
        """Start ``workflow(*args)`` on a schedule: ``cron`` (five fields, in ``timezone``)
        or ``every`` (aligned on the Unix epoch), exactly one. Workers of ``queue`` fire it;
        each fire's run has the id ``"<schedule_id>@<fire time, UTC>"``, so a fire never
        starts twice. ``overlap`` says what a fire does while the previous run is open:
        "skip", "buffer_one", "allow_all", "cancel_other" or "terminate_other". Fires no
        worker got to within ``catchup_window`` are skipped (and counted); ``jitter``
        delays each fire by a fixed pseudo-random amount below it. Everything is checked
        here: a bad cron, time zone or argument raises and stores nothing."""
        return await _schedules.create_schedule(
            self,
            schedule_id,
            workflow,
            args,
            cron=cron,
            every=every,
            timezone=timezone,
            overlap=overlap,
            catchup_window=catchup_window,
            jitter=jitter,
            paused=paused,
            queue=queue,
        )

    async def get_schedule(self, schedule_id: str) -> ScheduleHandle:
        """A handle on a schedule; ``ScheduleNotFoundError`` if there is none."""
        return await _schedules.get_schedule(self, schedule_id)

    async def list_schedules(self) -> list[ScheduleDescription]:
        """Every schedule, by id (without the status of their recent runs)."""
        return await _schedules.list_schedules(self)

    async def list_hook_failures(self, limit: int = 100) -> list[HookFailureRecord]:
        """Hook deliveries given up after their last attempt (docs/hooks.md), newest first."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        backend = self.backend
        if not isinstance(backend, HookStore):
            raise TypeError(f"{backend!r} does not store hooks")
        await backend.open()
        return await backend.list_hook_failures(limit)

    # ---- queue limits (see docs/queues.md) ----------------------------------------------------

    async def set_queue_limits(
        self,
        queue: str,
        max_concurrent: int | None = None,
        rate_limit: tuple[int, Duration] | None = None,
        max_concurrent_per_key: int | None = None,
    ) -> None:
        """Limit the activity attempts of ``queue``, across every worker and process:
        at most ``max_concurrent`` in flight at once, and at most ``count`` started in any
        ``period`` (``rate_limit=(count, period)``, a sliding window). Replaces the queue's
        limits; with no limit given, removes them. Bad input raises before anything is
        stored."""
        name, limits = _queues.limits_from(
            queue, max_concurrent, rate_limit, max_concurrent_per_key
        )
        await _queues.limits_store(self.backend).set_queue_limits(name, limits)

    async def get_queue_limits(self, queue: str) -> _queues.QueueLimits | None:
        """The limits stored for ``queue``; None when it has none."""
        name, _ = _queues.limits_from(queue, None, None, None)
        return await _queues.limits_store(self.backend).get_queue_limits(name)

    async def clear_queue_limits(self, queue: str) -> None:
        """Remove the limits of ``queue`` (its work is claimed without limits again)."""
        name, _ = _queues.limits_from(queue, None, None, None)
        await _queues.limits_store(self.backend).set_queue_limits(name, None)
