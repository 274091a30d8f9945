"""A worker process with a hook, for crash tests: ``python hook_app.py DB OUT SECONDS [kill]``.

It serves ``greet`` and a hook that appends ``<event id> <attempt>`` to OUT; with ``kill``
it SIGKILLs itself inside the hook, right after writing that line (a worker dying mid-hook).
Otherwise it serves for SECONDS, then exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import ostinato
from ostinato import RunStateChange, workflow


@workflow.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@ostinato.hook(on=("completed",), name="notify")
async def notify(event: RunStateChange) -> None:
    with open(sys.argv[2], "a") as out:
        out.write(f"{event.id} {event.attempt}\n")
    if sys.argv[4:] == ["kill"]:
        os.kill(os.getpid(), signal.SIGKILL)


async def main() -> None:
    backend = ostinato.connect(f"sqlite:///{sys.argv[1]}")
    async with ostinato.Worker(
        backend, workflows=[greet], hooks=[notify], hook_lease=2.0, poll_interval=0.1
    ):
        await asyncio.sleep(float(sys.argv[3]))


if __name__ == "__main__":
    asyncio.run(main())
