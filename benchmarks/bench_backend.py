"""Raw storage-backend throughput: how many workflows per second a backend can carry.

Each workflow is the shape DESIGN.md sizes for: 1 start + 4 workflow tasks + 3 activities
(schedule a1 -> a1 done, schedule a2 -> a2 done, schedule a3 -> a3 done, complete), driven
straight against the Backend API with no workflow code, so the figures are the storage
layer's ceiling. SQLite runs twice on a fresh file: with group commit (the default) and
with one transaction per operation, both with fsync on (``durable=True``) unless
``--no-fsync`` is given.

    python benchmarks/bench_backend.py                 # 1000 workflows each way
    python benchmarks/bench_backend.py -n 5000 --backends sqlite memory
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

# An installed (or PYTHONPATH) ostinato wins; otherwise use the source tree.
sys.path.append(str(Path(__file__).resolve().parents[1] / "python"))

from ostinato._backends.memory import MemoryBackend
from ostinato._backends.sqlite import SqliteBackend
from ostinato.backends import (
    ActivityTask,
    Backend,
    NewActivity,
    NewRun,
    RunClose,
    RunStatus,
    WorkflowCommit,
    WorkflowTask,
)

ACTIVITIES = 3
QUEUES = ["default"]


def _event(seq: int, body: bytes) -> bytes:
    return b'{"seq":%d,%s}' % (seq, body)


class Driver:
    """Workers that run every workflow to completion as fast as the backend allows."""

    def __init__(self, backend: Backend, total: int, pollers: int, batch: int) -> None:
        self.backend = backend
        self.total = total
        self.pollers = pollers
        self.batch = batch
        self.closed = 0
        self.ops = 0
        self.done = asyncio.Event()

    async def workflow_task(self, task: WorkflowTask) -> None:
        n = task.history_length
        events = [_event(n + 1, b'"kind":"task_started","time":0')]
        events += [_event(n + 2 + i, item.event[1:-1]) for i, item in enumerate(task.inbox)]
        # Which step we are at follows from the history length: 2 events + 3 per later task.
        index = 0 if n == 0 else (n - 3) // 3 + 1
        commit = WorkflowCommit(new_events=events, consumed_inbox=[i.id for i in task.inbox])
        seq = n + 1 + len(task.inbox)
        if index < ACTIVITIES:
            activity_id = index + 1
            commit.new_events.append(_event(seq + 1, b'"kind":"activity_scheduled","id":%d'
                                            % activity_id))  # fmt: skip
            commit.activities.append(NewActivity(activity_id, "work", "default", b"[1]", b"{}"))
        else:
            commit.new_events.append(_event(seq + 1, b'"kind":"workflow_completed","result":1'))
            commit.close = RunClose(RunStatus.COMPLETED, b"1")
        await self.backend.commit_workflow_task(task, commit)
        self.ops += 1
        if commit.close is not None:
            self.closed += 1
            if self.closed == self.total:
                self.done.set()

    async def activity_task(self, task: ActivityTask) -> None:
        event = b'{"kind":"activity_completed","id":%d,"result":1,"attempt":%d}' % (
            task.activity_id,
            task.attempt,
        )
        await self.backend.complete_activity(task, event)
        self.ops += 1

    async def poll(self, kind: str) -> None:
        backend = self.backend
        while not self.done.is_set():
            if kind == "workflow":
                wf_tasks = await backend.claim_workflow_tasks(QUEUES, 60, self.batch)
                self.ops += 1
                work = [self.workflow_task(t) for t in wf_tasks]
            else:
                act_tasks = await backend.claim_activity_tasks(QUEUES, 60, self.batch)
                self.ops += 1
                work = [self.activity_task(t) for t in act_tasks]
            if work:
                await asyncio.gather(*work)
            else:
                await backend.wait_for_work(kind, QUEUES, 0.05)

    async def start_all(self) -> None:
        chunk = 200
        for first in range(0, self.total, chunk):
            runs = [
                NewRun(f"wf-{i}", f"run-{i}", "bench", "default", b'{"kind":"workflow_started"}')
                for i in range(first, min(first + chunk, self.total))
            ]
            await asyncio.gather(*(self.backend.create_run(r) for r in runs))
            self.ops += len(runs)

    async def run(self) -> float:
        started = time.perf_counter()
        pollers = [
            asyncio.ensure_future(self.poll(kind))
            for kind in ("workflow", "activity")
            for _ in range(self.pollers)
        ]
        await self.start_all()
        await self.done.wait()
        elapsed = time.perf_counter() - started
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        return elapsed


async def bench(label: str, backend: Backend, total: int, pollers: int, batch: int) -> None:
    await backend.open()
    driver = Driver(backend, total, pollers, batch)
    elapsed = await driver.run()
    line = (
        f"{label:<34} {total:>6} workflows in {elapsed:6.2f}s  "
        f"{total / elapsed:8.0f} workflows/s  {driver.ops / elapsed:9.0f} ops/s"
    )
    if isinstance(backend, SqliteBackend):
        per_tx = backend.operations / max(backend.transactions, 1)
        line += f"  {backend.transactions:>6} transactions ({per_tx:.1f} ops each)"
    print(line, flush=True)
    await backend.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--workflows", type=int, default=1000)
    parser.add_argument(
        "--baseline-workflows",
        type=int,
        default=None,
        help="workflows for the one-transaction-per-op run (default: -n)",
    )
    parser.add_argument("--pollers", type=int, default=4, help="claim loops per task kind")
    parser.add_argument("--batch", type=int, default=64, help="max tasks per claim")
    parser.add_argument("--no-fsync", action="store_true", help="durable=False (NORMAL)")
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "memory"], choices=["sqlite", "memory"]
    )
    parser.add_argument("--dir", default=None, help="directory for the database files")
    args = parser.parse_args()  # fmt: skip

    print(f"{args.workflows} workflows x (1 start + 4 workflow tasks + 3 activities); "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        durable = not args.no_fsync
        sync = "FULL" if durable else "NORMAL"
        if "sqlite" in args.backends:
            grouped = SqliteBackend(os.path.join(tmp, "group.db"), durable=durable)
            await bench(f"sqlite group commit ({sync})", grouped, args.workflows,
                        args.pollers, args.batch)  # fmt: skip
            single = SqliteBackend(
                os.path.join(tmp, "single.db"), durable=durable, group_commit=False
            )
            count = args.baseline_workflows or args.workflows
            await bench(f"sqlite 1 tx per op ({sync})", single, count, args.pollers, args.batch)
        if "memory" in args.backends:
            await bench("memory", MemoryBackend(), args.workflows, args.pollers, args.batch)


if __name__ == "__main__":
    asyncio.run(main())
