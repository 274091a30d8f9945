"""Metrics end to end: real workflows on real workers, then a real scrape of ``/metrics``
(and the OpenTelemetry SDK's in-memory reader), checking the values."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
import wsgiref.simple_server
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import ostinato
import ostinato.metrics
import prometheus_client
import pytest
from e2e_support import harness
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from ostinato import ApplicationError, activity, workflow
from prometheus_client.parser import text_string_to_metric_families

_calls: dict[str, int] = {}


@activity.defn
async def step(x: int) -> int:
    return x + 1


@activity.defn
async def flaky(key: str) -> str:
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] == 1:
        raise ApplicationError("try again", type="Flaky")
    return key


@activity.defn
async def broken() -> None:
    raise ApplicationError("no", type="Broken", non_retryable=True)


_RETRY = ostinato.RetryPolicy(initial_interval=timedelta(milliseconds=10))


@workflow.defn
async def good(x: int) -> int:
    y = await workflow.execute_activity(step, x)
    await workflow.execute_activity(flaky, workflow.info().run_id, retry=_RETRY)
    return y


@workflow.defn
async def bad() -> None:
    await workflow.execute_activity(broken)


@workflow.defn
async def waits() -> None:
    await workflow.signal_channel("never").receive()


@workflow.defn(name="drifts")
async def drifts_v1() -> None:
    await workflow.execute_activity(step, 1)
    await workflow.signal_channel("go").receive()


@workflow.defn(name="drifts")
async def drifts_v2() -> None:  # a deploy that changed the code under a running run
    await workflow.execute_activity(flaky, "x")
    await workflow.signal_channel("go").receive()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


CLOSED = "ostinato_workflows_closed_total"
CACHE_SIZE = "ostinato_workflow_cache_size"


async def scrape_until(url: str, done: Callable[[Samples], bool], timeout: float = 10) -> Samples:
    """Scrape until ``done`` holds (then return what was scraped) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        samples = parse(await asyncio.to_thread(scrape, url))
        if done(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return str(response.read().decode())


@pytest.mark.parametrize("backend_url", ["memory", "sqlite", "postgres"], indirect=True)
async def test_the_worker_serves_metrics_of_real_runs(backend_url: str) -> None:
    registry = prometheus_client.CollectorRegistry()
    async with harness(backend_url, 10_000) as h:
        worker = h.worker(
            [good, bad, waits],
            [step, flaky, broken],
            metrics_port=0,
            prometheus_registry=registry,
        )
        async with worker as w:
            assert w.metrics_port  # the port it took
            handles = [await h.client.start_workflow(good, i) for i in range(3)]
            assert [await handle.result(timeout=20) for handle in handles] == [1, 2, 3]
            failing = await h.client.start_workflow(bad)
            with pytest.raises(ostinato.WorkflowFailedError):
                await failing.result(timeout=20)
            waiting = await h.client.start_workflow(waits, id="waiting-run")
            while (await waiting.describe()).history_length == 0:
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{w.metrics_port}/metrics"
            # A worker reports a task once its commit returned: a client may see the run
            # move on a moment before the metrics do.
            samples = await scrape_until(url, lambda s: value(s, CACHE_SIZE) == 1)
            await waiting.cancel()
            with pytest.raises(ostinato.WorkflowCancelledError):
                await waiting.result(timeout=20)
            samples = await scrape_until(
                url,
                lambda s: (
                    value(s, CLOSED, workflow="waits", status="canceled") == 1
                    and value(s, CACHE_SIZE) == 0
                ),
            )
        port = w.metrics_port
    with pytest.raises(OSError):  # the endpoint stops with the worker
        await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")

    started = "ostinato_workflows_started_total"
    assert value(samples, started, workflow="good", queue="default") == 3
    assert value(samples, started, workflow="bad") == 1
    assert value(samples, started, workflow="waits") == 1
    closed = CLOSED
    assert value(samples, closed, workflow="good", status="completed") == 3
    assert value(samples, closed, workflow="bad", status="failed") == 1
    assert value(samples, closed, workflow="waits", status="canceled") == 1
    assert value(samples, closed, workflow="good", status="failed") == 0

    attempts = "ostinato_activity_attempts_total"
    assert value(samples, attempts, activity="step", outcome="completed") == 3
    assert value(samples, attempts, activity="flaky", outcome="retrying") == 3
    assert value(samples, attempts, activity="flaky", outcome="completed") == 3
    assert value(samples, attempts, activity="broken", outcome="failed") == 1
    failures = "ostinato_activity_failures_total"
    assert value(samples, failures, activity="flaky", error_type="Flaky") == 3
    assert value(samples, failures, activity="broken", error_type="Broken") == 1
    assert value(samples, "ostinato_activity_attempt_seconds_count", activity="step") == 3
    assert value(samples, "ostinato_activity_attempt_seconds_count", activity="flaky") == 6
    # Every attempt counts its time in the queue (tests/test_schedule_to_start.py: values).
    s2s = "ostinato_activity_schedule_to_start_seconds_count"
    assert value(samples, s2s, activity="flaky") == 6
    wf_s2s = "ostinato_workflow_schedule_to_start_seconds_count"

    # good: 4 workflow tasks each (start, step done, flaky failed is no task, flaky done);
    # at least one per run and the later ones found the run cached.
    tasks = value(samples, "ostinato_workflow_task_seconds_count", workflow="good")
    assert tasks >= 9
    assert value(samples, wf_s2s, workflow="good") == tasks  # every workflow task
    assert value(samples, "ostinato_workflow_cache_hits_total") >= tasks - 3
    assert value(samples, "ostinato_workflow_cache_misses_total") == 0
    assert value(samples, CACHE_SIZE) == 0  # every run closed
    assert value(samples, "ostinato_workflow_task_seconds_sum", workflow="good") > 0

    # Bounded labels: no instance or run id anywhere.
    label_values = {v for (_, labels), _ in samples.items() for _, v in labels}
    assert "waiting-run" not in label_values
    assert not any(len(v) == 32 for v in label_values)


async def test_replays_evictions_and_nondeterminism_are_counted(tmp_path: Any) -> None:
    registry = prometheus_client.CollectorRegistry()
    async with harness(f"sqlite:///{tmp_path}/db.sqlite", 1) as h:
        async with h.worker(
            [drifts_v1, waits], [step], prometheus_registry=registry, workflow_cache_size=1
        ) as w:
            drifting = await h.client.start_workflow(drifts_v1)
            for _ in range(3):
                await h.client.start_workflow(waits)
            # drifts: its first task and the one after its activity; waits: one each.
            while w.stats["workflow_tasks"] < 5 or w.busy:
                await asyncio.sleep(0.01)
        async with h.worker([drifts_v2], [flaky], prometheus_registry=registry, sticky_wait=0):
            await drifting.signal("go")
            while not (await drifting.describe()).is_blocked:
                await asyncio.sleep(0.01)
    samples = parse(prometheus_client.generate_latest(registry).decode())
    assert value(samples, "ostinato_workflow_cache_evictions_total") >= 3
    assert value(samples, "ostinato_nondeterminism_blocks_total", workflow="drifts") >= 1
    failures = "ostinato_workflow_task_failures_total"
    assert value(samples, failures, workflow="drifts", reason="nondeterminism") >= 1
    assert value(samples, "ostinato_workflow_cache_misses_total") >= 1
    assert value(samples, "ostinato_workflow_replay_seconds_count", workflow="drifts") >= 1


@pytest.mark.parametrize("backend_url", ["memory"], indirect=True)
async def test_opentelemetry_metrics(backend_url: str) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    async with (
        harness(backend_url, 10_000) as h,
        h.worker([good], [step, flaky], meter_provider=meters),
    ):
        handles = [await h.client.start_workflow(good, i) for i in range(2)]
        for handle in handles:
            await handle.result(timeout=20)
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "ostinato"
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)

    def total(name: str, **attrs: str) -> float:
        return sum(
            p.value for p in points[name] if set(attrs.items()) <= set((p.attributes or {}).items())
        )

    assert total("ostinato_workflows_started", workflow="good") == 2
    assert total("ostinato_workflows_closed", workflow="good", status="completed") == 2
    assert total("ostinato_activity_attempts", activity="flaky", outcome="retrying") == 2
    (task_seconds,) = [p for p in points["ostinato_workflow_task_seconds"]]
    assert task_seconds.count >= 6 and task_seconds.sum > 0


@pytest.fixture
def wsgi_server() -> Iterator[tuple[prometheus_client.CollectorRegistry, str]]:
    registry = prometheus_client.CollectorRegistry()
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, ostinato.metrics.prometheus_wsgi_app(registry)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry, f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("backend_url", ["memory"], indirect=True)
async def test_the_wsgi_app_serves_what_workers_of_the_process_report(
    backend_url: str, wsgi_server: tuple[Any, str]
) -> None:
    registry, url = wsgi_server
    text = await asyncio.to_thread(scrape, url)
    # Every documented metric is listed before anything was reported.
    families = {family.name for family in text_string_to_metric_families(text)}
    assert families >= {instrument.name for instrument in ostinato.metrics.INSTRUMENTS}
    async with (
        harness(backend_url, 10_000) as h,
        h.worker([good], [step, flaky], prometheus_registry=registry),
    ):
        await (await h.client.start_workflow(good, 1)).result(timeout=20)
    after = parse(await asyncio.to_thread(scrape, url))
    assert value(after, "ostinato_workflows_closed_total", status="completed") == 1


async def test_the_asgi_app_answers_a_scrape() -> None:
    registry = prometheus_client.CollectorRegistry()
    app = ostinato.metrics.prometheus_asgi_app(registry)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/metrics",
        "query_string": b"",
        "headers": [],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert "# TYPE ostinato_workflows_started_total counter" in body


def test_bad_metrics_options_are_clear_errors() -> None:
    backend = ostinato.connect("memory://")
    with pytest.raises(ValueError, match="metrics_port must be an int"):
        ostinato.Worker(backend, workflows=[good], metrics_port=70000)
    with pytest.raises(TypeError, match="prometheus_registry must be"):
        ostinato.Worker(backend, workflows=[good], prometheus_registry="default")
