"""``WorkflowEnvironment``: run workflows in-process on a virtual clock that skips ahead."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import Callable, Generator, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from .._backends._contract import Backend, TimeSkipping
from .._client import Client, WorkflowHandle
from .._connect import connect
from .._retry import Duration, to_seconds
from .._worker import Worker
from ._clock import VirtualClock, to_timestamp
from ._observed import ObservedBackend

__all__ = ["ScheduledCall", "WorkflowEnvironment"]

log = logging.getLogger("ostinato.testing")

T = TypeVar("T")

# Idle means: the worker runs no task, no backend call is in flight, and every poller of the
# worker has waited for work since the clock last moved, for this many samples in a row.
_QUIET_SAMPLES = 3
_SAMPLE_GAP = 0.0005  # seconds of real time between samples (after the ready callbacks ran)


class ScheduledCall:
    """A call ``env.at(...)`` makes when the virtual clock reaches ``when``.

    Await it for its result (or its exception). A call that failed and was never looked at
    makes the environment raise when it exits.
    """

    def __init__(self, at: float, seq: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.at = at
        self.seq = seq
        self.fn = fn
        self.args = args
        self._future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._observed = False

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        state = "done" if self.done else "pending"
        return f"<ScheduledCall {name}{self.args!r} at {self.when.isoformat()} ({state})>"

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.at, tz=timezone.utc)

    @property
    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> bool:
        """Do not make the call; False if it already ran."""
        self._observed = True
        return self._future.cancel()

    def result(self) -> Any:
        """The call's result; raises its exception, or ``asyncio.InvalidStateError`` if it has
        not run yet."""
        self._observed = True
        return self._future.result()

    def exception(self) -> BaseException | None:
        self._observed = True
        return self._future.exception()

    def __await__(self) -> Generator[Any, None, Any]:
        self._observed = True
        return self._future.__await__()

    async def _run(self) -> None:
        if self._future.done():
            return
        try:
            value = self.fn(*self.args)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            if not self._future.done():
                self._future.set_exception(exc)
            return
        if not self._future.done():
            self._future.set_result(value)

    @property
    def _unobserved_failure(self) -> BaseException | None:
        if self._observed or not self._future.done() or self._future.cancelled():
            return None
        return self._future.exception()


class WorkflowEnvironment:
    """An in-process worker and client on a virtual clock, for tests.

    ::

        async with WorkflowEnvironment(workflows=[order], activities=[charge]) as env:
            handle = await env.client.start_workflow(order, "o-1")
            assert await handle.result() == "done"     # its 30-day sleep takes milliseconds

    The clock stands still except when it is moved: while something awaits a workflow's
    result (``handle.result()``) and every run is blocked — no workflow task or activity is
    running and nothing is due now — it jumps to the next timer, delayed start, retry
    back-off or ``env.at`` call. ``env.sleep(duration)`` moves it by hand, running everything
    that falls due on the way, in order. Activity timeouts and heartbeats use real time.

    ``backend``: a ``Backend`` (its ``clock`` is replaced by the virtual clock while the
    environment runs) or a URL for ``ostinato.connect``; default the in-memory backend. A
    backend the environment created is closed on exit; one passed in is closed only with
    ``close_backend=True``. Other keyword arguments go to the ``Worker``.
    """

    def __init__(
        self,
        workflows: Iterable[Callable[..., Any]] = (),
        activities: Iterable[Any] = (),
        backend: Backend | str | None = None,
        *,
        start_time: datetime | float | None = None,
        auto_skip: bool = True,
        close_backend: bool | None = None,
        poll_interval: float = 0.1,
        **worker_options: Any,
    ) -> None:
        self.workflows = list(workflows)
        self.activities = list(activities)
        if start_time is None:
            start_time = datetime.now(timezone.utc)
        self.clock = VirtualClock(start_time)
        self.start_time: datetime = self.clock.now()
        self.auto_skip = auto_skip
        owned = not isinstance(backend, Backend)
        if backend is None:
            backend = "memory://"
        self._inner: Backend = (
            backend if isinstance(backend, Backend) else connect(backend, clock=self.clock)
        )
        self._close_backend = owned if close_backend is None else close_backend
        self._saved_clock = self._inner.clock
        self.backend = ObservedBackend(self._inner, self._poke)
        self.client = Client(self.backend)
        # The one worker here never waits for another to come back for its cached runs
        # (e.g. runs of a database a crashed worker left behind): on the virtual clock that
        # wait would be a sleep nothing skips over.
        worker_options.setdefault("sticky_wait", 0.0)
        self.worker = Worker(
            self.backend,
            workflows=self.workflows,
            activities=self.activities,
            poll_interval=poll_interval,
            **worker_options,
        )
        # The pollers the worker runs: one per kind of task it serves.
        self._kinds = [
            kind
            for kind, served in (
                ("workflow", self.worker.workflows),
                ("activity", self.worker.activities),
            )
            if served
        ]
        self._calls: list[ScheduledCall] = []
        self._all_calls: list[ScheduledCall] = []
        self._call_seq = 0
        self._targets: list[float] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._driver: asyncio.Task[None] | None = None
        self._driver_error: BaseException | None = None
        self._started = False
        self.skips = 0  # how many times the clock jumped

    def __repr__(self) -> str:
        return f"WorkflowEnvironment(now={self.now().isoformat()}, backend={self._inner!r})"

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> WorkflowEnvironment:
        if self._started:
            raise RuntimeError("a WorkflowEnvironment can be entered only once")
        self._started = True
        self._inner.clock = self.clock
        try:
            await self.worker.__aenter__()
        except BaseException:
            self._inner.clock = self._saved_clock
            raise
        self._driver = asyncio.create_task(self._drive(), name="ostinato-testing-clock")
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
        for call in self._calls:
            call.cancel()
        try:
            await self.worker.shutdown()
        finally:
            self._inner.clock = self._saved_clock
            if self._close_backend:
                await self._inner.close()
        if exc_type is not None:
            return
        if self._driver_error is not None:
            raise RuntimeError("the virtual clock driver failed") from self._driver_error
        for call in self._all_calls:
            failure = call._unobserved_failure
            if failure is not None:
                raise RuntimeError(
                    f"{call!r} (scheduled with env.at) raised {type(failure).__name__}: {failure}"
                ) from failure

    # ---- time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The virtual time (UTC)."""
        return self.clock.now()

    async def sleep(self, duration: Duration) -> None:
        """Move the virtual clock ``duration`` ahead, stopping at every timer and ``env.at``
        call due on the way until the workflows have handled it, then wait until they are
        idle at the new time."""
        seconds = to_seconds(duration, "duration")
        assert seconds is not None
        target = self.clock() + seconds
        self._targets.append(target)
        self._poke()
        try:
            while self.clock() < target:
                self._check_driver()
                await asyncio.sleep(_SAMPLE_GAP)
            await self.idle()
        finally:
            self._targets.remove(target)

    async def sleep_until(self, when: datetime) -> None:
        """``env.sleep`` to an absolute time (no-op if it is already past)."""
        await self.sleep(max(0.0, to_timestamp(when) - self.clock()))

    async def idle(self) -> None:
        """Wait until the worker is idle at the current virtual time: every run is blocked
        waiting for something (a timer, a signal ...) and no task is running."""
        while not await self._settle():
            pass

    def at(
        self, when: datetime | timedelta | float, fn: Callable[..., Any], *args: Any
    ) -> ScheduledCall:
        """Call ``fn(*args)`` (awaiting it if it returns an awaitable) when the virtual clock
        reaches ``when``: a datetime, or a delay (timedelta or seconds) from now.

        ``env.at(timedelta(days=3), handle.signal, "approve", True)``. Everything due before
        ``when`` is handled first; calls at the same time run in the order they were made.
        """
        if isinstance(when, datetime):
            at = to_timestamp(when)
        else:
            delay = to_seconds(when, "when")
            assert delay is not None
            at = self.clock() + delay
        if not callable(fn):
            raise TypeError(f"env.at() needs a callable, got {fn!r}")
        self._call_seq += 1
        call = ScheduledCall(max(at, self.clock()), self._call_seq, fn, args)
        self._calls.append(call)
        self._all_calls.append(call)
        self._calls.sort(key=lambda c: (c.at, c.seq))
        self._poke()
        return call

    # ---- conveniences -----------------------------------------------------------------------

    async def start_workflow(
        self, workflow: Any, *args: Any, **options: Any
    ) -> WorkflowHandle[Any]:
        """``env.client.start_workflow``."""
        return await self.client.start_workflow(workflow, *args, **options)

    async def execute_workflow(self, workflow: Any, *args: Any, **options: Any) -> Any:
        """Start a workflow and return its result (skipping time as needed)."""
        timeout = options.pop("timeout", None)
        handle = await self.client.start_workflow(workflow, *args, **options)
        return await handle.result(timeout=timeout)

    # ---- the driver -------------------------------------------------------------------------

    def _poke(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less if poked (something changed)."""
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup = loop.create_future()
        timer = loop.call_later(seconds, self._poke)
        try:
            await wakeup
        finally:
            timer.cancel()

    def _check_driver(self) -> None:
        if self._driver_error is not None:
            raise RuntimeError("the virtual clock driver failed") from self._driver_error
        if self._driver is None:
            raise RuntimeError("the WorkflowEnvironment is not running (use 'async with')")

    def _skipping(self) -> bool:
        if self.auto_skip and self.backend.result_waiters > 0:
            return True
        # An env.sleep that has reached its target only waits for idleness: no further.
        now = self.clock()
        return any(target > now for target in self._targets)

    def _quiet(self) -> bool:
        """Nothing is happening right now (a sample; ``_settle`` wants several in a row)."""
        backend = self.backend
        if self.worker.busy or backend.calls_in_flight:
            return False
        return all(backend.parked(kind) for kind in self._kinds)

    async def _settle(self) -> bool:
        """Wait until quiet for ``_QUIET_SAMPLES`` samples in a row with no backend call in
        between; False if a due ``env.at`` call ran meanwhile (the caller looks again)."""
        backend = self.backend
        stable = 0
        mark = backend.ops
        while stable < _QUIET_SAMPLES:
            await asyncio.sleep(0)
            await asyncio.sleep(_SAMPLE_GAP)
            self._check_driver()
            if self._quiet() and backend.ops == mark:
                stable += 1
            else:
                stable = 0
                mark = backend.ops
        return not (self._calls and self._calls[0].at <= self.clock())

    async def _next_time(self) -> float | None:
        times: list[float] = []
        if isinstance(self._inner, TimeSkipping):
            found = await self._inner.next_visible_time()
            if found is not None:
                times.append(float(found))
        if self._calls:
            times.append(self._calls[0].at)
        now = self.clock()
        times.extend(t for t in self._targets if t > now)
        return min(times, default=None)

    async def _run_due(self) -> None:
        while self._calls and self._calls[0].at <= self.clock():
            call = self._calls.pop(0)
            await call._run()

    async def _drive(self) -> None:
        try:
            while True:
                await self._run_due()
                if not self._skipping():
                    await self._nap(0.05)
                    continue
                if not await self._settle() or not self._skipping():
                    continue
                mark = self.backend.ops
                target = await self._next_time()
                if target is None or not math.isfinite(target):
                    await self._nap(0.01)
                    continue
                if self.backend.ops != mark or not self._quiet() or not self._skipping():
                    continue
                if target > self.clock():
                    self.clock.set(target)
                    self.skips += 1
                    self.backend.kick()
                    if isinstance(self._inner, TimeSkipping):
                        self._inner.wake_waiters()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("the virtual clock driver of %r failed", self)
            self._driver_error = exc
