"""A worker process firing schedules, for crash tests:
``python schedule_app.py DB SECONDS [kill-before-start|kill-after-start N]``.

It serves ``tick`` for SECONDS, then exits; with a kill mode it SIGKILLs itself just before
(or just after) the N-th run a schedule starts, i.e. after the schedule's row holds the
decision and before (or after) the run exists.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import ostinato
from ostinato import workflow


@workflow.defn
async def tick(n: int) -> int:
    return n


async def main() -> None:
    backend = ostinato.connect(f"sqlite:///{sys.argv[1]}")
    if len(sys.argv) > 4:
        mode, target = sys.argv[3], int(sys.argv[4])
        original, original_leased = backend.create_run, backend.create_run_leased
        starts = 0

        def before(run):  # type: ignore[no-untyped-def]
            nonlocal starts
            if "@" in run.instance_id:
                starts += 1
                if starts == target and mode == "kill-before-start":
                    os.kill(os.getpid(), signal.SIGKILL)

        def after() -> None:
            if starts == target and mode == "kill-after-start":
                os.kill(os.getpid(), signal.SIGKILL)

        async def create_run(run):  # type: ignore[no-untyped-def]
            before(run)
            await original(run)
            after()

        # The worker fires its schedules' runs with eager start (docs/start-options.md):
        # killed after such a start, the run's first task waits for its lease to expire.
        async def create_run_leased(run, lease_seconds):  # type: ignore[no-untyped-def]
            before(run)
            task = await original_leased(run, lease_seconds)
            after()
            return task

        backend.create_run = create_run  # type: ignore[method-assign]
        backend.create_run_leased = create_run_leased  # type: ignore[method-assign]
    async with ostinato.Worker(backend, workflows=[tick], workflow_lease=1.0, poll_interval=0.1):
        await asyncio.sleep(float(sys.argv[2]))


if __name__ == "__main__":
    asyncio.run(main())
