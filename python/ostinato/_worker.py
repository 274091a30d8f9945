"""The worker: claims workflow tasks and activity tasks from a backend and runs them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

from . import _eager_start, _events, _logcontext
from ._attempt import ActivityAttempt
from ._backends._contract import Backend
from ._backends._hook_store import HookStore
from ._backends._schedule_store import ScheduleStore
from ._backends._types import (
    ActivityTask,
    EagerActivities,
    LocalClaim,
    WorkflowCommit,
    WorkflowTask,
)
from ._client import Client
from ._commit import build_commit
from ._definition import ActivityDefinition, WorkflowDefinition, build_registry
from ._errors import (
    DeadlockError,
    EngineBugError,
    HistoryCorruptError,
    LeaseLostError,
    NonDeterminismError,
)
from ._failure import encode_failure
from ._guard import GuardMode, NondeterministicCallError
from ._hooks import HookRunner, build_hooks
from ._observe import WorkerTelemetry
from ._payloads import PayloadConverter, default_converter
from ._retention import RedactionSweeper, RetentionSweeper, retention_of, retention_seconds
from ._retry import Duration
from ._run import WorkflowRun
from ._schedules import ScheduleDriver

__all__ = ["Worker"]

log = logging.getLogger("ostinato.worker")
# Records of the engine's loggers carry the ids of the task they are about (docs/logging.md).
_logcontext.install("ostinato.worker", "ostinato.workflow", "ostinato.activity", "ostinato.guard")

# The longest pause between claims that found nothing on announced work (a queue at its limit).
_LIMITED_BACKOFF = 0.05


class Worker:
    """Runs workflows and activities from ``backend``.

    ``async with Worker(...)`` runs it in the background for the block; ``await
    worker.run()`` runs it until cancelled. A worker given only activities (or only
    workflows) serves only those.

    ``history_warn_length`` logs a warning (logger ``ostinato.workflow``) when a run's history
    grows past it; a run whose history grows past ``history_max_length`` fails with
    ``HistoryTooLongError``. Both recommend ``workflow.continue_as_new()``; None disables.

    A worker keeps the runs it served cached (up to ``workflow_cache_size``), and the next
    task of such a run is left to it: other workers take it only once it has waited
    ``sticky_wait`` seconds (that worker died, or is busy). A worker shutting down hands its
    cached runs over at once.

    ``eager_dispatch`` (on by default, where the backend supports it) saves round trips
    when one worker serves both a run and its activities: a workflow task's commit hands
    the activities it schedules on this worker's queues straight to this worker, leased in
    the same transaction, while it has free activity slots; and an activity's completion
    claims its run's next workflow task for this worker in the same transaction when this
    worker has the run cached (docs/operations.md, "Eager dispatch").

    ``retention`` (a duration, None by default: keep everything) deletes workflows closed
    longer ago than that, in batches; among all workers on the backend one sweeps at a time
    (see docs/retention.md). ``redact_after`` (the same way) redacts closed runs older than
    that, as ``handle.redact()`` does.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        workflows: Iterable[Callable[..., Any]] = (),
        activities: Iterable[Callable[..., Any]] = (),
        queues: Sequence[str] = ("default",),
        max_concurrent_workflow_tasks: int = 64,
        max_concurrent_activities: int = 64,
        workflow_cache_size: int = 10_000,
        sticky_wait: float = 2.0,
        deadlock_timeout: float | None = 2.0,
        nondeterminism: str = "block",
        guard: str | GuardMode = "warn",
        converter: PayloadConverter | None = None,
        activity_executor: concurrent.futures.Executor | None = None,
        workflow_lease: float = 30.0,
        activity_lease: float = 30.0,
        poll_interval: float = 1.0,
        graceful_shutdown_timeout: float = 10.0,
        identity: str | None = None,
        handle_signals: bool = False,
        history_warn_length: int | None = 10_000,
        history_max_length: int | None = 50_000,
        hooks: Iterable[Callable[..., Any]] = (),
        hook_lease: float = 60.0,
        retention: Duration | None = None,
        redact_after: Duration | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        prometheus_registry: Any = None,
        eager_dispatch: bool = True,
    ) -> None:
        if isinstance(queues, str):
            queues = (queues,)
        if nondeterminism not in ("block", "fail"):
            raise ValueError("nondeterminism must be 'block' (default) or 'fail'")
        self.backend = backend
        self.workflows: dict[str, WorkflowDefinition] = build_registry(workflows, "workflow")
        self.activities: dict[str, ActivityDefinition] = build_registry(activities, "activity")
        self.hooks = build_hooks(hooks)
        if not self.workflows and not self.activities and not self.hooks:
            raise ValueError("a Worker needs at least one workflow, activity or hook")
        if not isinstance(hook_lease, (int, float)) or not 0 < hook_lease < float("inf"):
            raise ValueError(f"hook_lease must be a finite number > 0, got {hook_lease!r}")
        if self.hooks and not isinstance(backend, HookStore):
            raise TypeError(
                f"Worker(hooks=...) needs a backend that stores hooks; {backend!r} does not"
            )
        self.hook_lease = float(hook_lease)
        self.queues = tuple(queues)
        self.max_workflow_tasks = max(1, max_concurrent_workflow_tasks)
        self.max_activities = max(1, max_concurrent_activities)
        self.cache_size = max(0, workflow_cache_size)
        self.deadlock_timeout = deadlock_timeout
        self.nondeterminism = nondeterminism
        self.guard = GuardMode.parse(guard)
        self.converter = converter or default_converter()
        self._executor = activity_executor
        self._own_executor = activity_executor is None
        self.workflow_lease = workflow_lease
        self.activity_lease = activity_lease
        self.poll_interval = poll_interval
        self.graceful_shutdown_timeout = graceful_shutdown_timeout
        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        if not isinstance(self.identity, str) or "\x00" in self.identity:
            raise ValueError(f"identity must be a str without NUL characters, got {identity!r}")
        if not isinstance(sticky_wait, (int, float)) or not 0 <= sticky_wait < float("inf"):
            raise ValueError(f"sticky_wait must be a finite number >= 0, got {sticky_wait!r}")
        self.sticky_wait = float(sticky_wait)
        if not isinstance(eager_dispatch, bool):
            raise ValueError(f"eager_dispatch must be True or False, got {eager_dispatch!r}")
        # Eager dispatch and continuing locally (see _eager_request, _local_claim).
        self.eager_dispatch = eager_dispatch and bool(getattr(backend, "eager_dispatch", False))
        self._queue_set = frozenset(self.queues)
        # Slots promised to tasks a pending commit or completion may hand over.
        self._reserved = {"workflow": 0, "activity": 0}
        self._slot_freed = {"workflow": asyncio.Event(), "activity": asyncio.Event()}
        self.handle_signals = handle_signals
        for option, value in (
            ("history_warn_length", history_warn_length),
            ("history_max_length", history_max_length),
        ):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{option} must be a positive int or None, got {value!r}")
        self.history_warn_length = history_warn_length
        # Closed workflows older than this are deleted by a sweep (see _retention).
        self.retention = retention_seconds(retention)
        if self.retention is not None:
            retention_of(backend)
        self._sweeper: RetentionSweeper | None = None  # set by run() when retention is set
        # Closed runs older than this are redacted by a sweep of their own (see _retention).
        self.redact_after = retention_seconds(redact_after, "redact_after")
        if self.redact_after is not None:
            retention_of(backend)
        self._redactor: RedactionSweeper | None = None  # set by run() when redact_after is set
        self.history_max_length = history_max_length
        self.cache: OrderedDict[str, WorkflowRun] = OrderedDict()
        self._stopping: asyncio.Event | None = None
        # Set by shutdown(): run() stops at once even if it had not started when asked to.
        self._stop_requested = False
        # Set when the caller of shutdown() is cancelled: in-flight activities are given
        # back at once instead of being waited for.
        self._hurry = False
        self._runner: asyncio.Task[None] | None = None
        self._schedules: ScheduleDriver | None = None  # set by run() if the backend has them
        self._inflight_workflow: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight_activity: set[asyncio.Task[None]] = set()
        self._known_workflows = ", ".join(sorted(self.workflows)) or "none"
        self.stats = {
            "workflow_tasks": 0,
            "activity_tasks": 0,
            "replays": 0,
            "evictions": 0,
            # Tasks handed over without a claim: activities leased by a workflow task's
            # commit, workflow tasks leased by an activity's completion.
            "eager_activity_tasks": 0,
            "local_workflow_tasks": 0,
            # First workflow tasks handed over by a start in this process (eager start).
            "eager_starts": 0,
        }
        # Spans, metrics and /metrics (docs/tracing.md, docs/metrics.md); no-ops when off.
        self._telemetry = WorkerTelemetry(
            self.identity,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            prometheus_registry=prometheus_registry,
        )
        self._metrics = self._telemetry.metrics

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        await self._open_backend()
        self._telemetry.serve()  # listening when the block starts
        self._stop_requested = False
        self._runner = asyncio.create_task(self.run(), name=f"ostinato-worker:{self.identity}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    @property
    def busy(self) -> int:
        """Number of workflow and activity tasks this worker is running right now."""
        return len(self._inflight_workflow) + len(self._inflight_activity)

    async def shutdown(self) -> None:
        """Stop claiming, let in-flight tasks finish (activities up to
        ``graceful_shutdown_timeout``), release the rest.

        Works whenever it is called, even before ``run()`` got going. If the caller is
        cancelled while waiting, the worker is stopped without waiting further for in-flight
        work and the ``CancelledError`` propagates.
        """
        self._stop_requested = True
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is None:
            return
        try:
            # Shielded: the caller being cancelled must not be confused with the runner
            # ending on its own (both show up as CancelledError here).
            await asyncio.shield(runner)
        except asyncio.CancelledError:
            if runner.done() and runner.cancelled() and not _cancelling():
                return  # the runner was cancelled by someone else, not the caller
            if not runner.done():
                # The caller was cancelled: give in-flight activities back at once (they
                # run again elsewhere), let the runner clean up, and propagate.
                self._hurry = True
                for job in list(self._inflight_activity):
                    job.cancel()
                try:
                    await asyncio.wait({runner})
                except asyncio.CancelledError:
                    runner.cancel()  # cancelled again: no more waiting
                    raise
            raise

    async def _open_backend(self) -> bool:
        """Open the backend; while it fails for a reason that may pass (the database server
        is down or unreachable), log why and try again with back-off, as a service started
        before its database (or under a supervisor) should. False: shutdown() was called
        before it could be opened."""
        delay = 0.5
        while True:
            try:
                await self.backend.open()
                return True
            except Exception as exc:
                if not self.backend.is_transient(exc) or self._stop_requested:
                    raise
                log.warning(
                    "worker %s cannot open its backend (%s); retrying in %gs",
                    self.identity,
                    exc,
                    delay,
                )
            wake = delay * (0.75 + random.random() / 2)
            while wake > 0 and not self._stop_requested:
                await asyncio.sleep(min(wake, 0.1))
                wake -= 0.1
            if self._stop_requested:
                return False
            delay = min(delay * 2, 30.0)

    async def run(self) -> None:
        if not await self._open_backend():
            self._stop_requested = False
            return
        self._stopping = asyncio.Event()
        if self._stop_requested:  # shutdown() was called before this run() got going
            self._stopping.set()
        self._telemetry.serve()
        loop = self._loop = asyncio.get_running_loop()
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stopping.set)
        if self._own_executor and self.activities:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.max_activities, thread_name_prefix="ostinato-activity"
            )
        pollers = []
        if self.workflows:
            pollers.append(asyncio.create_task(self._poll_workflows()))
        if self.activities:
            pollers.append(asyncio.create_task(self._poll_activities()))
        if isinstance(self.backend, ScheduleStore):
            self._schedules = ScheduleDriver(
                Client(self.backend, converter=self.converter),
                action_lease=self.workflow_lease,
            )
            pollers.append(asyncio.create_task(self._drive_schedules(self.backend)))
        if self.hooks and isinstance(self.backend, HookStore):
            # Before any run is served: a change this worker's runs make is never missed.
            hook_runner = self._hook_runner(self.backend)
            with contextlib.suppress(Exception):
                await hook_runner.subscribe()
            pollers.append(asyncio.create_task(self._deliver_hooks(hook_runner)))
        if self.workflows:
            pollers.append(asyncio.create_task(self._report_closed_runs()))
        if self.retention is not None:
            self._sweeper = RetentionSweeper(self.backend, self.identity, self.retention)
            pollers.append(asyncio.create_task(self._sweeper.run(self._stopping)))
        if self.redact_after is not None:
            self._redactor = RedactionSweeper(self.backend, self.identity, self.redact_after)
            pollers.append(asyncio.create_task(self._redactor.run(self._stopping)))
        if self.workflows:
            _eager_start.register(self)
        try:
            await self._stopping.wait()
        finally:
            _eager_start.unregister(self)
            self._stopping.set()
            for poller in pollers:
                poller.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
            await self._drain()
            if self.workflows and self.cache_size:
                await self._release_sticky()
            if self.handle_signals and threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            for run in self.cache.values():
                run.dispose()
            self.cache.clear()
            self._telemetry.cache_size(0)
            self._telemetry.stop()
            if self._own_executor and self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            self._stop_requested = self._hurry = False

    @property
    def metrics_port(self) -> int | None:
        """The port of ``/metrics`` (the one taken, once started with ``metrics_port=0``)."""
        return self._telemetry.metrics_port

    async def _release_sticky(self) -> None:
        """Hand the runs this worker has cached to the others at once, not sticky_wait later."""
        try:
            await self.backend.release_sticky(self.identity, self.queues)
        except Exception as exc:
            log.warning(
                "could not release this worker's cached runs (%s); other workers take them "
                "over after sticky_wait (%gs)",
                exc,
                self.sticky_wait,
            )

    async def _drain(self) -> None:
        if self._inflight_workflow:
            await asyncio.gather(*self._inflight_workflow, return_exceptions=True)
        if self._inflight_activity:
            _, pending = await asyncio.wait(
                self._inflight_activity,
                timeout=0 if self._hurry else self.graceful_shutdown_timeout,
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _drive_schedules(self, store: ScheduleStore) -> None:
        """Fire the due schedules of this worker's queues (any worker of a queue may: each
        fire is decided once, by compare-and-set, see ``_schedules._driver``)."""
        assert self._stopping is not None and self._schedules is not None
        driver = self._schedules
        while not self._stopping.is_set():
            try:
                await driver.fire_due(self.queues)
                upcoming = await store.next_schedule_fire(self.queues)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("firing schedules failed; retrying in %gs", self.poll_interval)
                upcoming = None
            delay = self.poll_interval
            if upcoming is not None:
                delay = min(delay, max(0.0, upcoming - self.backend.clock()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=max(delay, 0.01))

    def _hook_runner(self, store: HookStore) -> HookRunner:
        return HookRunner(
            store,
            self.hooks,
            self.queues,
            clock=self.backend.clock,
            lease=self.hook_lease,
            batch=self.max_activities,
        )

    async def _deliver_hooks(self, runner: HookRunner) -> None:
        """Call this worker's hooks on the state changes of its queues' runs (see _hooks)."""
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                if await runner.run_once():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivering hooks failed; retrying in %gs", self.poll_interval)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_interval)

    async def _report_closed_runs(self) -> None:
        """Report the runs of this worker's queues closed without a workflow task
        (terminated): each is claimed by one worker, once (``Backend.claim_closed_runs``).
        Only while this worker reports metrics or spans."""
        assert self._stopping is not None
        telemetry, batch = self._telemetry, 100
        while not self._stopping.is_set():
            claimed = []
            try:
                if telemetry.reports_closes:
                    claimed = await self.backend.claim_closed_runs(self.queues, batch)
                    for closed in claimed:
                        await telemetry.closed_outside(self.backend, closed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reporting closed runs failed; retrying in %gs", self.poll_interval)
            if len(claimed) < batch:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_interval)

    # ---- workflow tasks -------------------------------------------------------------------

    async def _poll(
        self,
        kind: str,
        claim: Callable[[int], Awaitable[Sequence[Any]]],
        handle: Callable[[Any], Coroutine[Any, Any, None]],
    ) -> None:
        """Claim up to the free capacity, run each task, and wait for work when idle."""
        assert self._stopping is not None
        slot_freed = self._slot_freed[kind]
        # Claims in a row that found nothing because a queue was at its limits
        # (docs/queues.md): its work stays visible, so wait_for_work would return at once;
        # back off briefly instead of asking again and again.
        empty_claims = 0
        while not self._stopping.is_set():
            free = self._free_slots(kind)
            if free <= 0:
                slot_freed.clear()
                await slot_freed.wait()
                continue
            limited_before = getattr(self.backend, "limited_claims", 0)
            try:
                tasks = await claim(free)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming %s tasks failed; retrying in 1s", kind)
                await asyncio.sleep(1.0)
                continue
            if tasks:
                empty_claims = 0
            for task in tasks:
                self._start(kind, handle(task))
            if len(tasks) < free:
                # Fewer than asked for: nothing more is claimable now, so wait (which looks
                # with a read first) rather than claim again at once for nothing.
                if not tasks and getattr(self.backend, "limited_claims", 0) != limited_before:
                    empty_claims = min(empty_claims + 1, 5)
                    await asyncio.sleep(min(0.002 * 2**empty_claims, _LIMITED_BACKOFF))
                elif not tasks:
                    empty_claims = 0
            await self.backend.wait_for_work(
                kind,
                self.queues,
                self.poll_interval,
                worker=self.identity,
                sticky_wait=self.sticky_wait,
            )

    def _inflight(self, kind: str) -> set[asyncio.Task[None]]:
        return self._inflight_workflow if kind == "workflow" else self._inflight_activity

    def _free_slots(self, kind: str) -> int:
        """Slots of ``kind`` neither running a task nor reserved for one being handed over."""
        limit = self.max_workflow_tasks if kind == "workflow" else self.max_activities
        return limit - len(self._inflight(kind)) - self._reserved[kind]

    def _start(self, kind: str, job: Coroutine[Any, Any, None]) -> None:
        """Run a claimed (or handed over) task in a slot of its kind."""
        inflight = self._inflight(kind)
        task = asyncio.create_task(job)
        inflight.add(task)
        task.add_done_callback(inflight.discard)
        slot_freed = self._slot_freed[kind]
        task.add_done_callback(lambda _: slot_freed.set())

    # ---- eager dispatch and continuing locally ----------------------------------------------

    def _eager_request(self, commit: WorkflowCommit) -> EagerActivities | None:
        """Eager dispatch: the commit's new activities this worker takes at once (on its
        queues, registered here, up to its free activity slots), their slots reserved until
        ``_eager_started``."""
        if not self.eager_dispatch or not commit.activities or not self.activities:
            return None
        if self._stopping is None or self._stopping.is_set():
            return None
        free = self._free_slots("activity")
        ids = tuple(
            a.activity_id
            for a in commit.activities
            if a.queue in self._queue_set and a.name in self.activities
        )[: max(free, 0)]
        if not ids:
            return None
        self._reserved["activity"] += len(ids)
        return EagerActivities(ids, self.activity_lease)

    def _eager_started(self, eager: EagerActivities | None, leased: Sequence[ActivityTask]) -> None:
        """Run the activity tasks a commit leased to this worker; free the other reserved
        slots."""
        if eager is None:
            return
        self._reserved["activity"] -= len(eager.activity_ids)
        self._slot_freed["activity"].set()
        for task in leased:
            self.stats["eager_activity_tasks"] += 1
            self._start("activity", self._activity_task(task))

    def _local_claim(self, task: ActivityTask) -> LocalClaim | None:
        """Continue locally: ask the completion of ``task`` for its run's next workflow task
        when this worker has the run cached and a free workflow slot (reserved until
        ``_local_claim_done``)."""
        if not self.eager_dispatch or task.run_id not in self.cache:
            return None
        if self._stopping is None or self._stopping.is_set():
            return None
        if self._free_slots("workflow") <= 0:
            return None
        self._reserved["workflow"] += 1
        return LocalClaim(self.identity, self.workflow_lease)

    def _local_claim_done(self, claim: LocalClaim | None, follow: WorkflowTask | None) -> None:
        if claim is None:
            return
        self._reserved["workflow"] -= 1
        self._slot_freed["workflow"].set()
        if follow is not None:
            self.stats["local_workflow_tasks"] += 1
            self._start("workflow", self._workflow_task(follow))

    async def _complete_activity(self, task: ActivityTask, event: bytes) -> None:
        """Record an activity's outcome (``ActivityAttempt``), continuing locally if it can."""
        claim = self._local_claim(task)
        follow = None
        try:
            if claim is None:
                await self.backend.complete_activity(task, event)
            else:
                follow = await self.backend.complete_activity(task, event, claim=claim)
        finally:
            self._local_claim_done(claim, follow)

    def _poll_workflows(self) -> Coroutine[Any, Any, None]:
        return self._poll(
            "workflow",
            lambda n: self.backend.claim_workflow_tasks(
                self.queues,
                self.workflow_lease,
                n,
                worker=self.identity,
                sticky_wait=self.sticky_wait,
            ),
            self._workflow_task,
        )

    def _poll_activities(self) -> Coroutine[Any, Any, None]:
        return self._poll(
            "activity",
            lambda n: self.backend.claim_activity_tasks(self.queues, self.activity_lease, n),
            self._activity_task,
        )

    # ---- eager start (_eager_start.py) ---------------------------------------------------------

    def takes_start(self, workflow_name: str, queue: str) -> bool:
        """Whether this worker runs the first task of a run started in its process now (it
        is running in this event loop, serves the queue, knows the workflow, and has a free
        workflow task slot)."""
        return (
            self._stopping is not None
            and not self._stopping.is_set()
            and queue in self.queues
            and workflow_name in self.workflows
            and self._free_slots("workflow") > 0
            and self._loop is asyncio.get_running_loop()
        )

    def accept_start(self, task: WorkflowTask) -> bool:
        """Run the first task of a run started in this process, leased at its start."""
        if self._stopping is None or self._stopping.is_set():
            return False
        self.stats["eager_starts"] += 1
        self._start("workflow", self._workflow_task(task))
        return True

    def _new_run(self, task: WorkflowTask) -> WorkflowRun:
        run = WorkflowRun(
            definition=self.workflows.get(task.workflow_name),
            workflow_name=task.workflow_name,
            instance_id=task.instance_id,
            run_id=task.run_id,
            queue=task.queue,
            converter=self.converter,
            deadlock_timeout=self.deadlock_timeout,
            guard_mode=self.guard,
        )
        run.known_workflows = self._known_workflows
        run.history_warn_length = self.history_warn_length
        run.history_max_length = self.history_max_length
        return run

    async def _workflow_task(self, task: WorkflowTask) -> None:
        try:
            with _logcontext.bind(task.instance_id, task.run_id, task.workflow_name):
                await self._run_workflow_task(task)
        finally:
            self._telemetry.cache_size(len(self.cache))

    async def _run_workflow_task(self, task: WorkflowTask) -> None:
        self.stats["workflow_tasks"] += 1
        began = time.perf_counter()
        self._telemetry.workflow_task_claimed(task, self.backend.clock)
        run = self.cache.pop(task.run_id, None)
        if run is not None and run.history_length != task.history_length:
            run.dispose()  # another worker moved the run on: our copy is stale
            run = None
        if task.history_length:
            self._metrics.cache(hit=run is not None)
        tracing = self._telemetry.tracing_now  # keep the run's span events
        try:
            if run is None:
                run = self._new_run(task)
                if task.history_length:
                    self.stats["replays"] += 1
                    replay_began = time.perf_counter()
                    try:
                        history = await self.backend.history(task.instance_id, task.run_id)
                        run.replay(history)
                        if tracing:
                            run.trace_events = _events.trace_events(history)
                    finally:
                        self._metrics.replay(task.workflow_name, time.perf_counter() - replay_began)
            now = self.backend.clock()
            run.step(int(now * 1_000_000), [item.event for item in task.inbox])
            commit = build_commit(
                run.take_output(),
                consumed_inbox=[item.id for item in task.inbox],
                now=now,
                # Kept in the cache after the commit (below): the next task of the run is
                # best run here, without reading and replaying its history.
                sticky_worker=self.identity if self.cache_size else None,
            )
            if tracing:
                if task.history_length == 0:
                    run.trace_events = []  # a new run (a replayed one got its history's)
                if run.trace_events is not None:
                    run.trace_events += _events.trace_events(commit.new_events)
        except (
            NonDeterminismError,
            DeadlockError,
            NondeterministicCallError,
            HistoryCorruptError,
        ) as exc:
            if run is not None:
                run.dispose()
            await self._workflow_task_failed(task, exc)
            return
        except (KeyboardInterrupt, SystemExit) as exc:
            # Workflow code raised them (asyncio.run and handle_signals=True turn Ctrl-C
            # into a cancellation, never into a KeyboardInterrupt inside workflow code).
            # They must not take the worker down, nor every worker that picks the run up
            # after it: the task fails and the run stays open, blocked with the reason.
            if run is not None:
                run.dispose()
            await self._workflow_task_failed(task, _WorkflowCodeExit(exc))
            return
        except Exception as exc:
            if run is not None:
                run.dispose()
            log.exception("workflow task of %s failed inside the engine", task.instance_id)
            await self._workflow_task_failed(task, exc)
            return
        commit.eager = self._eager_request(commit)
        leased: list[ActivityTask] = []
        try:
            leased = await self.backend.commit_workflow_task(task, commit) or []
        except LeaseLostError:
            self._eager_started(commit.eager, leased)
            run.dispose()
            log.warning(
                "lost the lease on workflow %s before committing; another worker took over",
                task.instance_id,
            )
            return
        except BaseException as exc:
            self._eager_started(commit.eager, leased)
            if not isinstance(exc, Exception):
                raise
            # The store refused the commit. Whatever the cause (a value it cannot hold, an
            # outage), trying again at once would spin: the run is retried with back-off
            # and shows why it is stuck (describe(), the CLI).
            run.dispose()
            await self._workflow_task_failed(task, _CommitFailed(exc))
            return
        try:
            await self._after_commit(task, run, commit, now, began)
        finally:
            # Started once the run is back in the cache, so that their completions find it
            # there and continue locally.
            self._eager_started(commit.eager, leased)

    async def _after_commit(
        self, task: WorkflowTask, run: WorkflowRun, commit: WorkflowCommit, now: float, began: float
    ) -> None:
        await self._telemetry.task_committed(self.backend, task, run, commit, now, began)
        if commit.close is not None and self._schedules is not None and "@" in task.instance_id:
            await self._schedules.run_closed(task.instance_id)
        # A later task of this run may have been claimed and finished while this one awaited
        # its commit: keep whichever copy is further along, and dispose of the other.
        other = self.cache.pop(task.run_id, None)
        if run.closed or self.cache_size == 0:
            run.dispose()
            if other is not None:
                other.dispose()
            return
        if other is not None and other.history_length > run.history_length:
            run, other = other, run
        if other is not None:
            other.dispose()
        if not run.closed:
            self.cache[task.run_id] = run
            while len(self.cache) > self.cache_size:
                _, evicted = self.cache.popitem(last=False)
                evicted.dispose()
                self.stats["evictions"] += 1
                self._metrics.cache(evicted=1)

    async def _workflow_task_failed(self, task: WorkflowTask, exc: BaseException) -> None:
        if isinstance(exc, (HistoryCorruptError, EngineBugError, _WorkflowCodeExit, _CommitFailed)):
            reason = str(exc)  # says what and where
        else:
            reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, NonDeterminismError) and self.nondeterminism == "fail":
            await self._fail_run(task, exc)
            return
        self._metrics.workflow_task_failed(task.workflow_name, task.queue, _failure_reason(exc))
        if not isinstance(exc, NonDeterminismError):
            log.error("workflow task of %s failed: %s", task.instance_id, reason)
        else:
            log.error("%s", reason)
        delay = min(1.0 * (2 ** min(task.failed_attempts, 10)), 60.0)
        try:
            await self.backend.fail_workflow_task(task, reason, self.backend.clock() + delay)
        except LeaseLostError:
            pass
        except Exception:
            # The store is unreachable: the lease expires and the task is claimed again then.
            log.warning(
                "could not record the failed workflow task of %s", task.instance_id, exc_info=True
            )

    async def _fail_run(self, task: WorkflowTask, exc: BaseException) -> None:
        """The worker option nondeterminism="fail": close the run as failed, its code not run
        (the reducer numbers the task's events after the recorded history)."""
        run = self._new_run(task)
        try:
            history = (
                await self.backend.history(task.instance_id, task.run_id)
                if task.history_length
                else []
            )
            now = self.backend.clock()
            inbox = [item.event for item in task.inbox]
            run.fail_task(history, int(now * 1_000_000), inbox, encode_failure(exc))
            commit = build_commit(
                run.take_output(),
                consumed_inbox=[item.id for item in task.inbox],
                now=now,
                sticky_worker=None,
            )
        finally:
            run.dispose()
        with contextlib.suppress(LeaseLostError):
            await self.backend.commit_workflow_task(task, commit)
            if commit.close is not None:
                self._metrics.workflow_closed(
                    task.workflow_name, task.queue, commit.close.status.value
                )

    # ---- activity tasks -------------------------------------------------------------------

    async def _activity_task(self, task: ActivityTask) -> None:
        with _logcontext.bind(
            task.instance_id,
            task.run_id,
            task.workflow_name,
            task.name,
            task.activity_id,
            task.attempt,
        ):
            self.stats["activity_tasks"] += 1
            attempt = ActivityAttempt(self, task)
            async with self._telemetry.activity(task, attempt, self.backend.clock):
                await self._run_attempt(task, attempt)

    async def _run_attempt(self, task: ActivityTask, attempt: ActivityAttempt) -> None:
        try:
            await attempt.run()
        except LeaseLostError:
            attempt.outcome = "lease_lost"
            log.warning(
                "lost the lease on activity %s #%d of %s (attempt %d); its result is dropped, "
                "another worker owns it",
                task.name,
                task.activity_id,
                task.instance_id,
                task.attempt,
            )
        except asyncio.CancelledError:
            # Shutdown: give the task back so another worker runs it at once.
            attempt.outcome = "released"
            try:
                with contextlib.suppress(Exception):
                    await attempt.flush_details()
                await self.backend.retry_activity(task, self.backend.clock())
            except Exception:
                log.debug("releasing activity task on shutdown failed", exc_info=True)
        except Exception:
            log.exception(
                "activity task %s of %s failed in the engine", task.name, task.instance_id
            )


class _WorkflowCodeExit(Exception):
    """KeyboardInterrupt / SystemExit raised by workflow code, caught by the worker."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(
            f"workflow code raised {type(original).__name__}({original!s}): workflow code must "
            "not raise KeyboardInterrupt or SystemExit (raise an exception such as "
            "ApplicationError to fail the run). The worker kept running; the run stays open "
            "and is retried with back-off: deploy a fix, or terminate it."
        )


class _CommitFailed(Exception):
    """The backend refused a workflow task's commit (not a lost lease)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(
            f"committing the workflow task failed: {type(original).__name__}: {original}. "
            "The run is retried with back-off."
        )


def _failure_reason(exc: BaseException) -> str:
    """The ``reason`` label of a failed workflow task."""
    if isinstance(exc, NonDeterminismError):
        return "nondeterminism"
    if isinstance(exc, NondeterministicCallError):
        return "guard"
    if isinstance(exc, DeadlockError):
        return "deadlock"
    if isinstance(exc, HistoryCorruptError):
        return "history_corrupt"
    if isinstance(exc, _WorkflowCodeExit):
        return "workflow_code"
    if isinstance(exc, _CommitFailed):
        return "commit"
    return "engine"


def _cancelling() -> bool:
    """True when the current task has been asked to cancel (its caller's cancellation)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)  # Python 3.11+
    return cancelling is not None and bool(cancelling())
