"""A worker process for the queue-limit tests (tests/test_queues.py).

    python tests/queue_app.py URL LOGDIR NAME

Runs one worker (workflows and activities, 10 activity slots) on the backend at URL until
SIGTERM; writes ``LOGDIR/NAME.ready`` once the backend is open, and one line
``START END`` (``time.time()`` at the start and end of the body) per execution of the
``paid`` activity to ``LOGDIR/NAME.spans``, so the test can rebuild the number of attempts in
flight over time and the starts per window, across processes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import ostinato
from ostinato import activity, workflow

QUEUE = "payments"
_spans: Any = None
_hold = 0.0


@activity.defn
async def paid(i: int) -> int:
    started = time.time()
    await asyncio.sleep(float(os.environ.get("QUEUE_APP_HOLD", "0.05")))
    _spans.write(f"{started} {time.time()}\n")
    _spans.flush()
    return i


@workflow.defn
async def pay_all(count: int) -> int:
    results = await asyncio.gather(
        *(workflow.execute_activity(paid, i, queue=QUEUE) for i in range(count))
    )
    return sum(results)


async def main() -> None:
    global _spans
    url, logdir, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    _spans = open(logdir / f"{name}.spans", "a")  # noqa: SIM115
    backend = ostinato.connect(url)
    await backend.open()
    (logdir / f"{name}.ready").write_text(str(os.getpid()))
    worker = ostinato.Worker(
        backend,
        workflows=[pay_all],
        activities=[paid],
        queues=("default", QUEUE),
        max_concurrent_activities=10,
        poll_interval=0.2,
        handle_signals=True,
        identity=name,
    )
    try:
        await worker.run()
    finally:
        await backend.close()
        _spans.close()


if __name__ == "__main__":
    asyncio.run(main())
