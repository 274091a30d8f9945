"""ostinato side by side with its peers (issue 14): DBOS and go-workflows on the same
workloads, the same machine and the same database, in one run, each figure next to the
peer's with the speed-up.

    python benchmarks/bench_peers.py [--workflows 500] [--samples 200] [--trees 20]
        [--backends sqlite,postgres] [--only client,backlog,latency3,latency1,tree]
        [--repeat 2] [--pg-url URL] [--skip-dbos] [--skip-go] [--json PATH] [--profile DIR]

Workloads (every engine: one process holding a client and one worker, a fresh database):
  client    N workflows x 3 sequential no-op activities (DBOS: steps), started one after
            another from the client while the worker runs; wf/s from the first start to the
            last result.
  backlog   the same N workflows all started first (DBOS: enqueued on a queue by a
            DBOSClient), then the worker starts (DBOS: is launched); wf/s from the worker's
            start to the last result.
  latency3  start-to-result of one 3-activity workflow, sequential, p50/p95 over M runs
            (after min(20, M) warm-up runs).
  latency1  the same with 1 activity.
  tree      go-workflows' tree: depth 2, fanout 2, leaf fanout 2, 2 activities per leaf
            (15 workflows, 16 activities per tree), 100-byte results; T trees started one
            after another. ostinato and go-workflows only.

Backends: SQLite (ostinato ``sqlite:///FILE`` with the default ``durable=True``; DBOS on its
SQLite system database with DBOS's defaults; go-workflows' SQLite backend, which runs in WAL
mode with SQLite's default ``synchronous=FULL``), and PostgreSQL with its default durability
(``fsync=on``, ``synchronous_commit=on``): a throwaway server started from the machine's
binaries the way tests/_pg.py does but *with* fsync, or ``--pg-url`` (each run gets a schema
of its own there, dropped afterwards). go-workflows v1.2.0 has no PostgreSQL backend.

Peers: DBOS is installed by this script into its own virtual environment
(``.bench-venv/dbos``, ``pip install dbos``) and runs there (benchmarks/_peer_dbos.py);
it is never a dependency of ostinato. go-workflows is built from benchmarks/go/ with the
machine's Go toolchain (modules from the Go module proxy) into ``.bench-venv/go/``. A peer
that cannot be installed or built is skipped with a message; ostinato's figures still print.

On PostgreSQL each run also reports the server's committed transactions and WAL flushes
(fsyncs) per workflow (pg_stat_database, pg_stat_wal). ``--profile DIR`` runs ostinato's
runs under cProfile and prints where the time went. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
BENCH_VENV = ROOT / ".bench-venv"
WORKLOADS = ["client", "backlog", "latency3", "latency1", "tree"]
ENGINES = ["ostinato", "DBOS", "go-workflows"]
TREE = {"depth": 2, "fanout": 2, "leaf_fanout": 2, "activities": 2}
PER_TREE = 1 + 2 + 4 + 8


# ---- ostinato's side: runs in a process of its own, like the peers -------------------------


def ostinato_driver(workload: str, url: str, n: int, profile: str | None) -> dict[str, Any]:
    import ostinato
    from ostinato import activity, workflow

    @activity.defn
    async def noop(i: int) -> int:
        return i

    @activity.defn
    async def payload(size: int) -> str:
        return "x" * size

    @workflow.defn
    async def three_steps(i: int) -> int:
        a = await workflow.execute_activity(noop, i)
        b = await workflow.execute_activity(noop, a)
        return await workflow.execute_activity(noop, b)

    @workflow.defn
    async def one_step(i: int) -> int:
        return await workflow.execute_activity(noop, i)

    @workflow.defn
    async def tree_leaf(activities: int, size: int) -> int:
        results = await asyncio.gather(
            *(workflow.execute_activity(payload, size) for _ in range(activities))
        )
        return sum(len(r) for r in results)

    @workflow.defn
    async def tree_node(depth: int, fanout: int, leaf: int, activities: int, size: int) -> int:
        if depth > 0:
            children = [
                workflow.execute_child(tree_node, depth - 1, fanout, leaf, activities, size)
                for _ in range(fanout)
            ]
        else:
            children = [workflow.execute_child(tree_leaf, activities, size) for _ in range(leaf)]
        return sum(await asyncio.gather(*children))

    async def run() -> dict[str, Any]:
        backend = ostinato.connect(url)
        await backend.open()
        client = ostinato.Client(backend)
        worker = ostinato.Worker(
            backend,
            workflows=[three_steps, one_step, tree_node, tree_leaf],
            activities=[noop, payload],
        )
        out: dict[str, Any]
        cpu_start = time.process_time()
        if workload == "backlog":
            handles = [await client.start_workflow(three_steps, i) for i in range(n)]
            async with worker:
                start = time.perf_counter()
                results = [await h.result(timeout=600) for h in handles]
                elapsed = time.perf_counter() - start
            assert results == list(range(n)), results[:10]
            out = {"seconds": elapsed, "rate": n / elapsed}
        elif workload == "client":
            async with worker:
                start = time.perf_counter()
                handles = [await client.start_workflow(three_steps, i) for i in range(n)]
                results = [await h.result(timeout=600) for h in handles]
                elapsed = time.perf_counter() - start
            assert results == list(range(n)), results[:10]
            out = {"seconds": elapsed, "rate": n / elapsed}
        elif workload in ("latency3", "latency1"):
            wf = three_steps if workload == "latency3" else one_step
            samples = []
            async with worker:
                warmup = min(20, n)
                for i in range(n + warmup):
                    start = time.perf_counter()
                    handle = await client.start_workflow(wf, i)
                    assert await handle.result(timeout=60) == i
                    if i >= warmup:
                        samples.append((time.perf_counter() - start) * 1000)
            out = quantiles(samples)
        elif workload == "tree":
            size = 100
            want = TREE["fanout"] ** TREE["depth"] * TREE["leaf_fanout"] * TREE["activities"]
            async with worker:
                start = time.perf_counter()
                args = (TREE["depth"], TREE["fanout"], TREE["leaf_fanout"], TREE["activities"])
                handles = [await client.start_workflow(tree_node, *args, size) for _ in range(n)]
                results = [await h.result(timeout=600) for h in handles]
                elapsed = time.perf_counter() - start
            assert results == [want * size] * n, results[:10]
            out = {"seconds": elapsed, "rate": n / elapsed}
            out["workflows_per_second"] = n * PER_TREE / elapsed
        else:
            raise SystemExit(f"unknown workload {workload!r}")
        # The process's CPU time (client and worker; not the database server's) per
        # workflow carried out, warm-up runs and the backlog's starts included.
        ran = n * PER_TREE if workload == "tree" else n + min(20, n) if "latency" in workload else n
        out["cpu_ms_per_wf"] = (time.process_time() - cpu_start) * 1000 / ran
        out["worker_stats"] = dict(worker.stats)
        for counter in ("transactions", "operations"):  # SQLite's writer thread
            if hasattr(backend, counter):
                out[f"sqlite_{counter}"] = getattr(backend, counter)
        out["version"] = ostinato.__version__
        await backend.close()
        return out

    if profile is None:
        return asyncio.run(run())
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return asyncio.run(run())
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def quantiles(samples: list[float]) -> dict[str, Any]:
    q = statistics.quantiles(samples, n=100) if len(samples) > 1 else samples * 99
    return {"p50": q[49], "p95": q[94], "p99": q[98], "samples": len(samples)}


# ---- the peers ----------------------------------------------------------------------------


def ensure_dbos(venv: Path) -> Path | None:
    """The Python of a virtual environment holding DBOS (created and installed on first
    use), or None with a message saying why not."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import dbos"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing DBOS into {venv} (pip install dbos) ...", flush=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "dbos", "psycopg[binary]"],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        print(
            f"DBOS skipped: could not install it into {venv} (no network?): "
            f"{str(detail).strip()[-500:]}",
            flush=True,
        )
        return None
    return python


def ensure_go(out: Path) -> Path | None:
    """The go-workflows program built from benchmarks/go (rebuilt when a source is newer),
    or None with a message saying why not."""
    go = shutil.which("go")
    if go is None:
        print("go-workflows skipped: no Go toolchain ('go') on PATH", flush=True)
        return None
    sources = [HERE / "go" / name for name in ("main.go", "go.mod", "go.sum")]
    if out.exists() and all(out.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return out
    print("building the go-workflows program (benchmarks/go) ...", flush=True)
    try:
        subprocess.run(
            [go, "build", "-o", str(out), "."],
            cwd=HERE / "go",
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        print(f"go-workflows skipped: the build failed: {str(detail).strip()[-800:]}", flush=True)
        return None
    return out


# ---- databases ----------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[tuple[str, str]]:
    """(a database URL, what it is): ``url`` as given, or a throwaway server with PostgreSQL's
    default durability (fsync, synchronous_commit and full_page_writes on)."""
    import psycopg

    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        yield (
            url,
            f"--pg-url, PostgreSQL {row[0] if row else '?'}, fsync={fsync[0] if fsync else '?'}",
        )
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from _pg import INSTALL_HINT, PgServer, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        raise SystemExit(f"PostgreSQL server binaries not found; {INSTALL_HINT}, or --pg-url")
    pg = PgServer(bindir)
    try:
        pg.init()
        # The test server turns durability off; later lines of postgresql.conf win.
        with (pg.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# bench_peers: PostgreSQL's default durability\n"
                "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
            )
        pg.start()
        with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
            row = conn.execute("SHOW server_version").fetchone()
        yield pg.url("bench"), f"throwaway PostgreSQL {row[0] if row else '?'}, fsync=on"
    finally:
        pg.cleanup()


def pg_counters(url: str) -> tuple[int, int]:
    """(transactions committed in this database, WAL flushes of the server) so far."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        try:
            wal = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
        except psycopg.Error:  # before PostgreSQL 14
            wal = None
    return (int(row[0]) if row else 0), (int(wal[0]) if wal else -1)


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


# ---- one run ------------------------------------------------------------------------------


@dataclass
class Setup:
    tmp: Path
    pg_url: str | None
    dbos: Path | None
    go: Path | None
    profile: Path | None
    results: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = field(default_factory=dict)


def size_of(workload: str, args: argparse.Namespace) -> int:
    if workload in ("client", "backlog"):
        return int(args.workflows)
    if workload == "tree":
        return int(args.trees)
    return int(args.samples)


def run_one(setup: Setup, backend: str, workload: str, engine: str, n: int) -> dict[str, Any]:
    """Run ``workload`` once for ``engine`` in a process of its own, on a fresh database."""
    tag = f"{engine.split('-')[0].lower()}-{workload}-{secrets.token_hex(3)}"
    schema = None
    if backend == "sqlite":
        path = setup.tmp / f"{tag}.db"
        url = f"sqlite:///{path}"
    else:
        assert setup.pg_url is not None
        schema = "bench_" + tag.replace("-", "_")
        url = setup.pg_url
    if engine == "ostinato":
        command = [sys.executable, __file__, "--driver", workload, "--n", str(n)]
        ost_url = url if schema is None else f"{url}{'&' if '?' in url else '?'}schema={schema}"
        command += ["--url", ost_url]
        if setup.profile is not None:
            command += ["--profile", str(setup.profile / f"{backend}-{workload}.prof")]
    elif engine == "DBOS":
        assert setup.dbos is not None
        spec = {"url": url, "schema": schema, "n": n}
        if schema is not None:
            # DBOS wants SQLAlchemy's driver name for psycopg 3.
            scheme, _, rest = url.partition("://")
            if scheme not in ("postgres", "postgresql"):
                raise SystemExit("--pg-url must be a postgresql:// URL (DBOS needs one)")
            spec["url"] = f"postgresql+psycopg://{rest}"
        command = [str(setup.dbos), str(HERE / "_peer_dbos.py"), workload, json.dumps(spec)]
    else:
        assert setup.go is not None
        command = [str(setup.go), "-workload", workload, "-db", str(path), "-n", str(n)]
    counted = backend == "postgres" and setup.pg_url is not None
    before = pg_counters(setup.pg_url) if setup.pg_url and counted else None
    try:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=setup.tmp, timeout=3600)
    finally:
        if schema is not None and setup.pg_url is not None:
            drop_schema(setup.pg_url, schema)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{engine} {workload} on {backend} failed ({proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    # Workflows the run carried out: warm-up runs included, a tree counted as its 15.
    result["workflows_run"] = (
        n * PER_TREE if workload == "tree" else n + min(20, n) if "latency" in workload else n
    )
    if before is not None and setup.pg_url is not None:
        time.sleep(0.5)  # the run's server processes report their counters as they exit
        after = pg_counters(setup.pg_url)
        result["pg_commits"] = after[0] - before[0]
        result["pg_wal_syncs"] = after[1] - before[1] if before[1] >= 0 else None
    return result


# ---- printing -----------------------------------------------------------------------------


def figure(workload: str, runs: list[dict[str, Any]]) -> tuple[float, str]:
    """(the figure compared, how it reads): the median over the runs, the range beside it."""
    key = "p50" if workload.startswith("latency") else "rate"
    values = [r[key] for r in runs]
    mid = statistics.median(values)
    spread = f" ({min(values):,.{decimals(mid)}f}-{max(values):,.{decimals(mid)}f})"
    spread = spread if len(values) > 1 else ""
    if workload.startswith("latency"):
        p95 = statistics.median(r["p95"] for r in runs)
        return mid, f"p50 {mid:.2f}{spread} / p95 {p95:.2f} ms" + server_counts(runs)
    text = f"{mid:,.{decimals(mid)}f}{spread} {'trees' if workload == 'tree' else 'wf'}/s"
    if workload == "tree":
        text += f" = {statistics.median(r['workflows_per_second'] for r in runs):,.0f} wf/s"
    return mid, text + server_counts(runs)


def server_counts(runs: list[dict[str, Any]]) -> str:
    """ostinato's CPU time and PostgreSQL's committed transactions and WAL flushes per
    workflow, if counted."""
    cpu = [r["cpu_ms_per_wf"] for r in runs if "cpu_ms_per_wf" in r]
    text = f" [{statistics.median(cpu):.2f} ms CPU per wf]" if cpu else ""
    return text + pg_counts(runs)


def pg_counts(runs: list[dict[str, Any]]) -> str:
    """PostgreSQL's committed transactions and WAL flushes per workflow, if counted."""
    commits = [r["pg_commits"] / r["workflows_run"] for r in runs if "pg_commits" in r]
    syncs = [
        r["pg_wal_syncs"] / r["workflows_run"] for r in runs if r.get("pg_wal_syncs") is not None
    ]
    if not commits:
        return ""
    text = f" [{statistics.median(commits):.1f} tx"
    text += f", {statistics.median(syncs):.1f} WAL flushes" if syncs else ""
    return text + " per wf]"


def decimals(value: float) -> int:
    return 0 if value >= 100 else 1 if value >= 10 else 2


TITLES = {
    "client": "throughput, {n} x 3 activities started one after another, worker running",
    "backlog": "throughput, backlog of {n} x 3 activities, then the worker starts",
    "latency3": "latency, 3 activities, start-to-result over {n} sequential runs",
    "latency1": "latency, 1 activity, start-to-result over {n} sequential runs",
    "tree": "tree (depth 2, fanout 2, leaf fanout 2, 2 activities per leaf), {n} trees",
}


def report(backend: str, workload: str, n: int, by_engine: dict[str, list[dict[str, Any]]]) -> str:
    lines = [f"[{backend}] {TITLES[workload].format(n=n)}:"]
    ours = by_engine.get("ostinato")
    ours_value = figure(workload, ours)[0] if ours else None
    for engine in ENGINES:
        runs = by_engine.get(engine)
        if not runs:
            continue
        value, text = figure(workload, runs)
        line = f"    {engine:<13} {text}"
        if engine != "ostinato" and ours_value:
            faster = (
                ours_value / value if not workload.startswith("latency") else value / ours_value
            )
            if faster >= 1:
                line += f"  -> ostinato {faster:.2f}x faster"
            else:
                line += f"  -> ostinato {1 / faster:.2f}x slower"
        lines.append(line)
    return "\n".join(lines)


def engines_for(setup: Setup, backend: str, workload: str) -> list[str]:
    engines = ["ostinato"]
    if setup.dbos is not None and workload != "tree":
        engines.append("DBOS")
    if setup.go is not None and backend == "sqlite":
        engines.append("go-workflows")
    return engines


def compare(setup: Setup, args: argparse.Namespace, backend: str, workloads: list[str]) -> None:
    notes = []
    if backend == "postgres" and setup.go is not None:
        notes.append("go-workflows: not run (v1.2.0 has no PostgreSQL backend)")
    if "tree" in workloads and setup.dbos is not None:
        notes.append("DBOS: not run on the tree (go-workflows' workload)")
    for note in notes:
        print(f"[{backend}] {note}", flush=True)
    for workload in workloads:
        n = size_of(workload, args)
        by_engine: dict[str, list[dict[str, Any]]] = {}
        engines = engines_for(setup, backend, workload)
        failed: set[str] = set()
        for rep in range(args.repeat):
            # Alternate the order, so neither engine always runs on the warmer machine.
            for engine in engines if rep % 2 == 0 else list(reversed(engines)):
                if engine in failed:
                    continue
                try:
                    result = run_one(setup, backend, workload, engine, n)
                except RuntimeError as exc:
                    if engine == "ostinato":
                        raise
                    # A peer that breaks costs its own figure, not ostinato's.
                    print(f"[{backend}] {engine} skipped on {workload}: {exc}", flush=True)
                    failed.add(engine)
                    continue
                result["n"] = n
                by_engine.setdefault(engine, []).append(result)
        setup.results.setdefault(backend, {})[workload] = by_engine
        print(report(backend, workload, n, by_engine), flush=True)


def print_profile(directory: Path, top: int = 30) -> None:
    for path in sorted(directory.glob("*.prof")):
        stats = pstats.Stats(str(path))
        print(f"--- ostinato profile {path.name}, by own time:")
        stats.sort_stats("tottime").print_stats(top)
        print(f"--- ostinato profile {path.name}, by cumulative time:")
        stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=500, help="N for client and backlog")
    parser.add_argument("--samples", type=int, default=200, help="M for latency3, latency1")
    parser.add_argument("--trees", type=int, default=20, help="T for tree")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine, alternated")
    parser.add_argument("--pg-url", help="a PostgreSQL database to use (schemas per run)")
    parser.add_argument("--skip-dbos", action="store_true")
    parser.add_argument("--skip-go", action="store_true")
    parser.add_argument("--dbos-venv", type=Path, default=BENCH_VENV / "dbos")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--profile", type=Path, help="cProfile ostinato's runs into DIR")
    parser.add_argument("--driver", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        out = ostinato_driver(args.driver, args.url, args.n, args.profile and str(args.profile))
        print(json.dumps(out), flush=True)
        return

    workloads = [w for w in args.only.split(",") if w]
    backends = [b for b in args.backends.split(",") if b]
    for name, given, known in (
        ("workload", workloads, WORKLOADS),
        ("backend", backends, ["sqlite", "postgres"]),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"unknown {name}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if min(args.workflows, args.samples, args.trees, args.repeat) < 1:
        parser.error("--workflows, --samples, --trees and --repeat must be at least 1")

    import ostinato

    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}, ostinato {ostinato.__version__}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        flush=True,
    )
    dbos = None if args.skip_dbos else ensure_dbos(args.dbos_venv)
    go = None if args.skip_go else ensure_go(BENCH_VENV / "go" / "peers")
    if dbos is not None:
        version = subprocess.run(
            [str(dbos), "-c", "import importlib.metadata as m; print(m.version('dbos'))"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"DBOS {version} in {args.dbos_venv}", flush=True)
    if go is not None:
        print("go-workflows v1.2.0 (benchmarks/go)", flush=True)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        setup = Setup(Path(tmp), None, dbos, go, args.profile)
        if "sqlite" in backends:
            print("[sqlite] files in a temporary directory; ostinato durable=True", flush=True)
            compare(setup, args, "sqlite", workloads)
        if "postgres" in backends:
            with postgres_server(args.pg_url) as (url, what):
                print(f"[postgres] {what}", flush=True)
                setup.pg_url = url
                compare(setup, args, "postgres", workloads)
    if args.json is not None:
        args.json.write_text(json.dumps(setup.results, indent=1))
    if args.profile is not None:
        print_profile(args.profile)


if __name__ == "__main__":
    main()
