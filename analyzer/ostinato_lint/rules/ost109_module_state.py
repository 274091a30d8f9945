"""
## What it does
Flags workflow code that changes module-level state: a `global` statement, assigning to an item
or attribute of a module-level variable, class or imported module (`CACHE[key] = value`,
`Counter.total += 1`, `settings.mode = "x"`), deleting from one, or calling a mutating method on
one (`SEEN.add(x)`, `QUEUE.append(x)`, `REGISTRY.update(...)`).

## Why is this bad?
Module-level state belongs to the worker process, not to the run.  It survives from one run to
the next, it is shared by every run the worker executes concurrently, and it is empty on the
worker that replays the run after a restart.  A workflow that reads back what it (or another run)
stored there sees different values on replay than it saw the first time.

## Example
```python
from ostinato import workflow

PROCESSED: set[str] = set()


@workflow.defn
async def import_batch(ids: list[str]) -> int:
    for item_id in ids:
        if item_id not in PROCESSED:
            await workflow.execute_activity(import_item, item_id)
            PROCESSED.add(item_id)
    return len(PROCESSED)
```

## Use instead
```python
from ostinato import workflow


@workflow.defn
async def import_batch(ids: list[str]) -> int:
    processed: set[str] = set()
    for item_id in ids:
        if item_id not in processed:
            await workflow.execute_activity(import_item, item_id)
            processed.add(item_id)
    workflow.set_var("processed", len(processed))
    return len(processed)
```
Keep a run's state in local variables (or objects the workflow creates); they are rebuilt
exactly by replay.  Use `workflow.set_var()` to make it visible from outside.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ._rule import CheckContext, Hit, Rule

_PROBLEM = "changes module-level state, which outlives the run and differs per worker"
_ADVICE = "keep the state in local variables; expose it with workflow.set_var()"
_MUTATORS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "remove",
        "pop",
        "popleft",
        "popitem",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "sort",
        "reverse",
        "rotate",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
        "__setitem__",
        "__delitem__",
    }
)


def _root_name(node: ast.expr) -> ast.Name | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node if isinstance(node, ast.Name) else None


def _module_root(ctx: CheckContext, target: ast.expr) -> str | None:
    """The module-level name that ``target`` (an item or attribute store) writes into."""
    if not isinstance(target, ast.Attribute | ast.Subscript):
        return None
    root = _root_name(target)
    if root is None:
        return None
    resolved = ctx.resolve(root)
    if resolved is None or resolved.kind not in ("module", "import"):
        return None
    return root.id


def _check_global(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Global)
    yield Hit(node, f"'global {', '.join(node.names)}' {_PROBLEM}")


def _store_targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        targets: list[ast.expr] = []
        pending = list(node.targets)
        while pending:  # unpack `a[0], b.x = ...`
            target = pending.pop(0)
            if isinstance(target, ast.Tuple | ast.List):
                pending.extend(target.elts)
            else:
                targets.append(target)
        return targets
    if isinstance(node, ast.AugAssign | ast.AnnAssign):
        return [node.target]
    if isinstance(node, ast.Delete):
        return list(node.targets)
    return []


def _check_store(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    for target in _store_targets(node):
        name = _module_root(ctx, target)
        if name is not None and not ctx.is_banned(target):
            verb = "deleting from" if isinstance(node, ast.Delete) else "writing into"
            yield Hit(target, f"{verb} module-level '{name}' {_PROBLEM}")


def _check_mutator_call(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    func = node.func
    if not isinstance(func, ast.Attribute) or func.attr not in _MUTATORS:
        return
    name = _module_root(ctx, func)
    if name is not None and not ctx.is_banned(func):
        yield Hit(node, f".{func.attr}() on module-level '{name}' {_PROBLEM}")


RULE = Rule(
    code="OST109",
    name="module-state",
    summary="Module-level state changed from workflow code",
    problem=_PROBLEM,
    advice=_ADVICE,
    doc=__doc__ or "",
    module=__name__,
    checks={
        ast.Global: _check_global,
        ast.Assign: _check_store,
        ast.AugAssign: _check_store,
        ast.AnnAssign: _check_store,
        ast.Delete: _check_store,
        ast.Call: _check_mutator_call,
    },
)
