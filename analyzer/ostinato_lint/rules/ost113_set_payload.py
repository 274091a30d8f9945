"""
## What it does
Flags a set or frozenset passed as input to an activity or child workflow
(`workflow.execute_activity(notify, {"a", "b"})`, `workflow.execute_child_workflow(Wf.run, ids)`
where `ids` is a set, or a set inside a list, tuple or dict literal passed that way).

Applies under the `temporal` and `dbos` presets.  The `ostinato` preset switches it off: ostinato's
payload converter writes sets as sorted lists, so their serialized form is the same in every
process.

## Why is this bad?
A converter that writes a set as a list writes it in iteration order, which depends on the
process's hash seed.  The activity (or child) then sees its items in an order that differs
between the first execution and a retry on another worker, and anything it derives from that
order (the first item, a batch split, a generated name) differs too.

## Example
```python
from datetime import timedelta

from temporalio import workflow


@workflow.defn
class Notify:
    @workflow.run
    async def run(self, emails: list[str]) -> None:
        await workflow.execute_activity(
            "send_all", set(emails), start_to_close_timeout=timedelta(seconds=30)
        )
```

## Use instead
```python
from datetime import timedelta

from temporalio import workflow


@workflow.defn
class Notify:
    @workflow.run
    async def run(self, emails: list[str]) -> None:
        await workflow.execute_activity(
            "send_all", sorted(set(emails)), start_to_close_timeout=timedelta(seconds=30)
        )
```
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ._rule import CheckContext, Hit, Rule

_PROBLEM = "serializes a set in iteration order, which differs between processes"
_ADVICE = "pass sorted(...) (a list in a fixed order) instead"


def _contains_set(ctx: CheckContext, node: ast.expr) -> bool:
    if ctx.is_set_valued(node):
        return True
    if isinstance(node, ast.List | ast.Tuple):
        return any(_contains_set(ctx, element) for element in node.elts)
    if isinstance(node, ast.Dict):
        return any(_contains_set(ctx, value) for value in node.values)
    if isinstance(node, ast.Starred):
        return _contains_set(ctx, node.value)
    return False


def _check_call(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    inputs = ctx.scheduled_inputs(node)
    if inputs and any(_contains_set(ctx, value) for value in inputs):
        yield Hit(node, f"passing a set as activity/child input {_PROBLEM}")


RULE = Rule(
    code="OST113",
    name="set-payload",
    summary="Set passed as activity or child workflow input",
    problem=_PROBLEM,
    advice=_ADVICE,
    doc=__doc__ or "",
    module=__name__,
    checks={ast.Call: _check_call},
)
