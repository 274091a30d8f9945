"""
## What it does
Flags `time.sleep()` in workflow code.

## Why is this bad?
`time.sleep()` blocks the thread that runs every workflow on the worker, so while one workflow
sleeps nothing else makes progress, and the sleep is not recorded anywhere: if the worker
restarts, the wait starts again from zero (or is skipped, depending on where the replay
resumes).  `await workflow.sleep()` (or `asyncio.sleep()`, which the workflow loop turns into the
same thing) starts a durable timer: it survives restarts, costs nothing while it waits, and can
last for days.

## Example
```python
import time

from ostinato import workflow


@workflow.defn
async def remind(user: str) -> None:
    time.sleep(3600)
    await workflow.execute_activity(send_reminder, user)
```

## Use instead
```python
from datetime import timedelta

from ostinato import workflow


@workflow.defn
async def remind(user: str) -> None:
    await workflow.sleep(timedelta(hours=1))
    await workflow.execute_activity(send_reminder, user)
```
"""

from ._rule import Rule

RULE = Rule(
    code="OST103",
    name="blocking-sleep",
    summary="Blocking sleep in workflow code",
    problem="blocks the worker and is not a durable timer",
    advice="use await workflow.sleep(seconds)",
    doc=__doc__ or "",
    module=__name__,
)
