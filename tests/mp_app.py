"""A worker process for the multi-process and fault tests.

    python tests/mp_app.py URL LOGDIR NAME [--lease S] [--delay S] [--die-at-commit N]

Runs one ostinato worker on the backend at URL (PostgreSQL or a SQLite file shared with other
processes) until SIGTERM. It writes:

- ``LOGDIR/NAME.ready`` once the backend is open (the test waits for it);
- ``LOGDIR/NAME.activities``: one line ``start WF STEP ATTEMPT`` per activity execution, so
  the test can tell how often each activity body ran (several processes never share a file);
- its log records (WARNING and up, plus ``ostinato.postgres`` INFO) on stderr, one per line,
  which the test captures to check what a worker says about an incident.

``--die-at-commit N`` makes the process SIGKILL itself a random fraction of a millisecond
after its N-th workflow-task commit started: a crash in the middle of a commit.

The second half of the module is for the test process: ``Fleet`` starts, kills and stops
such workers, and ``check_flow`` checks a finished ``mp_flow`` and its history.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ostinato
from ostinato import RetryPolicy, activity, workflow

RETRY = RetryPolicy(initial_interval=0.05, max_interval=0.5)
_activity_log: Any = None  # the open LOGDIR/NAME.activities file
_delay = 0.0


@activity.defn
async def work(wf: str, step: int) -> str:
    info = activity.info()
    _activity_log.write(f"start {wf} {step} {info.attempt}\n")
    _activity_log.flush()
    if _delay:
        await asyncio.sleep(random.uniform(0, _delay))
    return f"{wf}:{step}"


@workflow.defn
async def mp_child(i: int) -> str:
    wf = workflow.info().instance_id
    got = await workflow.execute_activity(work, wf, 0, retry=RETRY)
    await workflow.sleep(0.02)
    return f"{got}+{i}"


@workflow.defn
async def mp_flow(i: int, signals: int) -> dict[str, Any]:
    """Two activities with a timer between them, a child workflow for every tenth, then
    ``signals`` signals on channel "sig", received in order. The child's id is WF-child."""
    wf = workflow.info().instance_id
    first = await workflow.execute_activity(work, wf, 0, retry=RETRY)
    await workflow.sleep(0.05)
    second = await workflow.execute_activity(work, wf, 1, retry=RETRY)
    child = None
    if i % 10 == 0:
        child = await workflow.execute_child(mp_child, i, id=f"{wf}-child")
    channel = workflow.signal_channel("sig")
    got = [await channel.receive() for _ in range(signals)]
    return {"i": i, "steps": [first, second], "child": child, "signals": got}


def _install_commit_crash(backend: ostinato.Backend, target: int) -> None:
    original = backend.commit_workflow_task
    calls = 0

    async def commit(task: Any, commit: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == target:
            delay = random.uniform(0, 0.002)
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        await original(task, commit)

    backend.commit_workflow_task = commit  # type: ignore[method-assign]


async def main() -> None:
    global _activity_log, _delay
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("logdir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--die-at-commit", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format=f"%(asctime)s {args.name} %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("ostinato.postgres").setLevel(logging.INFO)
    _delay = args.delay
    _activity_log = open(args.logdir / f"{args.name}.activities", "a")  # noqa: SIM115
    options: dict[str, Any] = {}
    if args.url.startswith("postgres"):
        options["max_pool_size"] = 4
    backend = ostinato.connect(args.url, **options)
    if args.die_at_commit:
        _install_commit_crash(backend, args.die_at_commit)
    await backend.open()
    (args.logdir / f"{args.name}.ready").write_text(str(os.getpid()))
    worker = ostinato.Worker(
        backend,
        workflows=[mp_flow, mp_child],
        activities=[work],
        workflow_lease=args.lease,
        activity_lease=args.lease,
        poll_interval=0.2,
        handle_signals=True,
        identity=args.name,
    )
    try:
        await worker.run()
    finally:
        await backend.close()
        _activity_log.close()


# ---- the test process's side ------------------------------------------------------------


class Fleet:
    """Worker processes running this module against one backend URL."""

    def __init__(self, url: str, logdir: Path, *options: str) -> None:
        self.url = url
        self.logdir = logdir
        self.options = options
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._count = 0

    def spawn(self, *extra: str) -> str:
        self._count += 1
        name = f"w{self._count}"
        with open(self.logdir / f"{name}.err", "wb") as err:
            self.procs[name] = subprocess.Popen(
                [sys.executable, __file__, self.url, str(self.logdir), name, *self.options, *extra],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        return name

    async def wait_ready(self, names: Iterable[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            while not (self.logdir / f"{name}.ready").exists():
                code = self.procs[name].poll()
                if code is not None:
                    raise AssertionError(
                        f"worker {name} exited with {code} before it was ready:\n"
                        + self.stderr(name)
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"worker {name} not ready after {timeout}s")
                await asyncio.sleep(0.02)

    async def start(self, count: int, *extra: str) -> list[str]:
        names = [self.spawn(*extra) for _ in range(count)]
        await self.wait_ready(names)
        return names

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.wait()

    async def stop(self, timeout: float = 30) -> dict[str, int]:
        """SIGTERM every live worker (a graceful shutdown); their exit codes."""
        for name in self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.procs[name].send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.kill(name)
                codes[name] = -signal.SIGKILL
        return codes

    def close(self) -> None:
        for name in self.alive():
            self.kill(name)

    def stderr(self, name: str) -> str:
        path = self.logdir / f"{name}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def activity_runs(self) -> collections.Counter[tuple[str, int]]:
        """How many times each (workflow id, step) activity body started, over all workers."""
        runs: collections.Counter[tuple[str, int]] = collections.Counter()
        for path in self.logdir.glob("*.activities"):
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 4:  # a process killed mid-write leaves a partial line
                    runs[(parts[1], int(parts[2]))] += 1
        return runs

    def activity_runs_of(self, name: str) -> int:
        """How many activity bodies worker ``name`` started."""
        path = self.logdir / f"{name}.activities"
        return path.read_bytes().count(b"\n") if path.exists() else 0

    def workers_with_work(self) -> list[str]:
        return sorted(path.stem for path in self.logdir.glob("*.activities") if path.stat().st_size)


def expected(wf: str, i: int, signals: int) -> dict[str, Any]:
    return {
        "i": i,
        "steps": [f"{wf}:0", f"{wf}:1"],
        "child": f"{wf}-child:0+{i}" if i % 10 == 0 else None,
        "signals": list(range(signals)),
    }


def check_history(
    wf: str, history: list[dict[str, Any]], *, activities: int, timers: int, signals: int
) -> None:
    """No gap or duplicate seq, completed exactly once, every activity result and timer
    recorded once, the signals received once each and in order."""
    seqs = [e["seq"] for e in history]
    assert seqs == list(range(1, len(history) + 1)), f"{wf}: seq not 1..n: {seqs}"
    kinds = collections.Counter(e["kind"] for e in history)
    assert kinds["workflow_started"] == 1, f"{wf}: {kinds}"
    assert kinds["workflow_completed"] == 1, f"{wf}: {kinds}"
    assert history[-1]["kind"] == "workflow_completed", f"{wf}: ends with {history[-1]}"

    def ids(kind: str) -> list[int]:
        return [e["id"] for e in history if e["kind"] == kind]

    scheduled, completed = ids("activity_scheduled"), ids("activity_completed")
    assert len(scheduled) == activities, f"{wf}: {len(scheduled)} activities scheduled"
    assert sorted(completed) == sorted(scheduled), f"{wf}: results {completed} for {scheduled}"
    assert not ids("activity_failed"), f"{wf}: an activity failed"
    started, fired = ids("timer_started"), ids("timer_fired")
    assert len(started) == timers and sorted(fired) == sorted(started), f"{wf}: timers"
    got = [e["payload"] for e in history if e["kind"] == "signal_received"]
    assert got == list(range(signals)), f"{wf}: signals received {got}"
    assert len(ids("child_scheduled")) == len(ids("child_completed")), f"{wf}: children"


async def check_flow(client: ostinato.Client, wf: str, i: int, signals: int) -> None:
    """The finished mp_flow ``wf`` (and its child): result and histories."""
    handle = client.get_handle(wf)
    assert await handle.result(timeout=5) == expected(wf, i, signals)
    history = await handle.history()
    check_history(wf, history, activities=2, timers=1, signals=signals)
    if i % 10 == 0:
        child = await client.get_handle(f"{wf}-child").history()
        check_history(f"{wf}-child", child, activities=1, timers=1, signals=0)


if __name__ == "__main__":
    asyncio.run(main())
