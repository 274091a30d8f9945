"""Core engine benchmarks (issue 2), on SQLite with default durability, one process.

    python benchmarks/bench_core.py [--workflows 500]
        [--only throughput,latency,replay,rss,observability] [--samples 200]
        [--replay-activities 10000] [--parked 10000] [--rounds 3]

(a) throughput: N workflows x 3 sequential no-op activities, workflows/s. Baseline in the
    same script: bare SQLite transactions/s with the same durability (one fsync'd commit
    each), so the figure can be read as "engine cost in commits".
(b) latency: start-to-result of a 1-activity workflow, sequential, p50/p90/p99.
(c) replay: rebuild a run with 10,000 completed activities from a cold cache. Baseline:
    orjson.loads of the same history bytes.
(d) RSS of 10,000 runs parked on a timer in one worker's cache.
(e) observability overhead: the throughput of (a) with tracing and metrics off (no-op
    providers), as an app gets them with nothing configured (OpenTelemetry installed, no
    provider set), and with each on: tracing (the OpenTelemetry SDK, a batch span processor),
    Prometheus metrics, OpenTelemetry metrics (the SDK, an in-memory reader), and together;
    in alternating rounds in the same process.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import ostinato
from ostinato import _definition, _events, activity, workflow
from ostinato._payloads import default_converter
from ostinato._run import WorkflowRun
from ostinato.testing import replay


@activity.defn
async def noop(i: int) -> int:
    return i


@workflow.defn
async def three_steps(i: int) -> int:
    a = await workflow.execute_activity(noop, i)
    b = await workflow.execute_activity(noop, a)
    return await workflow.execute_activity(noop, b)


@workflow.defn
async def one_step(i: int) -> int:
    return await workflow.execute_activity(noop, i)


@workflow.defn
async def many_steps(n: int) -> int:
    total = 0
    for i in range(n):
        total += await workflow.execute_activity(noop, i)
    return total


@workflow.defn
async def parked() -> None:
    await workflow.sleep(3600)


def sqlite_baseline(path: Path, seconds: float = 1.0) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 100,))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def run_three_steps(
    path: Path, n: int, client_options: dict[str, Any], worker_options: dict[str, Any]
) -> tuple[float, float]:
    """Workflows/s of n 3-activity workflows started at once on a fresh SQLite file, and the
    process's CPU time per workflow (every thread), in ms."""
    backend = ostinato.connect(f"sqlite:///{path}")
    client = ostinato.Client(backend, **client_options)
    async with ostinato.Worker(
        backend, workflows=[three_steps], activities=[noop], **worker_options
    ):
        start, cpu = time.perf_counter(), time.process_time()
        handles = await asyncio.gather(*(client.start_workflow(three_steps, i) for i in range(n)))
        results = await asyncio.gather(*(h.result(timeout=600) for h in handles))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert results == list(range(n))
    await backend.close()
    return n / elapsed, cpu / n * 1000


async def observability(tmp: Path, n: int, rounds: int) -> None:
    import prometheus_client
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        spans = 0

        def export(self, spans: Any) -> SpanExportResult:
            Counting.spans += len(spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Counting()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    no_tracing = {"tracer_provider": trace.NoOpTracerProvider()}
    no_meter = {"meter_provider": metrics.NoOpMeterProvider()}
    tracing = {"tracer_provider": tracer_provider}
    prometheus = {"prometheus_registry": prometheus_client.CollectorRegistry()}
    otel_metrics = {"meter_provider": meter_provider}
    # name -> (client options, worker options)
    configs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "off": (no_tracing, {**no_tracing, **no_meter}),
        "default": ({}, {}),
        "tracing": (tracing, {**tracing, **no_meter}),
        "prometheus": (no_tracing, {**no_tracing, **no_meter, **prometheus}),
        "otel-metrics": (no_tracing, {**no_tracing, **otel_metrics}),
        "tracing+prometheus": (tracing, {**tracing, **no_meter, **prometheus}),
        "all": (tracing, {**tracing, **otel_metrics, **prometheus}),
        # The same as "off", last in each round: how far apart equal runs land (the noise).
        "off again": (no_tracing, {**no_tracing, **no_meter}),
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    cpus: dict[str, list[float]] = {name: [] for name in configs}
    names = list(configs)
    for r in range(rounds):
        # Each round starts at another config: none is always first (or after "all").
        for name in names[r % len(names) :] + names[: r % len(names)]:
            client_options, worker_options = configs[name]
            path = tmp / f"observability-{name.replace(' ', '-')}-{r}.db"
            rate, cpu = await run_three_steps(path, n, client_options, worker_options)
            rates[name].append(rate)
            cpus[name].append(cpu)
            # Spans still queued for export would run on the next config's time.
            tracer_provider.force_flush()
            gc.collect()
    off, off_cpu = statistics.median(rates["off"]), statistics.median(cpus["off"])
    print(
        f"(e) observability overhead, {n} workflows x 3 activities, median of {rounds} "
        f"alternating rounds ({Counting.spans:,} spans exported); throughput and CPU time per "
        "workflow (all threads; steadier than throughput on a busy machine):"
    )
    for name in configs:
        rate, cpu = statistics.median(rates[name]), statistics.median(cpus[name])
        print(
            f"    {name:>18}: {rate:7,.0f} wf/s ({(off - rate) / off * 100:+5.1f}% vs off), "
            f"{cpu:.2f} ms CPU/wf ({(cpu - off_cpu) / off_cpu * 100:+5.1f}%)"
        )


async def throughput(tmp: Path, n: int) -> None:
    base = sqlite_baseline(tmp / "baseline.db")
    backend = ostinato.connect(f"sqlite:///{tmp / 'throughput.db'}")
    client = ostinato.Client(backend)
    async with ostinato.Worker(backend, workflows=[three_steps], activities=[noop]) as worker:
        start = time.perf_counter()
        # Started concurrently, as requests of a web service would (group commit batches
        # the starts).
        handles = await asyncio.gather(*(client.start_workflow(three_steps, i) for i in range(n)))
        results = await asyncio.gather(*(h.result(timeout=600) for h in handles))
        elapsed = time.perf_counter() - start
        assert results == list(range(n))
        stats = dict(worker.stats)
    stats["sqlite_transactions"] = getattr(backend, "transactions", None)
    stats["sqlite_operations"] = getattr(backend, "operations", None)
    await backend.close()
    rate = n / elapsed
    print(
        f"(a) throughput: {n} workflows x 3 activities in {elapsed:.2f}s = {rate:,.0f} wf/s "
        f"(baseline: {base:,.0f} bare fsync'd SQLite commits/s; "
        f"{rate / base:.3f} workflows per bare commit) stats={stats}"
    )


async def latency(tmp: Path, n: int = 200) -> None:
    backend = ostinato.connect(f"sqlite:///{tmp / 'latency.db'}")
    client = ostinato.Client(backend)
    samples = []
    async with ostinato.Worker(backend, workflows=[one_step], activities=[noop]):
        warmup = min(20, n)
        for i in range(n + warmup):
            start = time.perf_counter()
            handle = await client.start_workflow(one_step, i)
            await handle.result(timeout=30)
            if i >= warmup:  # warm-up excluded
                samples.append((time.perf_counter() - start) * 1000)
    await backend.close()
    samples.sort()
    q = statistics.quantiles(samples, n=100)
    print(
        f"(b) start-to-result latency, 1 activity, {n} sequential runs: p50 {q[49]:.2f} ms, "
        f"p90 {q[89]:.2f} ms, p99 {q[98]:.2f} ms"
    )


def build_history(n: int) -> list[bytes]:
    """Drive a run through n activities the way a worker would, and return its history."""
    run_id = "1" * 32
    run = WorkflowRun(
        definition=_definition.workflow_definition(many_steps),
        workflow_name="many_steps",
        instance_id="replay-bench",
        run_id=run_id,
        queue="default",
        converter=default_converter(),
        deadlock_timeout=None,
    )
    history: list[bytes] = []
    started = _events.workflow_started(
        "many_steps",
        b"[%d]" % n,
        instance_id="replay-bench",
        run_id=run_id,
        queue="default",
        start_time=1_700_000_000.0,
        execution_deadline=None,
    )
    t = 1_700_000_000_000_000
    run.step(t, [started])
    history += run.reducer.take_new_events()
    run.reducer.take_commands()
    for i in range(n):
        t += 1000
        run.step(t, [_events.activity_completed(i + 1, b"%d" % i, 1)])
        history += run.reducer.take_new_events()
        run.reducer.take_commands()
    assert run.closed
    run.dispose()
    return history


def replay_bench(n: int = 10_000) -> None:
    history = build_history(n)
    size = sum(map(len, history))
    timings = []
    for _ in range(5):
        gc.collect()
        start = time.perf_counter()
        replay(many_steps, history)
        timings.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for raw in history:
        orjson.loads(raw)
    parse = (time.perf_counter() - start) * 1000
    print(
        f"(c) cold replay of {n:,} completed activities ({len(history):,} events, "
        f"{size / 1e6:.1f} MB): best {min(timings):.1f} ms, median "
        f"{statistics.median(timings):.1f} ms (baseline: orjson.loads of every event "
        f"{parse:.1f} ms; ratio {min(timings) / parse:.1f}x)"
    )


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def rss(tmp: Path, n: int = 10_000) -> None:
    backend = ostinato.connect(f"sqlite:///{tmp / 'rss.db'}")
    client = ostinato.Client(backend)
    await backend.open()
    for i in range(n):
        await client.start_workflow(parked, id=f"parked-{i}")
    gc.collect()
    before = rss_mb()
    async with ostinato.Worker(backend, workflows=[parked], workflow_cache_size=n) as worker:
        while len(worker.cache) < n:
            await asyncio.sleep(0.1)
        gc.collect()
        after = rss_mb()
    await backend.close()
    print(
        f"(d) RSS of {n:,} runs parked on a timer in the cache: +{after - before:.1f} MB "
        f"({(after - before) * 1024 / n:.1f} KB per run; process {after:.0f} MB)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--only", default="throughput,latency,replay,rss,observability")
    parser.add_argument("--samples", type=int, default=200, help="sequential runs for (b)")
    parser.add_argument("--replay-activities", type=int, default=10_000, help="size of (c)")
    parser.add_argument("--parked", type=int, default=10_000, help="cached runs for (d)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of (e)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"python {sys.version.split()[0]}, ostinato {ostinato.__version__}, pid {os.getpid()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "throughput" in only:
            await throughput(tmp, args.workflows)
        if "latency" in only:
            await latency(tmp, args.samples)
        if "replay" in only:
            replay_bench(args.replay_activities)
        if "rss" in only:
            await rss(tmp, args.parked)
        if "observability" in only:
            await observability(tmp, args.workflows, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
