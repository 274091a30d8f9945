"""The worker's metrics facade: one call per thing that happened, fanned out to the sinks.

The worker holds a ``Metrics``. With no sink (the default when neither OpenTelemetry metrics
nor Prometheus is configured) every method returns at once, so the hot path pays a method
call and nothing else. The sinks are OpenTelemetry metrics (``meter_provider=``) and
``prometheus_client`` (``Worker(metrics_port=...)`` or ``prometheus_registry=``); both are
optional imports, made only when a sink is built.

Every instrument is in ``INSTRUMENTS`` (the list docs/metrics.md documents). Labels are
bounded: workflow and activity names, queues, statuses and outcomes, never an instance id.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["INSTRUMENTS", "NO_METRICS", "Instrument", "Metrics", "build_metrics"]

Kind = Literal["counter", "histogram", "updown", "gauge"]

# Seconds: from a millisecond workflow task to an hour in a queue.
BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


@dataclass(frozen=True, slots=True)
class Instrument:
    """One metric. ``name`` is the OpenTelemetry instrument name; Prometheus exposes it as
    is, with ``_total`` after a counter's name."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    unit: str = ""

    @property
    def prometheus_name(self) -> str:
        return self.name + "_total" if self.kind == "counter" else self.name


WORKFLOWS_STARTED = Instrument(
    "ostinato_workflows_started",
    "counter",
    ("workflow", "queue"),
    "Runs whose first workflow task was committed (children and continue-as-new included).",
)
WORKFLOWS_CLOSED = Instrument(
    "ostinato_workflows_closed",
    "counter",
    ("workflow", "queue", "status"),
    "Runs closed by a workflow task, by status: completed, failed, canceled, timed_out, "
    "continued_as_new (terminated: counted by the client that terminates).",
)
WORKFLOW_TASK_SECONDS = Instrument(
    "ostinato_workflow_task_seconds",
    "histogram",
    ("workflow", "queue"),
    "Time to run one workflow task, from claim to commit (replay included).",
    "s",
)
WORKFLOW_SCHEDULE_TO_START = Instrument(
    "ostinato_workflow_schedule_to_start_seconds",
    "histogram",
    ("workflow", "queue"),
    "Time a run waited in its queue before its first workflow task started.",
    "s",
)
WORKFLOW_TASK_FAILURES = Instrument(
    "ostinato_workflow_task_failures",
    "counter",
    ("workflow", "queue", "reason"),
    "Workflow tasks that failed and will be retried, by reason: nondeterminism, deadlock, "
    "workflow_code, engine, commit.",
)
NONDETERMINISM_BLOCKS = Instrument(
    "ostinato_nondeterminism_blocks",
    "counter",
    ("workflow", "queue"),
    "Workflow tasks blocked because the code no longer matches the run's history.",
)
ACTIVITY_ATTEMPTS = Instrument(
    "ostinato_activity_attempts",
    "counter",
    ("activity", "queue", "outcome"),
    "Activity attempts, by outcome: completed, retrying (failed, will retry), failed (failed "
    "for good), cancelled.",
)
ACTIVITY_FAILURES = Instrument(
    "ostinato_activity_failures",
    "counter",
    ("activity", "queue", "error_type"),
    "Failed activity attempts, by error type (the exception's class or ApplicationError type).",
)
ACTIVITY_SECONDS = Instrument(
    "ostinato_activity_attempt_seconds",
    "histogram",
    ("activity", "queue"),
    "Time to run one activity attempt.",
    "s",
)
ACTIVITY_SCHEDULE_TO_START = Instrument(
    "ostinato_activity_schedule_to_start_seconds",
    "histogram",
    ("activity", "queue"),
    "Time an activity waited in its queue before its first attempt started.",
    "s",
)
CACHE_SIZE = Instrument(
    "ostinato_workflow_cache_size",
    "updown",
    (),
    "Workflow runs held in the workers' caches (sticky runs).",
)
CACHE_HITS = Instrument(
    "ostinato_workflow_cache_hits",
    "counter",
    (),
    "Workflow tasks whose run was in the worker's cache.",
)
CACHE_MISSES = Instrument(
    "ostinato_workflow_cache_misses",
    "counter",
    (),
    "Workflow tasks of a run with history that was not in the cache (rebuilt by replay).",
)
CACHE_EVICTIONS = Instrument(
    "ostinato_workflow_cache_evictions",
    "counter",
    (),
    "Runs evicted from a full cache.",
)
REPLAY_SECONDS = Instrument(
    "ostinato_workflow_replay_seconds",
    "histogram",
    ("workflow",),
    "Time to rebuild a run from its history (reading it included).",
    "s",
)

INSTRUMENTS: tuple[Instrument, ...] = (
    WORKFLOWS_STARTED,
    WORKFLOWS_CLOSED,
    WORKFLOW_TASK_SECONDS,
    WORKFLOW_SCHEDULE_TO_START,
    WORKFLOW_TASK_FAILURES,
    NONDETERMINISM_BLOCKS,
    ACTIVITY_ATTEMPTS,
    ACTIVITY_FAILURES,
    ACTIVITY_SECONDS,
    ACTIVITY_SCHEDULE_TO_START,
    CACHE_SIZE,
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_EVICTIONS,
    REPLAY_SECONDS,
)


class Sink(Protocol):
    def record(self, instrument: Instrument, value: float, labels: Sequence[str]) -> None: ...


class Metrics:
    """What the worker reports. Without sinks every method returns at once."""

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self.sinks = tuple(sinks)
        self.enabled = bool(self.sinks)

    def _record(self, instrument: Instrument, value: float, labels: Sequence[str]) -> None:
        for sink in self.sinks:
            sink.record(instrument, value, labels)

    def workflow_started(self, workflow: str, queue: str, waited: float) -> None:
        if self.enabled:
            self._record(WORKFLOWS_STARTED, 1, (workflow, queue))
            self._record(WORKFLOW_SCHEDULE_TO_START, max(waited, 0.0), (workflow, queue))

    def workflow_closed(self, workflow: str, queue: str, status: str) -> None:
        if self.enabled:
            self._record(WORKFLOWS_CLOSED, 1, (workflow, queue, status))

    def workflow_task(self, workflow: str, queue: str, seconds: float) -> None:
        if self.enabled:
            self._record(WORKFLOW_TASK_SECONDS, seconds, (workflow, queue))

    def workflow_task_failed(self, workflow: str, queue: str, reason: str) -> None:
        if self.enabled:
            self._record(WORKFLOW_TASK_FAILURES, 1, (workflow, queue, reason))
            if reason == "nondeterminism":
                self._record(NONDETERMINISM_BLOCKS, 1, (workflow, queue))

    def activity_attempt(
        self,
        activity: str,
        queue: str,
        seconds: float | None,
        outcome: str,
        error_type: str | None = None,
    ) -> None:
        if self.enabled:
            self._record(ACTIVITY_ATTEMPTS, 1, (activity, queue, outcome))
            if seconds is not None:
                self._record(ACTIVITY_SECONDS, seconds, (activity, queue))
            if error_type is not None:
                self._record(ACTIVITY_FAILURES, 1, (activity, queue, error_type))

    def activity_schedule_to_start(self, activity: str, queue: str, seconds: float) -> None:
        if self.enabled:
            self._record(ACTIVITY_SCHEDULE_TO_START, max(seconds, 0.0), (activity, queue))

    def cache(self, *, hit: bool | None = None, size_change: int = 0, evicted: int = 0) -> None:
        """``hit``: a task found its run cached (True) or replayed it (False)."""
        if self.enabled:
            if hit is not None:
                self._record(CACHE_HITS if hit else CACHE_MISSES, 1, ())
            if size_change:
                self._record(CACHE_SIZE, size_change, ())
            if evicted:
                self._record(CACHE_EVICTIONS, evicted, ())

    def replay(self, workflow: str, seconds: float) -> None:
        if self.enabled:
            self._record(REPLAY_SECONDS, seconds, (workflow,))


NO_METRICS = Metrics()


# ---- sinks ------------------------------------------------------------------------------


class _PrometheusSink:
    """Collectors in one ``prometheus_client`` registry, shared by every worker of the
    process that reports to it (a registry refuses the same name twice)."""

    def __init__(self, registry: Any) -> None:
        import prometheus_client as prom

        self.registry = registry
        self.collectors: dict[Instrument, Any] = {}
        for inst in INSTRUMENTS:
            # prometheus_client adds _total to a counter's name itself.
            options: dict[str, Any] = {"labelnames": inst.labels, "registry": registry}
            if inst.kind == "counter":
                collector: Any = prom.Counter(inst.name, inst.help, **options)
            elif inst.kind == "histogram":
                collector = prom.Histogram(inst.name, inst.help, buckets=BUCKETS, **options)
            else:
                collector = prom.Gauge(inst.name, inst.help, **options)
            self.collectors[inst] = collector

    def record(self, instrument: Instrument, value: float, labels: Sequence[str]) -> None:
        collector = self.collectors[instrument]
        if labels:
            collector = collector.labels(*labels)
        kind = instrument.kind
        if kind == "counter":
            collector.inc(value)
        elif kind == "histogram":
            collector.observe(value)
        elif kind == "updown":
            collector.inc(value)
        else:
            collector.set(value)


_prometheus_sinks: weakref.WeakKeyDictionary[Any, _PrometheusSink] = weakref.WeakKeyDictionary()
_prometheus_lock = threading.Lock()


def prometheus_sink(registry: Any = None) -> _PrometheusSink:
    """The sink for ``registry`` (default: ``prometheus_client.REGISTRY``), made once."""
    try:
        import prometheus_client
    except ImportError:
        raise ImportError(
            "Prometheus metrics need prometheus_client: pip install 'ostinato[otel]'"
        ) from None
    if registry is None:
        registry = prometheus_client.REGISTRY
    if not isinstance(registry, prometheus_client.CollectorRegistry):
        raise TypeError(
            f"prometheus_registry must be a prometheus_client.CollectorRegistry, not "
            f"{type(registry).__name__}"
        )
    with _prometheus_lock:
        sink = _prometheus_sinks.get(registry)
        if sink is None:
            sink = _prometheus_sinks[registry] = _PrometheusSink(registry)
        return sink


class _OpenTelemetrySink:
    def __init__(self, meter_provider: Any) -> None:
        from . import __version__

        meter = meter_provider.get_meter("ostinato", __version__)
        self.instruments: dict[Instrument, Any] = {}
        for inst in INSTRUMENTS:
            make = {
                "counter": meter.create_counter,
                "histogram": meter.create_histogram,
                "updown": meter.create_up_down_counter,
                "gauge": meter.create_gauge,
            }[inst.kind]
            self.instruments[inst] = make(inst.name, unit=inst.unit, description=inst.help)

    def record(self, instrument: Instrument, value: float, labels: Sequence[str]) -> None:
        attributes = dict(zip(instrument.labels, labels, strict=True)) if labels else None
        target = self.instruments[instrument]
        kind = instrument.kind
        if kind in ("counter", "updown"):
            target.add(value, attributes)
        elif kind == "histogram":
            target.record(value, attributes)
        else:
            target.set(value, attributes)


def opentelemetry_sink(meter_provider: Any) -> _OpenTelemetrySink | None:
    """The sink for ``meter_provider``; None: the global provider when OpenTelemetry is
    installed (no sink when it is not, or when the provider is a no-op one)."""
    try:
        from opentelemetry import metrics
    except ImportError:
        if meter_provider is not None:
            raise ImportError(
                "meter_provider needs OpenTelemetry: pip install 'ostinato[otel]'"
            ) from None
        return None
    if meter_provider is None:
        meter_provider = metrics.get_meter_provider()
    if not callable(getattr(meter_provider, "get_meter", None)):
        raise TypeError(
            "meter_provider must be an OpenTelemetry MeterProvider, not "
            f"{type(meter_provider).__name__}"
        )
    if isinstance(meter_provider, metrics.NoOpMeterProvider):
        return None
    return _OpenTelemetrySink(meter_provider)


def build_metrics(meter_provider: Any, prometheus: bool, prometheus_registry: Any) -> Metrics:
    sinks: list[Sink] = []
    otel = opentelemetry_sink(meter_provider)
    if otel is not None:
        sinks.append(otel)
    if prometheus or prometheus_registry is not None:
        sinks.append(prometheus_sink(prometheus_registry))
    return Metrics(sinks)
