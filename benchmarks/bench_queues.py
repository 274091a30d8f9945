"""What queue limits cost per activity, and schedules per run, against the unlimited and
client-started cases in the same run.

Each workload runs ``--workflows`` workflows of ``--activities`` activities each (fanned out
at once) on the queue "q" through a real ``Worker`` and ``Client``, three ways on a fresh
store each:

- unlimited: "q" has no limits;
- limited, not binding: ``max_concurrent`` and ``rate_limit`` far above what the worker can
  reach, so the figure is the cost of checking and recording them, not of waiting;
- limited, binding: ``max_concurrent=--binding``, for the throughput a real limit gives.

Then, per backend, what a schedule costs per run it starts: ``--fires`` runs of a workflow
of one activity, started by a client (``start_workflow`` each, all at once) and fired by a
schedule (``every=1s``, ``overlap="allow_all"``: the fires missed while no worker ran,
caught up by the worker as fast as it can, on a clock moved on by ``--fires`` seconds and
then held still so no new fire joins in). Each starts from the worker's start (the
schedule's row and the clock are set up before) and ends when every run completed (read
from ``backend.stats()`` every 10 ms, both ways).

Then the claim itself, through the backend API (no worker): microseconds per
``claim_activity_tasks`` of one task from a backlog of ``--backlog`` ready tasks on "q", all
of priority 0, then of mixed priorities (0 to 9), ``--claims`` claims each (docs/queues.md
"Priority").

    python benchmarks/bench_queues.py                         # memory, sqlite, postgres
    python benchmarks/bench_queues.py --backends sqlite -w 500

PostgreSQL: ``OSTINATO_BENCH_PG_URL`` if set (each workload in a schema of its own, dropped
afterwards), else a throwaway server like the test suite's (fsync off). Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ostinato
from ostinato import activity, workflow


@activity.defn
async def step(i: int) -> int:
    return i


@workflow.defn
async def fan_out(count: int) -> int:
    results = await asyncio.gather(
        *(workflow.execute_activity(step, i, queue="q") for i in range(count))
    )
    return sum(results)


@workflow.defn
async def tick() -> int:
    return await workflow.execute_activity(step, 1)


class HeldClock:
    """A backend clock that stands still unless moved (the schedule workload's)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def completed(backend: ostinato.Backend) -> int:
    stats = await backend.stats()
    return sum(r.count for r in stats.runs if r.status == ostinato.backends.RunStatus.COMPLETED)


async def runs_from(url: str, runs: int, scheduled: bool) -> float:
    """Seconds per run, started by the client or fired by a schedule (see the docstring)."""
    clock = HeldClock()
    backend = ostinato.connect(url, clock=clock)
    client = ostinato.Client(backend)
    try:
        await backend.open()
        if scheduled:
            await client.create_schedule(
                "tick",
                tick,
                every=timedelta(seconds=1),
                overlap="allow_all",
                catchup_window=timedelta(seconds=runs + 60),
            )
            # Exactly `runs` fires (every whole second after the creation) are due now.
            clock.now = float(int(clock.now) + runs) + 0.5
        worker = ostinato.Worker(
            backend, workflows=[tick], activities=[step], max_concurrent_activities=50
        )
        async with worker:
            began = time.perf_counter()
            if not scheduled:
                for _ in range(runs):
                    await client.start_workflow(tick)
            while await completed(backend) < runs:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - began
        assert await completed(backend) == runs, "a fire ran twice or one too many"
    finally:
        await backend.close()
    return elapsed / runs


WAYS: dict[str, dict[str, Any]] = {
    "unlimited": {},
    "limited, not binding": {
        "max_concurrent": 1_000_000,
        "rate_limit": (1_000_000, timedelta(seconds=1)),
    },
}


async def workload(url: str, workflows: int, activities: int, limits: dict[str, Any]) -> float:
    """Seconds per activity."""
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    try:
        if limits:
            await client.set_queue_limits("q", **limits)
        async with ostinato.Worker(
            backend,
            workflows=[fan_out],
            activities=[step],
            queues=("default", "q"),
            max_concurrent_activities=50,
        ):
            began = time.perf_counter()
            handles = [await client.start_workflow(fan_out, activities) for _ in range(workflows)]
            for handle in handles:
                await handle.result(timeout=600)
            elapsed = time.perf_counter() - began
    finally:
        await backend.close()
    return elapsed / (workflows * activities)


async def claim_cost(url: str, backlog: int, claims: int, mixed: bool) -> float:
    """Seconds per claim of one activity task among ``backlog`` ready ones."""
    from ostinato.backends import NewActivity
    from ostinato.testing.conformance import schedule_activity, start

    backend = ostinato.connect(url)
    try:
        await backend.open()
        await start(backend, "backlog")
        # Unprioritised tasks are built as before priorities existed (no priority argument).
        acts = [
            NewActivity(i, "step", "q", b"[1]", b"{}", **({"priority": i % 10} if mixed else {}))
            for i in range(1, backlog + 1)
        ]
        await schedule_activity(backend, "backlog", *acts)
        began = time.perf_counter()
        for _ in range(claims):
            assert len(await backend.claim_activity_tasks(["q"], 300, 1)) == 1
        return (time.perf_counter() - began) / claims
    finally:
        await backend.close()


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    from bench_postgres import server

    with server(False) as (url, what):
        print(f"postgres: {what}")
        yield url


@contextlib.asynccontextmanager
async def store(kind: str, pg_url: str | None) -> AsyncIterator[str]:
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
    else:
        assert pg_url is not None
        from bench_postgres import fresh_schema

        async with fresh_schema(pg_url) as url:
            yield url


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workflows", type=int, default=200)
    parser.add_argument("-a", "--activities", type=int, default=10)
    parser.add_argument("--binding", type=int, default=8, help="max_concurrent that binds")
    parser.add_argument("-f", "--fires", type=int, default=300, help="runs per schedule way")

    parser.add_argument("--backlog", type=int, default=10_000, help="ready tasks per claim")
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["memory", "sqlite", "postgres"],
        choices=["memory", "sqlite", "postgres"],
    )
    args = parser.parse_args()
    ways = dict(WAYS)
    ways[f"limited, binding (max_concurrent={args.binding})"] = {"max_concurrent": args.binding}
    total = args.workflows * args.activities
    print(f"{args.workflows} workflows x {args.activities} activities = {total} per workload")
    with contextlib.ExitStack() as stack:
        pg_url = stack.enter_context(postgres()) if "postgres" in args.backends else None
        for kind in args.backends:
            base = None
            for way, limits in ways.items():
                async with store(kind, pg_url) as url:
                    per = await workload(url, args.workflows, args.activities, limits)
                if base is None:
                    base = per
                extra = (per - base) * 1e6
                print(
                    f"{kind:8} {way:40} {per * 1e6:8.0f} us/activity "
                    f"({1 / per:7.0f}/s; {extra:+6.0f} us, {100 * (per / base - 1):+5.1f}%)"
                )
        print(f"{args.fires} runs of a workflow of one activity per way")
        for kind in args.backends:
            base = None
            for way, scheduled in (("client-started", False), ("schedule-fired", True)):
                async with store(kind, pg_url) as url:
                    per = await runs_from(url, args.fires, scheduled)
                if base is None:
                    base = per
                extra = (per - base) * 1e6
                print(
                    f"{kind:8} {way:40} {per * 1e6:8.0f} us/run      "
                    f"({1 / per:7.0f}/s; {extra:+6.0f} us, {100 * (per / base - 1):+5.1f}%)"
                )

        for kind in args.backends:
            for mixed in (False, True):
                async with store(kind, pg_url) as url:
                    per = await claim_cost(url, args.backlog, args.claims, mixed)
                label = "claim, priorities 0..9" if mixed else "claim, priority 0"
                print(f"{kind:8} {label:40} {per * 1e6:8.0f} us/claim (backlog {args.backlog})")


if __name__ == "__main__":
    asyncio.run(main())
