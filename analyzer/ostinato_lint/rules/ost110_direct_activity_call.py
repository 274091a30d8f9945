"""
## What it does
Flags workflow code that calls an activity function directly (`await charge(order_id)`)
instead of scheduling it with `workflow.execute_activity(charge, order_id)` or
`workflow.start_activity(...)`.  Activities are recognised when they are decorated with
`@activity.defn` in the same module as the workflow.

## Why is this bad?
Called directly, an activity is just a function: it runs inline on the workflow's event loop,
on every replay, with no retries, no timeout, and no record of its result in the history.  Its
side effects (a payment, an email) happen again each time the run is replayed, and its result
can differ each time, which makes the run nondeterministic.

## Example
```python
from ostinato import activity, workflow


@activity.defn
async def charge(order_id: str, amount: int) -> str: ...


@workflow.defn
async def checkout(order_id: str) -> str:
    return await charge(order_id, 100)
```

## Use instead
```python
from datetime import timedelta

from ostinato import activity, workflow


@activity.defn
async def charge(order_id: str, amount: int) -> str: ...


@workflow.defn
async def checkout(order_id: str) -> str:
    return await workflow.execute_activity(
        charge, order_id, 100, start_to_close_timeout=timedelta(seconds=30)
    )
```
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ._rule import CheckContext, Hit, Rule


def _check_call(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    name = ctx.activity_name(node.func)
    if name is not None:
        name = name.rpartition("<locals>.")[2]  # build_app.<locals>.charge -> charge
        yield Hit(
            node,
            f"calls activity '{name}' directly, so it runs inline on every replay",
            f"use await workflow.execute_activity({name}, ...)",
        )


RULE = Rule(
    code="OST110",
    name="direct-activity-call",
    summary="Activity called directly from workflow code",
    problem="calls an activity directly, so it runs inline on every replay",
    advice="use await workflow.execute_activity(activity, ...)",
    doc=__doc__ or "",
    module=__name__,
    checks={ast.Call: _check_call},
)
