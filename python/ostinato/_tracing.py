"""OpenTelemetry tracing: ``StartWorkflow``, ``RunWorkflow`` and ``RunActivity`` spans.

The trace context travels in history, not in memory: the client writes its
``StartWorkflow`` span's W3C ``traceparent`` into the ``workflow_started`` event's ``info``,
so whichever worker runs the run, now or after a restart, knows where the run belongs.

A run's ``RunWorkflow`` span has an id derived from the run id (``run_span_id``), so its
children can name it as their parent before it exists: activities (``RunActivity`` spans,
one per attempt, started by whichever worker runs the attempt) and child workflows (whose
``workflow_started`` carries ``child_traceparent``). The span itself is emitted once, by the
worker that commits the run's closing workflow task, with the start time from history and
the run's signals, timers and children as span events read from history; a replay, a cache
miss or another worker never emits it. A run started without a trace context gets a trace id
derived from its run id, so its activities and children still nest under it.

The pure helpers (ids, ``traceparent`` strings) need nothing installed: workflow code and
``_commit`` use them. Everything that touches OpenTelemetry imports it lazily, so ``import
ostinato`` never imports it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import os
import re
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ._events import TraceEvent

__all__ = ["RunTrace", "Tracing", "build_tracing", "run_trace"]

T = TypeVar("T")

_TRACEPARENT = re.compile(r"\A00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")


@functools.lru_cache(maxsize=4096)
def _derived(run_id: str, size: int, person: bytes) -> int:
    value = int.from_bytes(
        hashlib.blake2b(run_id.encode(), digest_size=size, person=person).digest(), "big"
    )
    return value or 1  # zero is the invalid id


def run_span_id(run_id: str) -> int:
    """The span id of the run's ``RunWorkflow`` span."""
    return _derived(run_id, 8, b"ostinato.span")


@dataclass(frozen=True, slots=True)
class RunTrace:
    """Where a run sits in a trace: its trace id, the span it runs under (None: it is the
    root) and the sampled flag."""

    trace_id: int
    parent_span_id: int | None
    flags: int
    span_id: int
    # The vendor tracestate of the start's context, passed on unchanged.
    tracestate: str | None = None

    @property
    def child_traceparent(self) -> str:
        """The ``traceparent`` of anything that runs under this run's span."""
        return traceparent(self.trace_id, self.span_id, self.flags)


def traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of a W3C ``traceparent``; None when absent or malformed
    (a tampered store loses its trace, not its run)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(match.group(3), 16)


@functools.lru_cache(maxsize=4096)
def run_trace(run_id: str, parent: str | None, tracestate: str | None = None) -> RunTrace:
    """The trace of run ``run_id`` started under ``parent`` (a ``traceparent``, or None).
    Cached: every attempt of a run's activities asks again (a ``RunTrace`` is immutable)."""
    parsed = parse_traceparent(parent)
    if parsed is None:
        return RunTrace(_derived(run_id, 16, b"ostinato.trace"), None, 1, run_span_id(run_id))
    trace_id, span_id, flags = parsed
    return RunTrace(trace_id, span_id, flags, run_span_id(run_id), tracestate)


# ---- OpenTelemetry ----------------------------------------------------------------------

# The ids the next span started by our tracer gets (see _FixedIds).
_next_ids: contextvars.ContextVar[tuple[int | None, int] | None] = contextvars.ContextVar(
    "ostinato_next_span_ids", default=None
)


class _FixedIds:
    """Wraps an SDK tracer's id generator: while ``_next_ids`` is set, the span started gets
    those ids (the ``RunWorkflow`` span, whose id its children already name); otherwise it
    asks the wrapped generator."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._random_trace_ids = bool(getattr(inner, "is_trace_id_random", lambda: False)())

    def generate_span_id(self) -> int:
        ids = _next_ids.get()
        return ids[1] if ids is not None else int(self.inner.generate_span_id())

    def generate_trace_id(self) -> int:
        ids = _next_ids.get()
        if ids is not None and ids[0] is not None:
            return ids[0]
        return int(self.inner.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        return self._random_trace_ids


class Tracing:
    """The spans of a client or a worker, on ``provider`` (None: the global provider, looked
    up at each span so that one set after the worker started is used)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import context, trace

        self._trace = trace
        self._context = context
        self._provider = provider
        self._tracer_of: tuple[Any, Any] | None = None
        # Parent contexts by span (immutable): a run's activities share their run's.
        self._parents: dict[tuple[int, int, int, str | None], Any] = {}

    @property
    def tracer(self) -> Any:
        """The tracer to use now; None while the global provider is not set (no span would
        record: skip the work)."""
        cached = self._tracer_of
        provider = self._provider
        if provider is None:
            if cached is not None:
                return cached[1]  # the global provider is set once, never replaced
            if _global_unset(self._trace):
                return None
            provider = self._trace.get_tracer_provider()
            if isinstance(provider, self._trace.ProxyTracerProvider):
                return None
        elif cached is not None and cached[0] is provider:
            return cached[1]
        from . import __version__

        tracer: Any = provider.get_tracer("ostinato", __version__)
        inner = getattr(tracer, "id_generator", None)
        if inner is not None and not isinstance(inner, _FixedIds):
            # Our own Tracer object: the user's other tracers are not touched.
            tracer.id_generator = _FixedIds(inner)
        self._tracer_of = (provider, tracer)
        return tracer

    def _parent(self, trace: RunTrace, span_id: int | None) -> Any:
        """A context whose current span is the (remote) span ``span_id`` of ``trace``."""
        trace_api = self._trace
        if span_id is None:
            return self._context.Context()  # a root span
        key = (trace.trace_id, span_id, trace.flags, trace.tracestate)
        cached = self._parents.get(key)
        if cached is not None:
            return cached
        if len(self._parents) >= 1024:
            self._parents.clear()
        state = trace_api.TraceState.from_header([trace.tracestate]) if trace.tracestate else None
        parent = trace_api.NonRecordingSpan(
            trace_api.SpanContext(
                trace.trace_id,
                span_id,
                is_remote=True,
                trace_flags=trace_api.TraceFlags(trace.flags),
                trace_state=state,
            )
        )
        context = self._parents[key] = trace_api.set_span_in_context(
            parent, self._context.Context()
        )
        return context

    @contextlib.contextmanager
    def start_workflow(
        self, name: str, instance_id: str, queue: str
    ) -> Iterator[tuple[str | None, str | None]]:
        """The client's ``StartWorkflow`` span, a child of the caller's current span; yields
        the ``traceparent`` and ``tracestate`` to store with the run (None: no valid span)."""
        trace_api = self._trace
        tracer = self.tracer
        if tracer is None:
            yield None, None
            return
        with tracer.start_as_current_span(
            f"StartWorkflow:{name}",
            kind=trace_api.SpanKind.CLIENT,
            attributes={
                "ostinato.workflow.name": name,
                "ostinato.instance_id": instance_id,
                "ostinato.queue": queue,
            },
        ) as span:
            ctx = span.get_span_context()
            if not ctx.is_valid:
                yield None, None
                return
            state = ctx.trace_state.to_header() if ctx.trace_state else None
            yield traceparent(ctx.trace_id, ctx.span_id, int(ctx.trace_flags)), state or None

    def start_activity(
        self,
        trace: RunTrace,
        name: str,
        attributes: dict[str, Any],
        start_time: float,
    ) -> Any:
        """A ``RunActivity`` span for one attempt, under the run's span (ended by
        ``end_activity``); None when no tracer is set."""
        tracer = self.tracer
        if tracer is None:
            return None
        return tracer.start_span(
            f"RunActivity:{name}",
            context=self._parent(trace, trace.span_id),
            kind=self._trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(start_time),
        )

    def current_context(self) -> Any:
        return self._context.get_current()

    async def in_context(self, ctx: Any, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` with ``ctx`` (an OpenTelemetry context) current."""
        token = self._context.attach(ctx)
        try:
            return await coro
        finally:
            self._context.detach(token)

    def use(self, span: Any) -> Any:
        """Make ``span`` current (so spans the activity code starts nest under it); the
        token for ``detach``."""
        return self._context.attach(self._trace.set_span_in_context(span))

    def detach(self, token: Any) -> None:
        self._context.detach(token)

    def end_activity(
        self,
        span: Any,
        outcome: str,
        error: tuple[str, str] | None,
        end_time: float,
    ) -> None:
        span.set_attribute("ostinato.activity.outcome", outcome)
        if error is not None:
            error_type, message = error
            span.set_attribute("error.type", error_type)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, message))
        span.end(_ns(end_time))

    def run_span(
        self,
        trace: RunTrace,
        name: str,
        attributes: dict[str, Any],
        start_time: float,
    ) -> Any:
        """The run's ``RunWorkflow`` span with its fixed ids (see the module docstring);
        not ended: the caller adds events (if it records) and ends it. None when no tracer
        is set."""
        tracer = self.tracer
        if tracer is None:
            return None
        token = _next_ids.set(
            (trace.trace_id if trace.parent_span_id is None else None, trace.span_id)
        )
        try:
            return tracer.start_span(
                f"RunWorkflow:{name}",
                context=self._parent(trace, trace.parent_span_id),
                kind=self._trace.SpanKind.INTERNAL,
                attributes=attributes,
                start_time=_ns(start_time),
            )
        finally:
            _next_ids.reset(token)

    def end_run_span(
        self,
        span: Any,
        status: str,
        failure: str | None,
        events: Sequence[TraceEvent],
        end_time: float,
    ) -> None:
        span.set_attribute("ostinato.status", status)
        for event in events:
            span.add_event(event.name, event.attributes, _ns(event.time))
        if status in ("failed", "timed_out", "terminated"):
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, failure or status))
        span.end(_ns(end_time))


def _global_unset(trace_api: Any) -> bool:
    """Whether no global tracer provider is set, cheaply: ``get_tracer_provider()`` reads the
    environment at every call until one is (a cost on every task of a worker whose process
    never sets one). The API's module global says so at once; when it is missing (another
    API version) or the environment names a provider (read once), ask the API."""
    return getattr(trace_api, "_TRACER_PROVIDER", True) is None and not _PROVIDER_IN_ENV


# OpenTelemetry builds the global provider from this variable on first use, if set.
_PROVIDER_IN_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def start_span(
    tracing: Tracing | None, name: str, instance_id: str, queue: str
) -> contextlib.AbstractContextManager[tuple[str | None, str | None]]:
    """The client's ``StartWorkflow`` span (``Tracing.start_workflow``); with tracing off,
    nothing: ``(None, None)``."""
    if tracing is None:
        return contextlib.nullcontext((None, None))
    return tracing.start_workflow(name, instance_id, queue)


def with_current_context(
    tracing: Tracing | None, coro: Coroutine[Any, Any, T]
) -> Coroutine[Any, Any, T]:
    """``coro``, to be awaited on another thread's loop, with this thread's trace context
    (``SyncClient``: its StartWorkflow span nests under the caller's request span)."""
    if tracing is None:
        return coro
    return tracing.in_context(tracing.current_context(), coro)


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def build_tracing(tracer_provider: Any) -> Tracing | None:
    """Tracing on ``tracer_provider``; None (the default): the global provider when
    OpenTelemetry is installed, no tracing when it is not. A no-op provider turns it off."""
    try:
        from opentelemetry import trace
    except ImportError:
        if tracer_provider is not None:
            raise ImportError(
                "tracer_provider needs OpenTelemetry: pip install 'ostinato[otel]'"
            ) from None
        return None
    if tracer_provider is not None and not callable(getattr(tracer_provider, "get_tracer", None)):
        raise TypeError(
            "tracer_provider must be an OpenTelemetry TracerProvider, not "
            f"{type(tracer_provider).__name__}"
        )
    if isinstance(tracer_provider, trace.NoOpTracerProvider):
        return None
    return Tracing(tracer_provider)
