"""What a worker reports about its work: spans (``_tracing``), metrics (``_metrics``), and the
``/metrics`` endpoint. The worker calls these hooks at fixed points (a task committed, a run
closed, an activity attempt); with tracing and metrics off each returns at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from . import _events
from ._backends._contract import Backend
from ._backends._types import ActivityTask, ClosedRun, RunClose, WorkflowCommit, WorkflowTask
from ._failure import failure_message
from ._metrics import build_metrics
from ._run import WorkflowRun
from ._tracing import RunTrace, build_tracing, run_trace

__all__ = ["WorkerTelemetry"]

log = logging.getLogger("ostinato.worker")


class _Attempt(Protocol):
    """What the worker's activity attempt tells (``_worker._ActivityAttempt``)."""

    @property
    def trace(self) -> RunTrace: ...

    outcome: str
    error: tuple[str, str] | None


class WorkerTelemetry:
    def __init__(
        self,
        identity: str,
        *,
        tracer_provider: Any,
        meter_provider: Any,
        metrics_port: int | None,
        metrics_host: str,
        prometheus_registry: Any,
    ) -> None:
        if metrics_port is not None and (
            not isinstance(metrics_port, int)
            or isinstance(metrics_port, bool)
            or not 0 <= metrics_port <= 65535
        ):
            raise ValueError(f"metrics_port must be an int from 0 to 65535, got {metrics_port!r}")
        self.identity = identity
        self.tracing = build_tracing(tracer_provider)
        self.metrics = build_metrics(meter_provider, metrics_port is not None, prometheus_registry)
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self._registry = prometheus_registry
        self._server: Any = None
        self._cache_reported = 0  # the cache size the metrics were last told

    # ---- the /metrics endpoint ------------------------------------------------------------

    def serve(self) -> None:
        """Serve ``/metrics`` on ``metrics_port`` (0: any free port; the port taken is then
        in ``metrics_port``)."""
        if self.metrics_port is None or self._server is not None:
            return
        import prometheus_client

        registry = self._registry or prometheus_client.REGISTRY
        try:
            server, _ = prometheus_client.start_http_server(
                self.metrics_port, addr=self.metrics_host, registry=registry
            )
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {self.metrics_host}:{self.metrics_port}: {exc}"
            ) from exc
        self._server = server
        self.metrics_port = int(server.server_port)
        log.info(
            "worker %s serves Prometheus metrics on http://%s:%d/metrics",
            self.identity,
            self.metrics_host,
            self.metrics_port,
        )

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # ---- workflow tasks -------------------------------------------------------------------

    @property
    def tracing_now(self) -> bool:
        """Spans are being made (a tracer is set): runs keep their span events."""
        return self.tracing is not None and self.tracing.tracer is not None

    def cache_size(self, size: int) -> None:
        if self.metrics.enabled and size != self._cache_reported:
            self.metrics.cache(size_change=size - self._cache_reported)
            self._cache_reported = size

    def workflow_task_claimed(self, task: WorkflowTask, clock: Callable[[], float]) -> None:
        """A workflow task starts now: its time in queue, from when it became ready."""
        if self.metrics.enabled and task.ready_at is not None:
            self.metrics.workflow_schedule_to_start(
                task.workflow_name, task.queue, clock() - task.ready_at
            )

    async def task_committed(
        self,
        backend: Backend,
        task: WorkflowTask,
        run: WorkflowRun,
        commit: WorkflowCommit,
        now: float,
        began: float,
    ) -> None:
        """A workflow task was committed ``began`` (``perf_counter``) ago at ``now``."""
        metrics, name, queue = self.metrics, task.workflow_name, task.queue
        if metrics.enabled:
            metrics.workflow_task(name, queue, time.perf_counter() - began)
            if task.history_length == 0:
                metrics.workflow_started(name, queue)
                if task.ready_at is None:  # a backend that does not say: from the start
                    start = run.info.start_time.timestamp() if run.info is not None else now
                    metrics.workflow_schedule_to_start(name, queue, now - start)
            if commit.close is not None:
                metrics.workflow_closed(name, queue, commit.close.status.value)
        if commit.close is not None and self.tracing is not None:
            await self._trace_run(backend, task, run, commit.close, now)

    async def _trace_run(
        self, backend: Backend, task: WorkflowTask, run: WorkflowRun, close: RunClose, now: float
    ) -> None:
        """Emit the run's ``RunWorkflow`` span: once, by the worker that committed the task
        that closed it (see _tracing)."""
        assert self.tracing is not None
        if run.trace is None or run.info is None:
            return
        try:
            span = self.tracing.run_span(
                run.trace,
                task.workflow_name,
                {
                    "ostinato.workflow.name": task.workflow_name,
                    "ostinato.instance_id": task.instance_id,
                    "ostinato.run_id": task.run_id,
                    "ostinato.queue": task.queue,
                },
                run.info.start_time.timestamp(),
            )
            if span is None:
                return
            # The run's signals, timers and children, from its history: read when this
            # worker built the run by replay, and from each task's new events since (read
            # now if the run was cached before a tracer was set).
            events = run.trace_events
            if events is None and span.is_recording():
                events = _events.trace_events(await backend.history(task.instance_id, task.run_id))
            failure = failure_message(close.result) if close.result else None
            status = close.status.value
            self.tracing.end_run_span(
                span, status, failure if status != "completed" else None, events or [], now
            )
        except Exception:
            log.warning("could not emit the trace span of %s", task.instance_id, exc_info=True)

    # ---- runs closed without a workflow task (terminated) ----------------------------------

    @property
    def reports_closes(self) -> bool:
        """This worker reports something of a closed run: it may claim runs closed without a
        workflow task (``Backend.claim_closed_runs``)."""
        return self.metrics.enabled or self.tracing_now

    async def closed_outside(self, backend: Backend, closed: ClosedRun) -> None:
        """Report a run closed without a workflow task (terminated), claimed from the backend
        by this worker alone: its close metric and its ``RunWorkflow`` span, whose start
        time, trace context and events come from its history (or, for a run no task took,
        the ``workflow_started`` event the backend kept)."""
        self.metrics.workflow_closed(closed.workflow_name, closed.queue, closed.status.value)
        if not self.tracing_now:
            return
        assert self.tracing is not None
        try:
            history = await backend.history(closed.instance_id, closed.run_id)
            started = [closed.started_event] if closed.started_event is not None else history
            try:
                info = _events.started_event(started)[1]
                trace = run_trace(closed.run_id, info.traceparent, info.tracestate)
                start_time = info.start_time or closed.closed_at
            except ValueError:  # a tampered history: the span still shows the close
                trace, start_time = run_trace(closed.run_id, None), closed.closed_at
            span = self.tracing.run_span(
                trace,
                closed.workflow_name,
                {
                    "ostinato.workflow.name": closed.workflow_name,
                    "ostinato.instance_id": closed.instance_id,
                    "ostinato.run_id": closed.run_id,
                    "ostinato.queue": closed.queue,
                },
                start_time,
            )
            if span is None:
                return
            failure = failure_message(closed.result) if closed.result else None
            events = _events.trace_events(history) if span.is_recording() else []
            self.tracing.end_run_span(
                span, closed.status.value, failure, events, max(closed.closed_at, start_time)
            )
        except Exception:
            log.warning("could not emit the trace span of %s", closed.instance_id, exc_info=True)

    # ---- activity attempts ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def activity(
        self, task: ActivityTask, attempt: _Attempt, clock: Callable[[], float]
    ) -> AsyncIterator[None]:
        """Around one attempt: its ``RunActivity`` span (current while it runs, so spans the
        activity starts nest under it) and its metrics, with the outcome it recorded."""
        began, now = time.perf_counter(), clock()
        metrics, tracing = self.metrics, self.tracing
        # Every attempt's time in queue: from when it became claimable (a retry: its retry
        # time); a backend that does not say gives it for the first attempt only.
        ready = task.ready_at
        if ready is None and task.attempt == 1:
            ready = task.scheduled_at
        if ready is not None:
            metrics.activity_schedule_to_start(task.name, task.queue, now - ready)
        span = token = None
        if tracing is not None:
            span = tracing.start_activity(
                attempt.trace,
                task.name,
                {
                    "ostinato.activity.name": task.name,
                    "ostinato.activity.id": task.activity_id,
                    "ostinato.activity.attempt": task.attempt,
                    "ostinato.workflow.name": task.workflow_name or "",
                    "ostinato.instance_id": task.instance_id,
                    "ostinato.run_id": task.run_id,
                    "ostinato.queue": task.queue,
                },
                now,
            )
            if span is not None:
                token = tracing.use(span)
        try:
            yield
        finally:
            if tracing is not None and span is not None:
                tracing.detach(token)
                tracing.end_activity(span, attempt.outcome, attempt.error, clock())
            metrics.activity_attempt(
                task.name,
                task.queue,
                time.perf_counter() - began,
                attempt.outcome,
                attempt.error[0] if attempt.error else None,
            )
