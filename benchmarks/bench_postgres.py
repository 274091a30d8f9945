"""PostgreSQL benchmarks (issue 4): the core workloads with 1 and 2 worker processes.

    python benchmarks/bench_postgres.py [--workflows 2000] [--processes 1,2]
        [--only baseline,throughput,latency,claim,tree] [--trees 20] [--result-size 100]
        [--samples 200]
        [--profile DIR]

(a) throughput: N workflows x 3 sequential no-op activities, started concurrently by a
    client process while the workers run, wf/s from the first start to the last completion.
(b) latency: start-to-result of a 1-activity workflow, sequential, p50/p90/p99.
(c) claim latency: from ``start_workflow()`` returning (its commit is done) to an idle
    worker process having claimed the task, woken by NOTIFY (clocks of one host).
(d) tree: go-workflows' tree workload with child workflows: depth 2, fanout 2, leaf fanout 2,
    2 activities per leaf (15 workflows and 16 activities per tree), ``--result-size`` bytes
    per activity result.

Baseline measured in the same run on the same server: bare ``BEGIN; INSERT; COMMIT``
transactions/s on one connection (and on 4 at once), so the figures can be read in
transactions. Worker processes are ``python bench_postgres.py --worker URL``; the client
(starting workflows, waiting for results) is this process. ``--profile DIR`` runs the workers
under cProfile and prints where their time went.

The server: ``OSTINATO_BENCH_PG_URL`` if set (each workload gets its own schema, dropped
afterwards), else a throwaway server started like the test suite's (tests/_pg.py: fsync=off,
synchronous_commit=off, so commits cost no disk flush). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import ostinato
import psycopg
from ostinato import activity, workflow

ROOT = Path(__file__).resolve().parents[1]
STATEMENT_STATS = False  # --statement-stats


# ---- workflows ------------------------------------------------------------------------------


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
async def probe() -> None:
    return None


@activity.defn
async def payload(size: int) -> str:
    return "x" * size


@workflow.defn
async def tree_leaf(activities: int, size: int) -> int:
    results = await asyncio.gather(
        *(workflow.execute_activity(payload, size) for _ in range(activities))
    )
    return sum(len(r) for r in results)


@workflow.defn
async def tree_node(depth: int, fanout: int, leaf_fanout: int, activities: int, size: int) -> int:
    """A node of go-workflows' tree: ``fanout`` child nodes per level, then ``leaf_fanout``
    leaves under each bottom node, each leaf running ``activities`` activities."""
    if depth > 0:
        children = [
            workflow.execute_child(tree_node, depth - 1, fanout, leaf_fanout, activities, size)
            for _ in range(fanout)
        ]
    else:
        children = [workflow.execute_child(tree_leaf, activities, size) for _ in range(leaf_fanout)]
    return sum(await asyncio.gather(*children))


WORKFLOWS = [three_steps, one_step, probe, tree_leaf, tree_node]
ACTIVITIES = [noop, payload]


# ---- worker processes -----------------------------------------------------------------------


async def worker_main(url: str, profile: str | None) -> None:
    """A worker process: prints "ready", then "claimed ID TIME" for every first workflow
    task it claims (for the claim latency), until SIGTERM."""
    backend = ostinato.connect(url)
    original = backend.claim_workflow_tasks

    async def claim(queues: Any, lease: float, limit: int, **options: Any) -> Any:
        tasks = await original(queues, lease, limit, **options)
        now = time.time()
        for task in tasks:
            if task.workflow_name == "probe" and task.history_length == 0:
                print(f"claimed {task.instance_id} {now:.6f}", flush=True)
        return tasks

    backend.claim_workflow_tasks = claim  # type: ignore[method-assign]
    await backend.open()
    worker = ostinato.Worker(
        backend,
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        handle_signals=True,
        max_concurrent_workflow_tasks=128,
        max_concurrent_activities=128,
    )
    profiler = cProfile.Profile() if profile else None
    print("ready", flush=True)
    if profiler is not None:
        profiler.enable()
    try:
        await worker.run()
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)  # type: ignore[arg-type]
        await backend.close()


class Workers:
    """``count`` worker processes; their "claimed" lines are collected."""

    def __init__(self, url: str, count: int, profile_dir: Path | None, label: str) -> None:
        self.claims: dict[str, float] = {}
        self.procs: list[subprocess.Popen[str]] = []
        self.profiles: list[Path] = []
        self._readers: list[threading.Thread] = []
        for n in range(count):
            command = [sys.executable, __file__, "--worker", url]
            if profile_dir is not None:
                path = profile_dir / f"{label}-{n}.prof"
                self.profiles.append(path)
                command += ["--profile", str(path)]
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)

    def wait_ready(self) -> None:
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"worker process did not start: {line!r}")
            reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "claimed":
                self.claims[parts[1]] = float(parts[2])

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def workers(url: str, count: int, profile_dir: Path | None, label: str) -> Iterator[Workers]:
    fleet = Workers(url, count, profile_dir, label)
    try:
        fleet.wait_ready()
        yield fleet
    finally:
        fleet.stop()


# ---- the server -----------------------------------------------------------------------------


@contextlib.contextmanager
def server(statement_stats: bool) -> Iterator[tuple[str, str]]:
    """(a database URL, a description of the server). ``statement_stats``: load
    pg_stat_statements into the throwaway server."""
    url = os.environ.get("OSTINATO_BENCH_PG_URL")
    if url:
        yield url, "OSTINATO_BENCH_PG_URL"
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from _pg import INSTALL_HINT, PgServer, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit(f"PostgreSQL server binaries not found; {INSTALL_HINT}")
    pg = PgServer(bindir)
    try:
        pg.init()
        if statement_stats:
            with (pg.datadir / "postgresql.conf").open("a") as conf:
                conf.write("shared_preload_libraries = 'pg_stat_statements'\n")
        pg.start()
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
            version = conn.execute("SHOW server_version").fetchone()
        if statement_stats:
            with psycopg.connect(pg.url("bench"), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION pg_stat_statements")
        yield pg.url("bench"), f"throwaway PostgreSQL {version[0] if version else '?'}"
    finally:
        pg.cleanup()


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@contextlib.asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """A URL whose ostinato tables live in a new schema, dropped afterwards."""
    schema = "bench_" + secrets.token_hex(4)
    try:
        yield with_schema(url, schema)
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


# ---- workloads ------------------------------------------------------------------------------


class CpuMeter:
    """Where the CPU went during a workload: this (client) process, the worker processes
    (once they have exited), and the whole machine (PostgreSQL is most of the rest)."""

    def __init__(self) -> None:
        self.client = time.process_time()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children = usage.ru_utime + usage.ru_stime
        self.machine = _machine_busy()
        self.wall = time.perf_counter()

    def report(self, per: int, what: str) -> str:
        client = time.process_time() - self.client
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers = usage.ru_utime + usage.ru_stime - self.children
        machine = _machine_busy() - self.machine
        other = max(machine - client - workers, 0.0)
        cores = os.cpu_count() or 1
        busy = machine / (cores * (time.perf_counter() - self.wall))
        return (
            f"CPU per {what}: client {client / per * 1000:.2f} ms, workers "
            f"{workers / per * 1000:.2f} ms, rest of machine (PostgreSQL...) "
            f"{other / per * 1000:.2f} ms; machine {busy:.0%} busy"
        )


def _machine_busy() -> float:
    """CPU seconds the machine spent not idle, since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def baseline(url: str, seconds: float = 2.0) -> tuple[float, float]:
    """Bare BEGIN; INSERT 100 bytes; COMMIT per second: on one connection, on 4 at once."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, v bytea)"
        )

    def loop(counts: list[int], index: int, stop: threading.Event) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                with conn.transaction():
                    conn.execute("INSERT INTO bench_baseline (v) VALUES (%s)", [b"x" * 100])
                counts[index] += 1

    rates = []
    for threads in (1, 4):
        counts = [0] * threads
        stop = threading.Event()
        pool = [threading.Thread(target=loop, args=(counts, i, stop)) for i in range(threads)]
        start = time.perf_counter()
        for t in pool:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in pool:
            t.join()
        rates.append(sum(counts) / (time.perf_counter() - start))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_baseline")
    return rates[0], rates[1]


async def count_completed(conn: psycopg.AsyncConnection[Any], schema: str) -> int:
    cur = await conn.execute(
        f"SELECT count(*) FROM \"{schema}\".runs WHERE status = 'completed'"  # type: ignore[arg-type]
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def wait_completed(url: str, schema: str, total: int, timeout: float = 600) -> float:
    """Poll until ``total`` runs completed; returns the time it happened (perf_counter)."""
    deadline = time.perf_counter() + timeout
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            if await count_completed(conn, schema) >= total:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {await count_completed(conn, schema)} of {total} done")
            await asyncio.sleep(0.005)


async def start_many(client: ostinato.Client, wf: Any, args: list[tuple[Any, ...]]) -> None:
    gate = asyncio.Semaphore(32)

    async def one(a: tuple[Any, ...]) -> None:
        async with gate:
            await client.start_workflow(wf, *a)

    await asyncio.gather(*(one(a) for a in args))


async def throughput(url: str, n: int, processes: int, profile: Path | None) -> str:
    async with fresh_schema(url) as schema_url:
        schema = schema_url.rsplit("schema=", 1)[1]
        backend = ostinato.connect(schema_url)
        await backend.open()  # creates the schema before the workers start
        client = ostinato.Client(backend)
        with workers(schema_url, processes, profile, f"throughput-{processes}p"):
            stats = StatementStats(url if STATEMENT_STATS else None)
            cpu = CpuMeter()
            start = time.perf_counter()
            await start_many(client, three_steps, [(i,) for i in range(n)])
            started = time.perf_counter()
            end = await wait_completed(url, schema, n)
        cpu_report = cpu.report(n, "workflow")
        statements = stats.report(n, "workflow")
        runs, _ = await client.list_workflows(limit=5)
        sample = [await client.get_handle(r.instance_id).result() for r in runs]
        await backend.close()
    assert len(sample) == 5 and all(isinstance(x, int) for x in sample)
    rate = n / (end - start)
    return (
        f"(a) throughput, {processes} worker process(es): {n} workflows x 3 activities in "
        f"{end - start:.2f}s = {rate:,.0f} wf/s (starting them took {started - start:.2f}s, "
        f"{n / (started - start):,.0f} starts/s)\n    {cpu_report}"
        + (f"\n{statements}" if statements else "")
    )


async def latency(url: str, n: int, processes: int) -> str:
    async with fresh_schema(url) as schema_url:
        backend = ostinato.connect(schema_url)
        await backend.open()
        client = ostinato.Client(backend)
        samples = []
        with workers(schema_url, processes, None, "latency"):
            stats = StatementStats(url if STATEMENT_STATS else None)
            for i in range(n + 20):
                start = time.perf_counter()
                handle = await client.start_workflow(one_step, i)
                await handle.result(timeout=30)
                if i >= 20:  # warm-up excluded
                    samples.append((time.perf_counter() - start) * 1000)
            statements = stats.report(n + 20, "workflow")
        await backend.close()
    q = statistics.quantiles(samples, n=100)
    return (
        f"(b) start-to-result, 1 activity, {n} sequential, {processes} worker process(es): "
        f"p50 {q[49]:.2f} ms, p90 {q[89]:.2f} ms, p99 {q[98]:.2f} ms"
    ) + (f"\n{statements}" if statements else "")


async def claim_latency(url: str, n: int, processes: int) -> str:
    async with fresh_schema(url) as schema_url:
        backend = ostinato.connect(schema_url)
        await backend.open()
        client = ostinato.Client(backend)
        samples = []
        with workers(schema_url, processes, None, "claim") as fleet:
            for i in range(n + 20):
                await asyncio.sleep(0.02)  # the workers are idle, waiting for a notification
                handle = await client.start_workflow(probe, id=f"probe-{i}")
                committed = time.time()
                await handle.result(timeout=30)
                if i >= 20:
                    for _ in range(100):  # the claim line may still be on its way
                        if handle.id in fleet.claims:
                            break
                        await asyncio.sleep(0.01)
                    samples.append((fleet.claims[handle.id] - committed) * 1000)
        await backend.close()
    q = statistics.quantiles(samples, n=100)
    return (
        f"(c) commit-to-claim by an idle worker (NOTIFY), {n} samples, {processes} worker "
        f"process(es): p50 {q[49]:.2f} ms, p90 {q[89]:.2f} ms, p99 {q[98]:.2f} ms"
    )


async def tree(url: str, trees: int, size: int, processes: int, profile: Path | None) -> str:
    depth, fanout, leaf_fanout, activities = 2, 2, 2, 2
    async with fresh_schema(url) as schema_url:
        schema = schema_url.rsplit("schema=", 1)[1]
        backend = ostinato.connect(schema_url)
        await backend.open()
        client = ostinato.Client(backend)
        with workers(schema_url, processes, profile, f"tree-{processes}p"):
            start = time.perf_counter()
            handles = [
                await client.start_workflow(tree_node, depth, fanout, leaf_fanout, activities, size)
                for _ in range(trees)
            ]
            per_tree = 1 + fanout + fanout**2 + fanout**2 * leaf_fanout
            end = await wait_completed(url, schema, trees * per_tree)
            results = [await h.result() for h in handles]
        await backend.close()
    leaves = fanout**depth * leaf_fanout
    assert results == [leaves * activities * size] * trees, results
    elapsed = end - start
    return (
        f"(d) tree (depth {depth}, fanout {fanout}, leaf fanout {leaf_fanout}, {activities} "
        f"activities per leaf, {size}-byte results), {trees} trees = {trees * per_tree} "
        f"workflows + {trees * leaves * activities} activities, {processes} worker "
        f"process(es): {elapsed:.2f}s, {trees / elapsed:.1f} trees/s, "
        f"{trees * per_tree / elapsed:,.0f} workflows/s"
    )


class StatementStats:
    """Server-side time per statement over one workload (``--statement-stats``)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        if url:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")

    def report(self, per: int, what: str, top: int = 12) -> str:
        if not self.url:
            return ""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT calls, total_exec_time, query FROM pg_stat_statements"
                " ORDER BY total_exec_time DESC LIMIT %s",
                [top],
            ).fetchall()
        lines = [f"    server time by statement (ms per {what}, calls per {what}):"]
        for calls, total, query in rows:
            text = " ".join(
                line for line in query.splitlines() if not line.strip().startswith("--")
            )
            text = " ".join(text.split())[:100]
            lines.append(f"    {total / per:8.3f} ms {calls / per:6.2f}x  {text}")
        return "\n".join(lines)


def print_profile(paths: list[Path], top: int = 25) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if not existing:
        return
    stats = pstats.Stats(*existing)
    print(f"--- worker profile ({', '.join(Path(p).name for p in existing)}), by own time:")
    stats.sort_stats("tottime").print_stats(top)
    print("--- by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", metavar="URL")
    parser.add_argument("--profile", metavar="DIR")
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--only", default="baseline,throughput,latency,claim,tree")
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--result-size", type=int, default=100)
    parser.add_argument("--samples", type=int, default=200, help="sequential runs for (b), (c)")
    parser.add_argument(
        "--statement-stats",
        action="store_true",
        help="print the server's time per statement (pg_stat_statements; own server only)",
    )
    args = parser.parse_args()
    if args.worker:
        await worker_main(args.worker, args.profile)
        return
    only = set(args.only.split(","))
    counts = [int(p) for p in args.processes.split(",")]
    profile_dir = Path(args.profile) if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"python {sys.version.split()[0]}, ostinato {ostinato.__version__}, {os.cpu_count()} CPUs"
    )
    global STATEMENT_STATS
    STATEMENT_STATS = args.statement_stats and not os.environ.get("OSTINATO_BENCH_PG_URL")
    with server(STATEMENT_STATS) as (url, what):
        print(f"server: {what}")
        if "baseline" in only:
            one, four = await asyncio.to_thread(baseline, url)
            print(
                f"baseline: bare BEGIN/INSERT/COMMIT {one:,.0f} tx/s on 1 connection, "
                f"{four:,.0f} tx/s on 4"
            )
        for processes in counts:
            if "throughput" in only:
                print(await throughput(url, args.workflows, processes, profile_dir), flush=True)
            if "latency" in only:
                print(await latency(url, args.samples, processes), flush=True)
            if "claim" in only:
                print(await claim_latency(url, args.samples, processes), flush=True)
            if "tree" in only:
                print(
                    await tree(url, args.trees, args.result_size, processes, profile_dir),
                    flush=True,
                )
    if profile_dir is not None:
        print_profile(sorted(profile_dir.glob("*.prof")))


if __name__ == "__main__":
    asyncio.run(main())
