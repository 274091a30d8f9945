"""The deterministic event loop that workflow code runs on.

Each workflow run owns one ``DeterministicLoop``. It is an ``asyncio`` event loop in the sense
that ``asyncio.gather``, ``asyncio.wait``, ``asyncio.wait_for``, ``asyncio.Event``,
``asyncio.create_task`` and ``asyncio.sleep`` work on it unchanged, but it never reads a clock
and never waits: ``time()`` is the workflow's current time (the time of the workflow task
being run), and ``call_at`` / ``call_later`` create *durable timers* recorded in history.

The run drives it (``WorkflowRun._run_until_blocked``): ``run_ready()`` runs ready callbacks
in FIFO order until none are left (every task is waiting on something only a new history
event can resolve). The
order of callbacks depends only on the order of history events, so replay reproduces it.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import inspect
import logging
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._run import WorkflowRun

__all__ = ["DeterministicLoop", "DurableTimer", "Watchdog", "WATCHDOG"]

_T = TypeVar("_T")

log = logging.getLogger("ostinato.workflow")


class DurableTimer(asyncio.TimerHandle):
    """A ``TimerHandle`` backed by a timer in the run's history."""

    __slots__ = ("timer_id",)

    timer_id: int


class _WorkflowFuture(asyncio.Future[Any]):
    """A future of workflow code. It hashes by creation order within its run instead of by
    memory address, so sets of futures (``asyncio.wait``'s ``done`` and ``pending``) iterate in
    the same order on every replay, in any process."""

    _ost_hash = 0

    def __hash__(self) -> int:
        return self._ost_hash


class _WorkflowTask(asyncio.Task[Any]):
    """A task of workflow code; hashes by creation order like ``_WorkflowFuture``."""

    _ost_hash = 0

    def __hash__(self) -> int:
        return self._ost_hash


async def _await(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


class _NotAllowedInWorkflow(RuntimeError):
    pass


def _not_allowed(what: str) -> _NotAllowedInWorkflow:
    return _NotAllowedInWorkflow(
        f"{what} is not allowed in workflow code: it is not deterministic. "
        "Do this in an activity and call it with workflow.execute_activity()."
    )


class DeterministicLoop(asyncio.AbstractEventLoop):
    def __init__(self, run: WorkflowRun) -> None:
        self._run = run
        self._ready: deque[asyncio.Handle] = deque()
        self._closed = False
        self._exception_handler: Any = None
        self._task_factory: Any = None
        # The run's tasks, so disposing of the run can close them (asyncio.all_tasks would
        # scan the tasks of every run in the process).
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        # Hash of the next future or task: its creation number within the run.
        self._next_hash = 0

    # ---- scheduling ---------------------------------------------------------------------

    def time(self) -> float:
        return self._run.now_us / 1_000_000

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(
                f"workflow {self._run.workflow_name!r} ({self._run.instance_id}) was disposed "
                "(evicted from the worker's cache or dropped after its workflow task); code in a "
                "finally: block that runs then cannot schedule anything"
            )

    def _hash(self) -> int:
        self._next_hash += 1
        return self._next_hash

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        self._check_open()
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = DurableTimer(when, callback, args, self, context)
        handle.timer_id = self._run.start_timer(handle, when)
        handle._scheduled = True  # type: ignore[attr-defined]
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if isinstance(handle, DurableTimer) and handle._scheduled:  # type: ignore[attr-defined]
            handle._scheduled = False  # type: ignore[attr-defined]
            self._run.cancel_timer(handle.timer_id)

    def fire_timer(self, handle: DurableTimer) -> None:
        handle._scheduled = False  # type: ignore[attr-defined]
        if not handle.cancelled():
            self._ready.append(handle)

    def call_soon_threadsafe(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        raise _not_allowed("call_soon_threadsafe (threads)")

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., _T], *args: Any
    ) -> Any:
        raise _not_allowed("run_in_executor (threads and processes)")

    # ---- futures and tasks --------------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        future = _WorkflowFuture(loop=self)
        future._ost_hash = self._hash()
        return future

    def create_task(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        self._check_open()
        if not asyncio.iscoroutine(coro) and inspect.isawaitable(coro):
            # A workflow handle (execute_activity / execute_child): asyncio.create_task()
            # takes only coroutines, the workflow loop takes any awaitable.
            coro = _await(coro)
        task: asyncio.Task[_T]
        if self._task_factory is not None:
            task = self._task_factory(self, coro)
        elif sys.version_info >= (3, 11):
            task = _WorkflowTask(coro, loop=self, name=name, context=context)
        else:
            task = _WorkflowTask(coro, loop=self, name=name)
        if isinstance(task, _WorkflowTask):
            task._ost_hash = self._hash()
        self.tasks.add(task)
        return task

    def set_task_factory(self, factory: Any) -> None:
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # ---- running ------------------------------------------------------------------------

    def run_ready(self) -> None:
        """Run callbacks until none is ready (or the run asks to stop)."""
        ready = self._ready
        run = self._run
        while ready and not run.aborted:
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()

    def is_running(self) -> bool:
        return True

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    def run_forever(self) -> None:
        raise _not_allowed("loop.run_forever()")

    def run_until_complete(self, future: Any) -> Any:
        raise _not_allowed("loop.run_until_complete()")

    def stop(self) -> None:
        raise _not_allowed("loop.stop()")

    async def shutdown_asyncgens(self) -> None:
        return None

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        return None

    # ---- errors -------------------------------------------------------------------------

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        if self._run.replaying:
            return
        exc = context.get("exception")
        log.error(
            "unhandled error in workflow %r (%s): %s",
            self._run.workflow_name,
            self._run.instance_id,
            context.get("message"),
            exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
        )

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is not None:
            self._exception_handler(self, context)
        else:
            self.default_exception_handler(context)


class DeadlockInterrupt(BaseException):
    """Injected into a workflow step that ran past the deadlock timeout."""


class Watchdog:
    """Notices workflow steps that do not yield within their limit.

    Workflow code runs on the worker's event-loop thread; a blocking call there (``time.sleep``,
    a synchronous HTTP request, a busy loop) would stall every run of the worker. A daemon
    thread looks at the registered steps a few times per limit and, for a step over its
    limit, marks it and raises ``DeadlockInterrupt`` in the stuck thread (at the next
    bytecode boundary: a C call such as ``time.sleep`` is interrupted when it returns).
    The cost for a step is one lock round-trip; the thread starts on first use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[int, tuple[float, float, list[bool]]] = {}
        self._thread: threading.Thread | None = None
        self._period = 0.5

    def begin(self, limit: float) -> list[bool]:
        flag = [False]
        now = time.monotonic()
        with self._lock:
            self._steps[threading.get_ident()] = (now + limit, limit, flag)
            if self._thread is None or limit / 4 < self._period:
                self._period = max(min(self._period, limit / 4), 0.005)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._watch, name="ostinato-watchdog", daemon=True
                    )
                    self._thread.start()
        return flag

    def end(self) -> None:
        tid = threading.get_ident()
        with self._lock:
            entry = self._steps.pop(tid, None)
            if entry is not None and entry[2][0]:
                # Clear an interrupt that was set but not yet raised.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)

    def _watch(self) -> None:
        while True:
            time.sleep(self._period)
            now = time.monotonic()
            with self._lock:
                for tid, (deadline, _limit, flag) in self._steps.items():
                    if now > deadline and not flag[0]:
                        flag[0] = True
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(tid), ctypes.py_object(DeadlockInterrupt)
                        )


WATCHDOG = Watchdog()
