"""A worker process sweeping closed workflows, for crash tests:
``python retention_app.py DB SECONDS [KILL_AFTER_BATCHES]``.

It serves with ``retention=1s``, sweeping every 0.1 s in batches of 5 under a 1 s lease, for
SECONDS, then exits; with KILL_AFTER_BATCHES it SIGKILLs itself right after that many
batches committed, in the middle of a sweep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta

import ostinato
from ostinato import _retention, workflow


@workflow.defn
async def noop() -> None:
    return None


async def main() -> None:
    _retention.INTERVAL, _retention.LEASE, _retention.BATCH = 0.1, 1.0, 5
    backend = ostinato.connect(f"sqlite:///{sys.argv[1]}")
    if len(sys.argv) > 3:
        target = int(sys.argv[3])
        original = backend.delete_closed_instances
        batches = 0

        async def delete_closed_instances(*args):  # type: ignore[no-untyped-def]
            nonlocal batches
            done = await original(*args)
            batches += 1
            if batches == target:
                os.kill(os.getpid(), signal.SIGKILL)
            return done

        backend.delete_closed_instances = delete_closed_instances  # type: ignore[method-assign]
    # On a queue of its own: it sweeps every queue's workflows but runs none of them.
    async with ostinato.Worker(
        backend,
        workflows=[noop],
        queues=["sweeper"],
        retention=timedelta(seconds=1),
        poll_interval=0.1,
    ):
        await asyncio.sleep(float(sys.argv[2]))


if __name__ == "__main__":
    asyncio.run(main())
