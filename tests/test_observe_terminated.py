"""Runs closed without a workflow task (terminated): the backend keeps them for one worker to
report, so each gets its ``RunWorkflow`` span and its ``ostinato_workflows_closed_total
{status="terminated"}`` exactly once, whichever process terminated it, whichever worker runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import ostinato
import prometheus_client
import pytest
from e2e_support import harness
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from ostinato import activity, workflow
from ostinato._tracing import run_span_id
from prometheus_client.parser import text_string_to_metric_families


@activity.defn
async def noop(x: int) -> int:
    return x


@workflow.defn
async def waiting_child() -> None:
    await workflow.signal_channel("never").receive()


@workflow.defn
async def waiting_parent() -> None:
    await workflow.execute_activity(noop, 1)
    await workflow.start_child(waiting_child, id=f"{workflow.info().instance_id}-child")
    await workflow.signal_channel("never").receive()


def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def run_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("RunWorkflow:")]


async def until(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def wait_history(handle: ostinato.WorkflowHandle, length: int) -> None:
    """Wait until the run (perhaps a child not started yet) has ``length`` events."""
    deadline = time.monotonic() + 15
    while True:
        try:
            if (await handle.describe()).history_length >= length:
                return
        except ostinato.WorkflowNotFoundError:
            pass
        assert time.monotonic() < deadline, "the run did not get there"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend_url", ["memory", "sqlite", "postgres"], indirect=True)
async def test_terminated_runs_get_one_run_span_each(backend_url: str) -> None:
    """A parent (terminated with its child by the cascade) and a run no worker ever took:
    each gets one RunWorkflow span, under the span it was started in, with status
    terminated; two tracing workers on the store emit it once between them, never again."""
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    app_exporter = InMemorySpanExporter()
    app = provider(app_exporter)
    async with harness(backend_url, 10_000) as h:
        client = ostinato.Client(h.backend, tracer_provider=app)
        with app.get_tracer("app").start_as_current_span("request") as request:
            parent = await client.start_workflow(waiting_parent, id="t-parent")
            await client.start_workflow(waiting_child, id="t-never", start_delay=timedelta(hours=1))
        async with (
            h.worker([waiting_parent, waiting_child], [noop], tracer_provider=provider(first)),
            h.worker([waiting_parent, waiting_child], [noop], tracer_provider=provider(second)),
        ):
            child = client.get_handle("t-parent-child")
            await wait_history(parent, 1)
            await wait_history(child, 1)
            assert not run_spans(first) and not run_spans(second)
            # A terminate by a client without tracing: the workers report it.
            plain = ostinato.Client(h.backend, tracer_provider=trace.NoOpTracerProvider())
            await plain.get_handle("t-parent").terminate("stop it")
            await plain.get_handle("t-never").terminate("never ran")

            await until(lambda: len(run_spans(first)) + len(run_spans(second)) == 3)
            await asyncio.sleep(0.3)  # several more polls: nothing is reported twice
        spans = run_spans(first) + run_spans(second)
        assert sorted(s.name for s in spans) == sorted(
            ["RunWorkflow:waiting_parent", "RunWorkflow:waiting_child"] * 1
            + ["RunWorkflow:waiting_child"]
        )
        # A worker started later finds nothing left to report.
        third = InMemorySpanExporter()
        async with h.worker(
            [waiting_parent, waiting_child], [noop], tracer_provider=provider(third)
        ):
            await asyncio.sleep(0.3)
        assert not run_spans(third)
        run_ids = {
            name: (await client.get_handle(name).describe()).run_id
            for name in ("t-parent", "t-parent-child", "t-never")
        }
    trace_id = request.get_span_context().trace_id
    starts = {
        (s.attributes or {})["ostinato.instance_id"]: s
        for s in app_exporter.get_finished_spans()
        if s.name.startswith("StartWorkflow:")
    }
    by_instance = {(s.attributes or {})["ostinato.instance_id"]: s for s in spans}
    assert set(by_instance) == set(run_ids)
    for instance, span in by_instance.items():
        assert span.context.trace_id == trace_id
        assert span.context.span_id == run_span_id(run_ids[instance])
        assert span.attributes is not None
        assert span.attributes["ostinato.status"] == "terminated"
        assert span.attributes["ostinato.run_id"] == run_ids[instance]
        assert span.status.status_code is trace.StatusCode.ERROR
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
    parent_span, child_span = by_instance["t-parent"], by_instance["t-parent-child"]
    assert parent_span.parent is not None
    assert parent_span.parent.span_id == starts["t-parent"].context.span_id
    assert "stop it" in (parent_span.status.description or "")
    # The child nests under its parent's run span; the run that never ran under its start.
    assert child_span.parent is not None
    assert child_span.parent.span_id == parent_span.context.span_id
    assert "parent workflow was terminated" in (child_span.status.description or "")
    never_span = by_instance["t-never"]
    assert never_span.parent is not None
    assert never_span.parent.span_id == starts["t-never"].context.span_id
    assert "never ran" in (never_span.status.description or "")
    # The parent's span shows what its history recorded before the end.
    assert any(e.name == "child started" for e in parent_span.events)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def terminated(registry: prometheus_client.CollectorRegistry, workflow_name: str) -> float:
    text = prometheus_client.generate_latest(registry).decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ostinato_workflows_closed_total"
        and s.labels.get("status") == "terminated"
        and s.labels.get("workflow") == workflow_name
    )


@pytest.mark.parametrize("backend_url", ["memory", "sqlite", "postgres"], indirect=True)
async def test_terminated_runs_are_counted_once_by_scrape(backend_url: str) -> None:
    """Two workers with their own registries (two processes): the terminated runs of their
    queue are counted once in all; a run of a queue they do not serve is left alone."""
    registries = [prometheus_client.CollectorRegistry() for _ in range(2)]
    async with harness(backend_url, 10_000) as h:
        handles = [await h.client.start_workflow(waiting_child) for _ in range(5)]
        other = await h.client.start_workflow(waiting_child, queue="elsewhere")
        async with (
            h.worker([waiting_child], prometheus_registry=registries[0]),
            h.worker([waiting_child], prometheus_registry=registries[1]),
        ):
            for handle in handles[:3]:
                await wait_history(handle, 1)
            for handle in [*handles, other]:
                await handle.terminate("enough")

            def total() -> float:
                return sum(terminated(r, "waiting_child") for r in registries)

            await until(lambda: total() == 5)
            await asyncio.sleep(0.3)
            assert total() == 5
        # The run of the other queue is reported by a worker of that queue, once.
        registry = prometheus_client.CollectorRegistry()
        async with h.worker([waiting_child], queues=["elsewhere"], prometheus_registry=registry):
            await until(lambda: terminated(registry, "waiting_child") == 1)
            await asyncio.sleep(0.2)
        assert terminated(registry, "waiting_child") == 1
        assert sum(terminated(r, "waiting_child") for r in registries) == 5


@pytest.mark.parametrize("backend_url", ["sqlite"], indirect=True)
async def test_a_worker_without_metrics_or_spans_leaves_terminated_runs_to_one_with(
    backend_url: str,
) -> None:
    async with harness(backend_url, 10_000) as h:
        handle = await h.client.start_workflow(waiting_child)
        async with h.worker([waiting_child], tracer_provider=trace.NoOpTracerProvider()):
            await wait_history(handle, 1)
            await handle.terminate("bye")
            await asyncio.sleep(0.3)
        registry = prometheus_client.CollectorRegistry()
        async with h.worker([waiting_child], prometheus_registry=registry):
            await until(lambda: terminated(registry, "waiting_child") == 1)
        assert (await h.backend.claim_closed_runs(["default"], 10)) == []
