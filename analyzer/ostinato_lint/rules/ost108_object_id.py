"""
## What it does
Flags calls to `id()` in workflow code.

## Why is this bad?
`id()` is the object's memory address.  It changes from one process to the next and from one
replay to the next, so using it as a key, a name, or in a comparison makes the workflow's
behaviour depend on where the allocator happened to put an object.  Sorting by `id()` or putting
it in an identifier sent to an activity are the usual ways it leaks into decisions.

## Example
```python
from ostinato import workflow


@workflow.defn
async def fan_out(items: list[dict]) -> None:
    for item in items:
        key = f"item-{id(item)}"
        await workflow.execute_activity(process, key, item)
```

## Use instead
```python
from ostinato import workflow


@workflow.defn
async def fan_out(items: list[dict]) -> None:
    for index, item in enumerate(items):
        key = f"item-{index}"  # or str(workflow.uuid4())
        await workflow.execute_activity(process, key, item)
```
"""

from ._rule import Rule

RULE = Rule(
    code="OST108",
    name="object-id",
    summary="id() of an object used in workflow code",
    problem="is a memory address, different in every process",
    advice="use a stable key: an index, a field of the object, or workflow.uuid4()",
    doc=__doc__ or "",
    module=__name__,
)
