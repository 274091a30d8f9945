"""The API available inside workflow code.

Everything here is deterministic: on replay each call returns what it returned the first
time. Use these instead of the clock, ``random``, ``uuid`` and I/O (do I/O in activities).
Plain ``asyncio`` works too: ``asyncio.gather``, ``asyncio.wait``, ``asyncio.wait_for``,
``asyncio.Event``, ``asyncio.create_task``; ``asyncio.sleep`` is a durable timer.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from datetime import datetime, timezone
from typing import Any, Generic, NoReturn, TypeVar, overload

import orjson

from ._checks import check_priority, check_tags, check_text
from ._definition import (
    workflow_defn,
    workflow_name,
)
from ._payloads import prepare_call
from ._retry import Duration, RetryPolicy, to_seconds
from ._run import (
    ContinueAsNew,
    SignalChannel,
    WorkflowInfo,
    WorkflowRun,
    current_run,
)

__all__ = [
    "ActivityHandle",
    "ChildHandle",
    "SignalChannel",
    "WorkflowInfo",
    "cancel_external",
    "cancellation_reason",
    "continue_as_new",
    "defn",
    "deprecate_patch",
    "disconnected",
    "execute_activity",
    "execute_child",
    "info",
    "logger",
    "now",
    "patched",
    "random",
    "set_var",
    "side_effect",
    "signal_channel",
    "signal_external",
    "sleep",
    "start_activity",
    "start_child",
    "uuid4",
    "wait_condition",
    "wait_until",
]

T = TypeVar("T")

defn = workflow_defn


class _FutureAwaitable(Generic[T]):
    """An awaitable over a future. Awaiting it any number of times gives the same outcome.
    Everything in asyncio that takes an awaitable takes it (``gather``, ``wait_for``,
    ``shield``, ``ensure_future``), the workflow loop's ``create_task`` does too (so
    ``asyncio.create_task(handle)`` works), and ``asyncio.wait`` does through the few future
    methods below. It hashes like its future: by creation order, the same on every replay."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[T]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, T]:
        return self._future.__await__()

    def __hash__(self) -> int:
        return hash(self._future)

    def done(self) -> bool:
        return self._future.done()

    def add_done_callback(self, fn: Callable[[asyncio.Future[T]], object], **kw: Any) -> None:
        self._future.add_done_callback(fn, **kw)

    def remove_done_callback(self, fn: Callable[[asyncio.Future[T]], object]) -> int:
        return self._future.remove_done_callback(fn)


class ActivityHandle(_FutureAwaitable[T]):
    """A scheduled activity: await it for the result, or ``cancel()`` it (also usable with
    ``asyncio.create_task`` / ``ensure_future``)."""

    __slots__ = ("_run", "activity_id", "name")

    def __init__(self, run: WorkflowRun, activity_id: int, name: str, future: asyncio.Future[T]):
        super().__init__(future)
        self._run = run
        self.activity_id = activity_id
        self.name = name

    def cancel(self) -> None:
        """Cancel the activity: awaiting it raises ``asyncio.CancelledError``; a running
        attempt learns it through ``activity.heartbeat()`` / ``activity.is_cancelled()``."""
        self._future.cancel()


def _activity_options(
    run: WorkflowRun,
    retry: RetryPolicy | None,
    start_to_close_timeout: Duration | None,
    schedule_to_close_timeout: Duration | None,
    heartbeat_timeout: Duration | None,
    queue: str | None,
) -> bytes:
    options: dict[str, Any] = {"queue": queue or run.queue}
    if retry is not None:
        options["retry"] = retry.to_json()
    for key, value in (
        ("start_to_close", start_to_close_timeout),
        ("schedule_to_close", schedule_to_close_timeout),
        ("heartbeat", heartbeat_timeout),
    ):
        seconds = to_seconds(value, f"{key}_timeout")
        if seconds is not None:
            options[key] = seconds
    if run.traced and run.trace is not None:
        # The attempt's RunActivity span goes under the run's span (see _tracing); without
        # it the activity worker derives the same parent from the run id.
        options["traceparent"] = run.trace.child_traceparent
        if run.trace.tracestate:
            options["tracestate"] = run.trace.tracestate
    return orjson.dumps(options)


@overload
def start_activity(
    activity: Callable[..., Awaitable[T]],
    *args: Any,
    retry: RetryPolicy | None = ...,
    start_to_close_timeout: Duration | None = ...,
    schedule_to_close_timeout: Duration | None = ...,
    heartbeat_timeout: Duration | None = ...,
    queue: str | None = ...,
    concurrency_key: str | None = ...,
    priority: int = ...,
) -> ActivityHandle[T]: ...
@overload
def start_activity(
    activity: Callable[..., T],
    *args: Any,
    retry: RetryPolicy | None = ...,
    start_to_close_timeout: Duration | None = ...,
    schedule_to_close_timeout: Duration | None = ...,
    heartbeat_timeout: Duration | None = ...,
    queue: str | None = ...,
    concurrency_key: str | None = ...,
    priority: int = ...,
) -> ActivityHandle[T]: ...
@overload
def start_activity(
    activity: str,
    *args: Any,
    retry: RetryPolicy | None = ...,
    start_to_close_timeout: Duration | None = ...,
    schedule_to_close_timeout: Duration | None = ...,
    heartbeat_timeout: Duration | None = ...,
    queue: str | None = ...,
    concurrency_key: str | None = ...,
    priority: int = ...,
) -> ActivityHandle[Any]: ...
def start_activity(
    activity: Any,
    *args: Any,
    retry: RetryPolicy | None = None,
    start_to_close_timeout: Duration | None = None,
    schedule_to_close_timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    queue: str | None = None,
    concurrency_key: str | None = None,
    priority: int = 0,
) -> ActivityHandle[Any]:
    """Schedule an activity now and return its handle (await it for the result).

    ``activity`` is a function decorated with ``@activity.defn`` (its signature is checked
    here, before anything is recorded) or an activity name. Retries with back-off are run by
    the engine; the handle raises ``ActivityError`` once the activity failed for good.
    ``priority`` (an int from 0 to 100, default 0): higher is claimed first among ready
    activities on its queue, aged so that lower priorities are never starved
    (docs/queues.md).
    """
    run = current_run("start_activity")
    if queue is not None:
        check_text(queue, "start_activity() queue", empty=True)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"start_activity() retry must be a RetryPolicy, got {retry!r}")
    if concurrency_key is not None:
        check_text(concurrency_key, "start_activity() concurrency_key")
    check_priority(priority, "start_activity() priority")
    # A replayed command is kept as recorded and its payloads are not read: skip encoding them.
    call = prepare_call(
        run.converter,
        activity,
        args,
        kind="activity",
        check_name=_check_activity_name if isinstance(activity, str) else None,
        encode=not run.replaying,
    )
    name = call.name
    if call.payload is None:
        payload = options = b"null"
    else:
        payload = call.payload
        options = _activity_options(
            run, retry, start_to_close_timeout, schedule_to_close_timeout, heartbeat_timeout, queue
        )
        if concurrency_key is not None:
            # Read by the backend's claim on a queue with max_concurrent_per_key
            # (docs/queues.md); absent otherwise, so other histories are unchanged.
            options = orjson.dumps({**orjson.loads(options), "concurrency_key": concurrency_key})
        if priority:
            # The history's activity_scheduled keeps it (absent means 0, so older histories
            # and unprioritised ones are unchanged); the commit gives it to the backend.
            options = orjson.dumps({**orjson.loads(options), "priority": priority})
    activity_id, future = run.schedule_activity(name, payload, options, call.decode)
    return ActivityHandle(run, activity_id, name, future)


def _check_activity_name(name: str) -> object:
    return check_text(name, "start_activity() activity name", empty=True, allow_nul=True)


execute_activity = start_activity
"""Schedule an activity and return an awaitable of its result (same as ``start_activity``)."""


class ChildHandle(_FutureAwaitable[T]):
    """A started child workflow: await it for its result, ``signal()`` or ``cancel()`` it
    (also usable with ``asyncio.create_task`` / ``ensure_future``)."""

    __slots__ = ("_run", "instance_id", "name")

    def __init__(self, run: WorkflowRun, instance_id: str, name: str, future: asyncio.Future[T]):
        super().__init__(future)
        self._run = run
        self.instance_id = instance_id
        self.name = name

    async def signal(self, name: str, value: Any = None) -> None:
        await signal_external(self.instance_id, name, value)

    def cancel(self) -> None:
        """Request cancellation of the child; awaiting the handle raises CancelledError."""
        self._future.cancel()


@overload
def start_child(
    workflow: Callable[..., Awaitable[T]],
    *args: Any,
    id: str | None = ...,
    queue: str | None = ...,
    execution_timeout: Duration | None = ...,
    tags: dict[str, str] | None = ...,
    priority: int = ...,
) -> ChildHandle[T]: ...
@overload
def start_child(
    workflow: str,
    *args: Any,
    id: str | None = ...,
    queue: str | None = ...,
    execution_timeout: Duration | None = ...,
    tags: dict[str, str] | None = ...,
    priority: int = ...,
) -> ChildHandle[Any]: ...
def start_child(
    workflow: Any,
    *args: Any,
    id: str | None = None,
    queue: str | None = None,
    execution_timeout: Duration | None = None,
    tags: dict[str, str] | None = None,
    priority: int = 0,
) -> ChildHandle[Any]:
    """Start a child workflow. Its id defaults to one derived from the parent's run, so it is
    the same on replay. When the parent closes, running children are cancelled. ``tags``
    label the child run as ``start_workflow(tags=...)`` does, and ``priority`` orders its
    workflow tasks as ``start_workflow(priority=...)`` does (neither is inherited)."""
    run = current_run("start_child")
    if id is not None:
        check_text(id, "start_child() id", empty=True)
    if queue is not None:
        check_text(queue, "start_child() queue", empty=True)
    child_tags = None if tags is None else check_tags(tags, "start_child() tags")
    check_priority(priority, "start_child() priority")
    # Encoded after the default id is taken, so a refused argument still uses up its number.
    call = prepare_call(
        run.converter,
        workflow,
        args,
        kind="child workflow",
        check_name=lambda name: check_text(name, "start_child() workflow name", empty=True),
        encode=False,
    )
    name = call.name
    run.children_started += 1
    instance_id = id or f"{run.instance_id}/{run.run_id[:8]}-{run.children_started}"
    payload = call.encode(run.converter)
    options: dict[str, Any] = {"instance_id": instance_id, "queue": queue or run.queue}
    timeout = to_seconds(execution_timeout, "execution_timeout")
    if timeout is not None:
        options["execution_timeout"] = timeout
    if child_tags:
        options["tags"] = child_tags
    if priority:
        options["priority"] = priority
    _, future = run.start_child(name, payload, options, call.decode)
    return ChildHandle(run, instance_id, name, future)


execute_child = start_child
"""Start a child workflow and return an awaitable of its result (same as ``start_child``)."""


async def signal_external(instance_id: str, name: str, value: Any = None) -> None:
    """Send a signal to another workflow. Raises ``WorkflowNotFoundError`` when no such
    workflow exists and ``WorkflowNotRunningError`` when it has finished."""
    run = current_run("signal_external")
    check_text(instance_id, "signal_external() instance_id", empty=True)
    check_text(name, "signal_external() name", empty=True, allow_nul=True)
    payload = run.converter.encode(value, what=f"value of signal {name!r}")
    await run.signal_external(instance_id, name, payload)


async def cancel_external(instance_id: str, reason: str | None = None) -> None:
    """Ask another workflow (not necessarily a child) to cancel: ``asyncio.CancelledError``
    reaches its current await and ``workflow.cancellation_reason()`` there returns ``reason``
    (by default one naming this workflow). Recorded in history, so it happens once and
    replays. Returns once the request is delivered; raises ``WorkflowNotFoundError`` when no
    such workflow exists and ``WorkflowNotRunningError`` when it has finished."""
    run = current_run("cancel_external")
    if not isinstance(instance_id, str) or not instance_id:
        raise TypeError(
            f"cancel_external(instance_id=...) needs a non-empty str, got {instance_id!r}"
        )
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"cancel_external(reason=...) needs a str or None, got {reason!r}")
    if reason is None:
        reason = f"workflow {run.instance_id} cancelled it"
    await run.cancel_external(instance_id, reason)


def cancellation_reason() -> str | None:
    """The reason of the cancel request this run received (``handle.cancel(reason)``, the
    parent's cascade, or another workflow's ``cancel_external``); ``None`` while no cancel
    was requested. The same on replay."""
    return current_run("cancellation_reason").cancel_reason


async def sleep(duration: Duration) -> None:
    """Sleep durably: a timer recorded in history that survives restarts."""
    current_run("sleep")
    seconds = to_seconds(duration, "workflow.sleep() duration") or 0.0
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    await asyncio.sleep(seconds)


async def wait_until(when: datetime) -> None:
    """Sleep durably until ``when`` (a timezone-aware datetime)."""
    if when.tzinfo is None:
        raise ValueError("workflow.wait_until() needs a timezone-aware datetime")
    delay = (when - now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


def now() -> datetime:
    """The workflow's current time (UTC): the time of the workflow task being run."""
    return datetime.fromtimestamp(current_run("now").now_us / 1_000_000, tz=timezone.utc)


def random() -> _random.Random:
    """A ``random.Random`` seeded from the run id: the same numbers on every replay."""
    return current_run("random").random


def uuid4() -> _uuid.UUID:
    """A UUID from the run's seeded random generator (stable on replay)."""
    return _uuid.UUID(int=current_run("uuid4").random.getrandbits(128), version=4)


def info() -> WorkflowInfo:
    run = current_run("info")
    assert run.info is not None
    return WorkflowInfo(
        instance_id=run.info.instance_id,
        run_id=run.info.run_id,
        workflow_name=run.info.workflow_name,
        queue=run.info.queue,
        start_time=run.info.start_time,
        attempt=run.info.attempt,
        history_length=run.reducer.history_length_here,
        parent_instance_id=run.info.parent_instance_id,
        continued_from_run_id=run.info.continued_from_run_id,
    )


async def side_effect(fn: Callable[[], T]) -> T:
    """Run ``fn`` once and record its (JSON) value; replays return the recorded value."""
    return current_run("side_effect").side_effect(fn)  # type: ignore[no-any-return]


def signal_channel(name: str, type: Any = None) -> SignalChannel:
    """The channel of signals called ``name``; ``type`` decodes values (e.g. a dataclass)."""
    run = current_run("signal_channel")
    return run.signal_channel(
        check_text(name, "signal_channel() name", empty=True, allow_nul=True), type
    )


async def wait_condition(predicate: Callable[[], bool], timeout: Duration | None = None) -> None:
    """Wait until ``predicate()`` is true; it is re-checked after every step of the workflow.
    Raises ``asyncio.TimeoutError`` after ``timeout`` (a durable timer)."""
    future = current_run("wait_condition").wait_condition(predicate)
    seconds = to_seconds(timeout, "timeout")
    if seconds is None:
        await future
    else:
        await asyncio.wait_for(future, seconds)


def continue_as_new(*args: Any, workflow: Any = None) -> NoReturn:
    """End this run and start a fresh one under the same id with ``args`` and an empty
    history (for long-lived loops whose history would grow without end)."""
    current_run("continue_as_new")
    raise ContinueAsNew(args, workflow_name(workflow) if workflow is not None else None)


def patched(change_id: str) -> bool:
    """True when this run should take the new code path of change ``change_id``.

    Runs started before the change was deployed replay the old path (False); new runs record a
    marker and take the new path (True)."""
    return current_run("patched").patched(change_id, False)


def deprecate_patch(change_id: str) -> None:
    """Declare that every run still open has passed ``change_id``: the marker is accepted in
    history but no longer needed. Remove the call once those runs have closed."""
    current_run("deprecate_patch").patched(change_id, True)


def set_var(name: str, value: Any) -> None:
    """Set a runtime variable, readable from outside with ``client.get_vars(id)`` once the
    current step is committed."""
    current_run("set_var").set_var(
        check_text(name, "set_var() name", empty=True, allow_nul=True), value
    )


def disconnected(awaitable: Awaitable[T]) -> asyncio.Future[T]:
    """Run ``awaitable`` to completion even if the workflow is cancelled (like
    ``asyncio.shield``): use it for cleanup and compensation after a cancel."""
    current_run("disconnected")
    return asyncio.shield(awaitable)


class _ReplaySafeLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Logs only when the workflow is not replaying, with the run's ids attached."""

    def isEnabledFor(self, level: int) -> bool:
        from . import _run

        run = _run._current
        if run is not None and run.replaying:
            return False
        return bool(self.logger.isEnabledFor(level))

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        from . import _run

        run = _run._current
        if run is not None:
            extra = dict(kwargs.get("extra") or {})
            extra.setdefault("workflow_instance_id", run.instance_id)
            extra.setdefault("workflow_name", run.workflow_name)
            kwargs["extra"] = extra
            msg = f"[{run.workflow_name} {run.instance_id}] {msg}"
        return msg, kwargs


logger = _ReplaySafeLogger(logging.getLogger("ostinato.workflow"), {})
"""A logger that is silent while the workflow replays history."""
