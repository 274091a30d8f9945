"""A worker process for crash tests: ``python crash_app.py DB LOG [commit-crash N]``.

Each activity appends "start"/"end" lines to LOG, so the test can see which ran (and ran
twice); with ``commit-crash N`` the process SIGKILLs itself while its N-th workflow-task
commit is in flight. Activity tasks a claim (not a commit) handed out are logged too.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import threading
import time

import ostinato
from ostinato import RetryPolicy, activity, workflow

LOG = sys.argv[2] if len(sys.argv) > 2 else os.devnull


def _log(line: str) -> None:
    with open(LOG, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@activity.defn
def step(wf: str, n: int) -> str:
    _log(f"start {wf} {n}")
    time.sleep(0.05)
    _log(f"end {wf} {n}")
    return f"{wf}:{n}"


@workflow.defn
async def steps(wf: str, count: int) -> list[str]:
    out = []
    for n in range(count):
        out.append(
            await workflow.execute_activity(
                step, wf, n, retry=RetryPolicy(initial_interval=0.05, max_attempts=20)
            )
        )
        await workflow.sleep(0.01)
    return out


@workflow.defn
async def chain(wf: str, count: int) -> list[str]:
    """``steps`` without the sleeps: each activity follows the last at once (eager dispatch
    and continuing locally carry it, see test_sigkill_after_an_eager_lease)."""
    return [
        await workflow.execute_activity(
            step, wf, n, retry=RetryPolicy(initial_interval=0.05, max_attempts=20)
        )
        for n in range(count)
    ]


async def main() -> None:
    backend = ostinato.connect(f"sqlite:///{sys.argv[1]}")
    claim_activities = backend.claim_activity_tasks

    async def claim_logged(*args, **kwargs):  # type: ignore[no-untyped-def]
        tasks = await claim_activities(*args, **kwargs)
        for task in tasks:  # claimed, not handed over by a commit
            _log(f"claimed activity {task.activity_id} attempt {task.attempt}")
        return tasks

    backend.claim_activity_tasks = claim_logged  # type: ignore[method-assign]
    if len(sys.argv) > 4 and sys.argv[3] == "commit-crash":
        target = int(sys.argv[4])
        original = backend.commit_workflow_task
        calls = 0

        async def commit(task, commit):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == target:
                delay = random.uniform(0, 0.002)
                threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
            return await original(task, commit)

        backend.commit_workflow_task = commit  # type: ignore[method-assign]
    worker = ostinato.Worker(
        backend,
        workflows=[steps, chain],
        activities=[step],
        activity_lease=1.0,
        workflow_lease=1.0,
        poll_interval=0.05,
        handle_signals=True,
    )
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
