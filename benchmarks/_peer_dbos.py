"""DBOS side of bench_peers.py: one workload, one fresh system database, JSON on stdout.

Runs in the separate virtual environment bench_peers.py creates (``pip install dbos``), never
in ostinato's: it imports nothing from ostinato, and ostinato never depends on DBOS.

    python _peer_dbos.py WORKLOAD '{"url": ..., "schema": ..., "n": ...}'

Workloads are the ones bench_peers.py runs for every engine (see its docstring); DBOS runs
steps inline in the process that runs the workflow, so "the worker" is the launched DBOS
process, and a workflow started with ``DBOS.start_workflow_async`` runs in it at once.
The backlog is enqueued on a DBOS queue by a ``DBOSClient`` before DBOS is launched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
from typing import Any

from dbos import DBOS, DBOSClient, DBOSConfig

QUEUE = "bench"
# DBOS's default queue polling interval is 1 s; the backlog timing starts at launch, so a
# short interval keeps the first poll from counting against DBOS.
QUEUE_POLLING = 0.01
RESULT_POLLING = 0.005


@DBOS.step()
async def noop(i: int) -> int:
    return i


@DBOS.workflow()
async def three_steps(i: int) -> int:
    a = await noop(i)
    b = await noop(a)
    return await noop(b)


@DBOS.workflow()
async def one_step(i: int) -> int:
    return await noop(i)


def config(spec: dict[str, Any]) -> DBOSConfig:
    cfg: DBOSConfig = {
        "name": "bench-peers",
        "system_database_url": spec["url"],
        "log_level": "WARNING",
        "run_admin_server": False,  # type: ignore[typeddict-unknown-key]
    }
    if spec.get("schema"):
        cfg["dbos_system_schema"] = spec["schema"]
    return cfg


def launch(spec: dict[str, Any]) -> None:
    cfg = config(spec)
    try:
        DBOS(config=cfg)
    except Exception:
        cfg.pop("run_admin_server", None)  # type: ignore[misc]
        DBOS(config=cfg)
    DBOS.launch()


def quantiles(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=100) if len(samples) > 1 else samples * 99
    return {"p50": q[49], "p95": q[94], "p99": q[98], "samples": len(samples)}


async def client_mode(n: int) -> dict[str, Any]:
    """n workflows started one after another while this process (the worker) runs them."""
    start = time.perf_counter()
    handles = [await DBOS.start_workflow_async(three_steps, i) for i in range(n)]
    results = [await h.get_result() for h in handles]
    elapsed = time.perf_counter() - start
    assert results == list(range(n)), results[:10]
    return {"seconds": elapsed, "rate": n / elapsed}


async def backlog_mode(spec: dict[str, Any], n: int) -> dict[str, Any]:
    """n workflows enqueued by a client before DBOS is launched; timed from the launch."""
    client = DBOSClient(
        system_database_url=spec["url"], dbos_system_schema=spec.get("schema") or "dbos"
    )
    ids = []
    for i in range(n):
        handle = await client.enqueue_async(
            {"queue_name": QUEUE, "workflow_name": three_steps.__qualname__}, i
        )
        ids.append(handle.get_workflow_id())
    client.destroy()
    start = time.perf_counter()
    launch(spec)
    results = []
    for workflow_id in ids:
        handle = await DBOS.retrieve_workflow_async(workflow_id)
        # A retrieved handle polls the database (every 1 s by default): poll finely, so
        # the wait for the last result does not count against DBOS.
        results.append(await handle.get_result(polling_interval_sec=RESULT_POLLING))
    elapsed = time.perf_counter() - start
    assert results == list(range(n)), results[:10]
    return {"seconds": elapsed, "rate": n / elapsed}


async def latency(n: int, workflow: Any) -> dict[str, Any]:
    samples = []
    warmup = min(20, n)
    for i in range(n + warmup):
        start = time.perf_counter()
        handle = await DBOS.start_workflow_async(workflow, i)
        assert await handle.get_result() == i
        if i >= warmup:
            samples.append((time.perf_counter() - start) * 1000)
    return quantiles(samples)


async def run(workload: str, spec: dict[str, Any]) -> None:
    logging.getLogger("dbos").setLevel(logging.WARNING)
    n = int(spec["n"])
    if workload == "prepare":
        launch(spec)
        await DBOS.register_queue_async(QUEUE, polling_interval_sec=QUEUE_POLLING)
        DBOS.destroy(destroy_registry=True)
        return
    if workload == "backlog":
        out = await backlog_mode(spec, n)
    else:
        launch(spec)
        if workload == "client":
            out = await client_mode(n)
        elif workload == "latency3":
            out = await latency(n, three_steps)
        elif workload == "latency1":
            out = await latency(n, one_step)
        else:
            raise SystemExit(f"unknown workload {workload!r}")
    import dbos

    out["version"] = getattr(dbos, "__version__", None) or _version()
    DBOS.destroy(destroy_registry=True)
    print(json.dumps(out), flush=True)


def _version() -> str:
    from importlib.metadata import version

    return version("dbos")


def main() -> None:
    workload, spec = sys.argv[1], json.loads(sys.argv[2])
    if workload == "backlog":
        # A first launch, in a process of its own, creates the system database and the
        # queue: the client that enqueues the backlog needs both.
        subprocess.run([sys.executable, __file__, "prepare", sys.argv[2]], check=True)
    asyncio.run(run(workload, spec))


if __name__ == "__main__":
    main()
