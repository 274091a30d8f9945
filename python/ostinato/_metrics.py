"""The worker's metrics facade: one call per thing that happened, fanned out to the sinks.

The worker holds a ``Metrics``. With no sink (the default when neither OpenTelemetry metrics
nor Prometheus is configured) every method returns at once, so the hot path pays a method
call and nothing else. The sinks are OpenTelemetry metrics (``meter_provider=``) and
``prometheus_client`` (``Worker(metrics_port=...)`` or ``prometheus_registry=``); both are
optional imports, made only when a sink is built.

The hot path stays cheap with sinks too: counts, sums and histogram buckets are kept in a
plain in-process ``_Aggregate`` (a dict update per event), which a Prometheus scrape and
OpenTelemetry's observable counters read when they collect. Only OpenTelemetry histograms are
recorded as they happen (the API has no observable histogram).

Every instrument is in ``INSTRUMENTS`` (the list docs/metrics.md documents). Labels are
bounded: workflow and activity names, queues, statuses and outcomes, never an instance id.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

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
    "Runs closed, by status: completed, failed, canceled, timed_out, continued_as_new (by a "
    "workflow task), terminated (by the one worker that claims the terminated run).",
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
    "Time a workflow task waited in its queue: from when it became ready (its earliest event "
    "visible, after any start delay or back-off) to when a worker started it.",
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
    "Time an activity attempt waited in its queue: from when it became claimable (scheduled, "
    "or its retry time) to when a worker started it.",
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


class _Histogram:
    """Bucket counts (not cumulative; the last one is +Inf) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.sum += value


class _Aggregate:
    """Every instrument's values by label values, kept in process. Written by the workers
    (event loops, perhaps in several threads: under a lock), read by a scrape from another
    thread: readers copy (``snapshot``), which the GIL makes atomic for a dict."""

    def __init__(self, *, histograms: bool = True) -> None:
        self._lock = threading.Lock()
        # False: the sink records histograms its own way (OpenTelemetry's, as they happen).
        self.keeps_histograms = histograms
        self.values: dict[Instrument, dict[tuple[str, ...], float]] = {}
        self.histograms: dict[Instrument, dict[tuple[str, ...], _Histogram]] = {}
        for inst in INSTRUMENTS:
            if inst.kind == "histogram":
                self.histograms[inst] = {}
            else:
                self.values[inst] = {}

    def add(self, instrument: Instrument, labels: tuple[str, ...], value: float) -> None:
        values = self.values[instrument]
        with self._lock:
            values[labels] = values.get(labels, 0) + value

    def observe(self, instrument: Instrument, labels: tuple[str, ...], value: float) -> None:
        histograms = self.histograms[instrument]
        with self._lock:
            histogram = histograms.get(labels)
            if histogram is None:
                histogram = histograms[labels] = _Histogram()
            histogram.observe(value)

    def snapshot(self, instrument: Instrument) -> dict[tuple[str, ...], float]:
        return dict(self.values[instrument])

    def histogram_snapshot(
        self, instrument: Instrument
    ) -> Iterator[tuple[tuple[str, ...], list[int], float]]:
        for labels, histogram in dict(self.histograms[instrument]).items():
            yield labels, list(histogram.counts), histogram.sum


class Metrics:
    """What the worker reports. Without sinks every method returns at once."""

    def __init__(
        self, aggregates: Iterable[_Aggregate] = (), histograms: Iterable[_OtelHistograms] = ()
    ) -> None:
        self.aggregates = tuple(aggregates)
        self._histogram_aggregates = tuple(a for a in self.aggregates if a.keeps_histograms)
        self.otel_histograms = tuple(histograms)
        self.enabled = bool(self.aggregates or self.otel_histograms)

    def _add(self, instrument: Instrument, labels: tuple[str, ...], value: float = 1) -> None:
        for aggregate in self.aggregates:
            aggregate.add(instrument, labels, value)

    def _observe(self, instrument: Instrument, labels: tuple[str, ...], value: float) -> None:
        for aggregate in self._histogram_aggregates:
            aggregate.observe(instrument, labels, value)
        for histograms in self.otel_histograms:
            histograms.record(instrument, labels, value)

    def workflow_started(self, workflow: str, queue: str) -> None:
        if self.enabled:
            self._add(WORKFLOWS_STARTED, (workflow, queue))

    def workflow_schedule_to_start(self, workflow: str, queue: str, waited: float) -> None:
        if self.enabled:
            self._observe(WORKFLOW_SCHEDULE_TO_START, (workflow, queue), max(waited, 0.0))

    def workflow_closed(self, workflow: str, queue: str, status: str) -> None:
        if self.enabled:
            self._add(WORKFLOWS_CLOSED, (workflow, queue, status))

    def workflow_task(self, workflow: str, queue: str, seconds: float) -> None:
        if self.enabled:
            self._observe(WORKFLOW_TASK_SECONDS, (workflow, queue), seconds)

    def workflow_task_failed(self, workflow: str, queue: str, reason: str) -> None:
        if self.enabled:
            self._add(WORKFLOW_TASK_FAILURES, (workflow, queue, reason))
            if reason == "nondeterminism":
                self._add(NONDETERMINISM_BLOCKS, (workflow, queue))

    def activity_attempt(
        self,
        activity: str,
        queue: str,
        seconds: float | None,
        outcome: str,
        error_type: str | None = None,
    ) -> None:
        if self.enabled:
            self._add(ACTIVITY_ATTEMPTS, (activity, queue, outcome))
            if seconds is not None:
                self._observe(ACTIVITY_SECONDS, (activity, queue), seconds)
            if error_type is not None:
                self._add(ACTIVITY_FAILURES, (activity, queue, error_type))

    def activity_schedule_to_start(self, activity: str, queue: str, seconds: float) -> None:
        if self.enabled:
            self._observe(ACTIVITY_SCHEDULE_TO_START, (activity, queue), max(seconds, 0.0))

    def cache(self, *, hit: bool | None = None, size_change: int = 0, evicted: int = 0) -> None:
        """``hit``: a task found its run cached (True) or replayed it (False)."""
        if self.enabled:
            if hit is not None:
                self._add(CACHE_HITS if hit else CACHE_MISSES, ())
            if size_change:
                self._add(CACHE_SIZE, (), size_change)
            if evicted:
                self._add(CACHE_EVICTIONS, (), evicted)

    def replay(self, workflow: str, seconds: float) -> None:
        if self.enabled:
            self._observe(REPLAY_SECONDS, (workflow,), seconds)


NO_METRICS = Metrics()


# ---- Prometheus -------------------------------------------------------------------------


class _PrometheusCollector:
    """A ``prometheus_client`` collector over an ``_Aggregate``: one per registry, shared by
    every worker of the process that reports to it (a scrape shows the process's totals)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.aggregate = _Aggregate()
        from prometheus_client.utils import floatToGoString

        self._bounds = [str(floatToGoString(b)) for b in BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]

    def describe(self) -> list[Any]:
        return list(self._families(with_samples=False))

    def collect(self) -> Iterator[Any]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        agg = self.aggregate
        for inst in INSTRUMENTS:
            if inst.kind == "histogram":
                histogram = HistogramMetricFamily(inst.name, inst.help, labels=inst.labels)
                if with_samples:
                    for labels, counts, total in agg.histogram_snapshot(inst):
                        cumulative, buckets = 0, []
                        for bound, count in zip(self._bounds, counts, strict=True):
                            cumulative += count
                            buckets.append((bound, float(cumulative)))
                        histogram.add_metric(list(labels), buckets, total)
                yield histogram
                continue
            family_type = CounterMetricFamily if inst.kind == "counter" else GaugeMetricFamily
            family = family_type(inst.name, inst.help, labels=inst.labels)
            if with_samples:
                snapshot = agg.snapshot(inst)
                if not inst.labels and not snapshot:
                    snapshot = {(): 0.0}  # a gauge or counter without labels is always there
                for labels, value in snapshot.items():
                    family.add_metric(list(labels), value)
            yield family


_prometheus: weakref.WeakKeyDictionary[Any, _PrometheusCollector] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def prometheus_sink(registry: Any = None) -> _PrometheusCollector:
    """The collector of ``registry`` (default: ``prometheus_client.REGISTRY``), registered
    there once."""
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
    with _lock:
        collector = _prometheus.get(registry)
        if collector is None:
            collector = _PrometheusCollector(registry)
            registry.register(collector)
            _prometheus[registry] = collector
        return collector


# ---- OpenTelemetry ----------------------------------------------------------------------


class _OtelHistograms:
    """The synchronous histograms of one meter provider (attribute dicts made once per set
    of label values)."""

    def __init__(self, meter: Any) -> None:
        self.instruments = {
            inst: meter.create_histogram(inst.name, unit=inst.unit, description=inst.help)
            for inst in INSTRUMENTS
            if inst.kind == "histogram"
        }
        self._attributes: dict[tuple[Instrument, tuple[str, ...]], dict[str, str]] = {}

    def record(self, instrument: Instrument, labels: tuple[str, ...], value: float) -> None:
        key = (instrument, labels)
        attributes = self._attributes.get(key)
        if attributes is None:
            attributes = self._attributes[key] = dict(zip(instrument.labels, labels, strict=True))
        self.instruments[instrument].record(value, attributes)


class _OpenTelemetrySink:
    """Observable counters and up-down counters over an ``_Aggregate`` (read when the SDK
    collects), and synchronous histograms. One per meter provider."""

    def __init__(self, meter_provider: Any) -> None:
        from opentelemetry.metrics import Observation

        from . import __version__

        meter = meter_provider.get_meter("ostinato", __version__)
        self.aggregate = _Aggregate(histograms=False)  # its counters only
        self.histograms = _OtelHistograms(meter)
        aggregate = self.aggregate

        def callback(inst: Instrument) -> Any:
            def observe(_options: Any) -> list[Any]:
                return [
                    Observation(value, dict(zip(inst.labels, labels, strict=True)))
                    for labels, value in aggregate.snapshot(inst).items()
                ]

            return observe

        for inst in INSTRUMENTS:
            if inst.kind == "counter":
                make = meter.create_observable_counter
            elif inst.kind == "updown":
                make = meter.create_observable_up_down_counter
            else:
                continue
            make(inst.name, callbacks=[callback(inst)], unit=inst.unit, description=inst.help)


_opentelemetry: weakref.WeakKeyDictionary[Any, _OpenTelemetrySink] = weakref.WeakKeyDictionary()


def opentelemetry_sink(meter_provider: Any) -> _OpenTelemetrySink | None:
    """The sink of ``meter_provider``; None (no OpenTelemetry metrics) for None or a no-op
    provider. Metrics are opt-in: pass ``opentelemetry.metrics.get_meter_provider()`` for
    the global one."""
    if meter_provider is None:
        return None
    try:
        from opentelemetry import metrics
    except ImportError:
        raise ImportError(
            "meter_provider needs OpenTelemetry: pip install 'ostinato[otel]'"
        ) from None
    if not callable(getattr(meter_provider, "get_meter", None)):
        raise TypeError(
            "meter_provider must be an OpenTelemetry MeterProvider, not "
            f"{type(meter_provider).__name__}"
        )
    if isinstance(meter_provider, metrics.NoOpMeterProvider):
        return None
    with _lock:
        sink = _opentelemetry.get(meter_provider)
        if sink is None:
            sink = _opentelemetry[meter_provider] = _OpenTelemetrySink(meter_provider)
        return sink


def build_metrics(meter_provider: Any, prometheus: bool, prometheus_registry: Any) -> Metrics:
    aggregates: list[_Aggregate] = []
    histograms: list[_OtelHistograms] = []
    otel = opentelemetry_sink(meter_provider)
    if otel is not None:
        aggregates.append(otel.aggregate)
        histograms.append(otel.histograms)
    if prometheus or prometheus_registry is not None:
        aggregates.append(prometheus_sink(prometheus_registry).aggregate)
    return Metrics(aggregates, histograms)
