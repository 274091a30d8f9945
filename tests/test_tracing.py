"""OpenTelemetry tracing end to end, with the SDK's in-memory exporter: a run is one trace
under the caller's span, across workers, restarts and replays, each span emitted once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import ostinato
import pytest
from e2e_support import harness
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from ostinato import ApplicationError, activity, workflow
from ostinato._tracing import run_span_id


def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A tracer provider exporting to ``exporter`` (one per simulated process)."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


_flaky_calls: dict[str, int] = {}


@activity.defn
async def double(x: int) -> int:
    return x * 2


@activity.defn
async def flaky(key: str) -> str:
    _flaky_calls[key] = _flaky_calls.get(key, 0) + 1
    if _flaky_calls[key] == 1:
        raise ApplicationError("first attempt fails", type="Flaky")
    return "ok"


@workflow.defn
async def child_wf(x: int) -> int:
    return await workflow.execute_activity(double, x)


@workflow.defn
async def parent_wf(x: int) -> int:
    y = await workflow.execute_activity(double, x)
    await workflow.sleep(timedelta(milliseconds=50))
    go = await workflow.signal_channel("go", int).receive()
    z = await workflow.execute_child(child_wf, y + go)
    await workflow.execute_activity(flaky, workflow.info().run_id, retry=_fast_retry())
    return z


def _fast_retry() -> ostinato.RetryPolicy:
    return ostinato.RetryPolicy(initial_interval=timedelta(milliseconds=10), max_attempts=3)


@workflow.defn
async def steps_then_signal(n: int) -> int:
    total = 0
    for i in range(n):
        total += await workflow.execute_activity(double, i)
    total += await workflow.signal_channel("more", int).receive()
    for i in range(n):
        total += await workflow.execute_activity(double, i)
    return total


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = by_name(spans, name)
    assert len(found) == 1, f"{name}: {[s.name for s in spans]}"
    return found[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.mark.parametrize("backend_url", ["memory", "sqlite", "postgres"], indirect=True)
async def test_a_run_is_one_trace_under_the_callers_span(backend_url: str) -> None:
    exporter = InMemorySpanExporter()
    tp = provider(exporter)
    async with harness(backend_url, 10_000) as h:
        client = ostinato.Client(h.backend, tracer_provider=tp)
        async with h.worker([parent_wf, child_wf], [double, flaky], tracer_provider=tp):
            with tp.get_tracer("app").start_as_current_span("POST /orders") as request:
                handle = await client.start_workflow(parent_wf, 3, id="traced")
            await handle.signal("go", 1)
            assert await handle.result(timeout=20) == 14
    spans = exporter.get_finished_spans()
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}

    start = one(spans, "StartWorkflow:parent_wf")
    assert parent_id(start) == request.get_span_context().span_id
    assert start.kind is trace.SpanKind.CLIENT
    run = one(spans, "RunWorkflow:parent_wf")
    assert parent_id(run) == start.context.span_id
    assert run.attributes is not None and run.attributes["ostinato.status"] == "completed"
    assert run.attributes["ostinato.instance_id"] == "traced"
    assert run.start_time is not None and start.start_time is not None
    assert run.end_time is not None and run.start_time <= run.end_time
    # The run span covers the run: from its start to after its last activity.
    activities = by_name(spans, "RunActivity:double")
    assert len(activities) == 2
    for span in [*activities, *by_name(spans, "RunActivity:flaky")]:
        assert span.end_time is not None and span.end_time <= run.end_time
        assert span.start_time is not None and span.start_time >= run.start_time

    events = [(e.name, dict(e.attributes or {})) for e in run.events]
    names = [name for name, _ in events]
    assert names.index("timer started") < names.index("timer fired")
    assert ("signal", {"signal.name": "go"}) in events
    assert any(n == "child started" and a["child.workflow"] == "child_wf" for n, a in events)
    assert "child completed" in names

    child = one(spans, "RunWorkflow:child_wf")
    assert parent_id(child) == run.context.span_id
    child_activity = [s for s in activities if parent_id(s) == child.context.span_id]
    parent_activity = [s for s in activities if parent_id(s) == run.context.span_id]
    assert len(child_activity) == len(parent_activity) == 1

    # One span per attempt, with its outcome.
    first, second = sorted(
        by_name(spans, "RunActivity:flaky"),
        key=lambda s: (s.attributes or {})["ostinato.activity.attempt"],
    )
    assert parent_id(first) == parent_id(second) == run.context.span_id
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["ostinato.activity.attempt"] == 1
    assert first.attributes["ostinato.activity.outcome"] == "retrying"
    assert first.attributes["error.type"] == "Flaky"
    assert first.status.status_code is trace.StatusCode.ERROR
    assert first.status.description == "first attempt fails"
    assert second.attributes["ostinato.activity.attempt"] == 2
    assert second.attributes["ostinato.activity.outcome"] == "completed"
    assert second.status.status_code is trace.StatusCode.UNSET


async def test_a_worker_restart_mid_run_keeps_one_trace_and_one_run_span(tmp_path: Any) -> None:
    """Two workers in turn on one SQLite file, each with its own tracer provider (as two
    processes would have): the run started under a request span stays under it."""
    exporter = InMemorySpanExporter()
    async with harness(f"sqlite:///{tmp_path}/db.sqlite", 10_000) as h:
        client = ostinato.Client(h.backend, tracer_provider=provider(exporter))
        app = provider(exporter).get_tracer("app")
        async with h.worker(
            [steps_then_signal], [double], tracer_provider=provider(exporter)
        ) as first:
            with app.start_as_current_span("request") as request:
                handle = await client.start_workflow(steps_then_signal, 2)
            # Two activities done, the run parked on its signal: stop between tasks (a stop
            # while claiming can leave the claimed task leased until its lease expires).
            while first.stats["workflow_tasks"] < 3 or first.busy:
                await asyncio.sleep(0.01)
        assert not by_name(exporter.get_finished_spans(), "RunWorkflow:steps_then_signal")
        async with h.worker(
            [steps_then_signal], [double], tracer_provider=provider(exporter)
        ) as second:
            await handle.signal("more", 10)
            assert await handle.result(timeout=20) == 14
        assert second.stats["replays"] == 1
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {request.get_span_context().trace_id}
    start = one(spans, "StartWorkflow:steps_then_signal")
    run = one(spans, "RunWorkflow:steps_then_signal")
    assert parent_id(run) == start.context.span_id
    activities = by_name(spans, "RunActivity:double")
    assert len(activities) == 4  # two before the restart, two after, none twice
    assert {parent_id(s) for s in activities} == {run.context.span_id}
    assert [e.name for e in run.events].count("signal") == 1


@pytest.mark.parametrize("backend_url", ["sqlite"], indirect=True)
async def test_a_run_replayed_at_every_task_emits_each_span_once(backend_url: str) -> None:
    exporter = InMemorySpanExporter()
    tp = provider(exporter)
    async with harness(backend_url, 0) as h:
        client = ostinato.Client(h.backend, tracer_provider=tp)
        async with h.worker([steps_then_signal], [double], tracer_provider=tp) as w:
            handle = await client.start_workflow(steps_then_signal, 3)
            await handle.signal("more", 1)
            assert await handle.result(timeout=20) == 13
        assert w.stats["replays"] >= 6
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == sorted(
        ["StartWorkflow:steps_then_signal", "RunWorkflow:steps_then_signal"]
        + ["RunActivity:double"] * 6
    )


@pytest.mark.parametrize("backend_url", ["memory"], indirect=True)
async def test_a_run_started_without_a_span_is_a_root_its_activities_under_it(
    backend_url: str,
) -> None:
    exporter = InMemorySpanExporter()
    tp = provider(exporter)
    async with harness(backend_url, 10_000) as h:
        client = ostinato.Client(h.backend, tracer_provider=trace.NoOpTracerProvider())
        async with h.worker([child_wf], [double], tracer_provider=tp):
            handle = await client.start_workflow(child_wf, 2)
            assert await handle.result(timeout=20) == 4
        run_id = (await handle.describe()).run_id
    spans = exporter.get_finished_spans()
    run = one(spans, "RunWorkflow:child_wf")
    assert run.parent is None
    assert run.context.span_id == run_span_id(run_id)
    (act,) = by_name(spans, "RunActivity:double")
    assert act.context.trace_id == run.context.trace_id
    assert parent_id(act) == run.context.span_id


@pytest.mark.parametrize("backend_url", ["memory"], indirect=True)
async def test_a_failed_run_span_says_why(backend_url: str) -> None:
    @workflow.defn(name="fails")
    async def fails() -> None:
        raise ApplicationError("out of stock", non_retryable=True)

    exporter = InMemorySpanExporter()
    tp = provider(exporter)
    async with harness(backend_url, 10_000) as h:
        client = ostinato.Client(h.backend, tracer_provider=tp)
        async with h.worker([fails], tracer_provider=tp):
            handle = await client.start_workflow(fails)
            with pytest.raises(ostinato.WorkflowFailedError):
                await handle.result(timeout=20)
    run = one(exporter.get_finished_spans(), "RunWorkflow:fails")
    assert run.attributes is not None and run.attributes["ostinato.status"] == "failed"
    assert run.status.status_code is trace.StatusCode.ERROR
    assert "out of stock" in (run.status.description or "")


def test_bad_tracer_provider_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="tracer_provider must be an OpenTelemetry"):
        ostinato.Client(ostinato.connect("memory://"), tracer_provider="jaeger")
    with pytest.raises(TypeError, match="meter_provider must be an OpenTelemetry"):
        ostinato.Worker(ostinato.connect("memory://"), workflows=[child_wf], meter_provider=1)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_ostinato_imports_no_telemetry_package() -> None:
    result = _python(
        "import sys, ostinato\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus'))))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_the_extra_a_tracer_provider_says_what_to_install() -> None:
    result = _python(
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "import ostinato\n"
        "ostinato.Client(ostinato.connect('memory://'))  # no provider: no tracing, fine\n"
        "try:\n"
        "    ostinato.Client(ostinato.connect('memory://'), tracer_provider=object())\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'ostinato[otel]'" in result.stdout


def test_the_global_tracer_provider_is_used_when_none_is_given() -> None:
    """Set after the worker and client were made (as an app's startup code may do)."""
    result = _python(
        """
import asyncio
import ostinato
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from ostinato import activity, workflow

@activity.defn
async def hello() -> str:
    return "hi"

@workflow.defn
async def greet() -> str:
    return await workflow.execute_activity(hello)

@workflow.defn
async def waits() -> str:
    return await workflow.signal_channel("go", str).receive()

async def main() -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with ostinato.Worker(backend, workflows=[greet, waits], activities=[hello]):
        await (await client.start_workflow(greet)).result(timeout=10)  # no provider yet
        waiting = await client.start_workflow(waits)
        while (await waiting.describe()).history_length == 0:
            await asyncio.sleep(0.01)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        await (await client.start_workflow(greet)).result(timeout=10)
        await waiting.signal("go", "now")  # a run cached before the provider was set
        await waiting.result(timeout=10)
    spans = exporter.get_finished_spans()
    print(sorted(s.name for s in spans))
    (waited,) = [s for s in spans if s.name == "RunWorkflow:waits"]
    print([e.name for e in waited.events])

asyncio.run(main())
"""
    )
    assert result.returncode == 0, result.stderr
    names, events = result.stdout.strip().splitlines()
    assert names == str(
        sorted(
            ["StartWorkflow:greet", "RunWorkflow:greet", "RunActivity:hello", "RunWorkflow:waits"]
        )
    )
    assert events == "['signal']"


def test_sync_client_start_nests_under_the_calling_threads_span(tmp_path: Any) -> None:
    exporter = InMemorySpanExporter()
    tp = provider(exporter)
    url = f"sqlite:///{tmp_path}/db.sqlite"
    with (
        ostinato.SyncClient(url, tracer_provider=tp) as client,
        tp.get_tracer("app").start_as_current_span("GET /legacy") as request,
    ):
        client.start_workflow(child_wf, 1, id="from-wsgi")
    start = one(exporter.get_finished_spans(), "StartWorkflow:child_wf")
    assert parent_id(start) == request.get_span_context().span_id
    assert start.context.trace_id == request.get_span_context().trace_id
    assert start.attributes is not None
    assert start.attributes["ostinato.instance_id"] == "from-wsgi"
