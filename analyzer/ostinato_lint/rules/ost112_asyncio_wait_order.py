"""
## What it does
Flags iteration over the `done` or `pending` set that `asyncio.wait()` returns
(`done, pending = await asyncio.wait(tasks)`): `for` loops and comprehensions over them,
`list(done)`, `[*done]`, `done.pop()` and the like.

Applies under the `temporal` and `dbos` presets.  The `ostinato` preset switches it off: ostinato's
workflow loop returns both sets in the order the awaitables were given, so iterating them is
replay-safe there.

## Why is this bad?
`asyncio.wait()` returns plain sets of tasks, and a task's hash is its memory address.  The order
in which the loop visits `done` therefore changes from one process to the next, even when the
same tasks finished in the same step, so the workflow handles results (and schedules follow-up
work) in a different order on replay than the history records.  In Temporal that is a
nondeterminism error; in DBOS the steps get other step ids than on the first run.

## Example
```python
import asyncio

from temporalio import workflow


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, ids: list[str]) -> list[str]:
        tasks = [asyncio.create_task(self.fetch(i)) for i in ids]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return [task.result() for task in done]

    async def fetch(self, item: str) -> str:
        return item
```

## Use instead
```python
import asyncio

from temporalio import workflow


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, ids: list[str]) -> list[str]:
        tasks = [asyncio.create_task(self.fetch(i)) for i in ids]
        done, _ = await workflow.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return [task.result() for task in tasks if task in done]

    async def fetch(self, item: str) -> str:
        return item
```
Walk your own list of tasks (it has a fixed order) and test membership in `done`; in Temporal,
`workflow.wait()` and `workflow.as_completed()` are the deterministic versions.
"""

from __future__ import annotations

import ast

from ._rule import CheckContext, Rule
from .ost107_set_iteration import iteration_checks

_PROBLEM = "iterates over a set from asyncio.wait(), whose order differs between processes"
_ADVICE = (
    "keep your own list of tasks and test `task in done` "
    "(in Temporal: workflow.wait() / workflow.as_completed())"
)


def _is_wait_set(ctx: CheckContext, node: ast.expr) -> bool:
    return ctx.is_wait_set(node)


RULE = Rule(
    code="OST112",
    name="asyncio-wait-order",
    summary="Iteration over the done/pending sets of asyncio.wait() in workflow code",
    problem=_PROBLEM,
    advice=_ADVICE,
    doc=__doc__ or "",
    module=__name__,
    checks=iteration_checks(_is_wait_set, _PROBLEM, _ADVICE),
)
