"""
## What it does
Flags exception handlers in workflow code that catch cancellation and do not re-raise: a bare
`except:`, `except BaseException:` and `except asyncio.CancelledError:` (alone or in a tuple)
whose body contains no `raise`, and `contextlib.suppress()` of any of them.  A handler nested
inside an outer `except` that catches cancellation and re-raises it is not flagged: cleanup there
may swallow its own failures, the outer handler still propagates the cancel.

## Why is this bad?
Cancelling a run (`handle.cancel()`, a parent's cancellation, a timeout) is delivered to the
workflow as `asyncio.CancelledError` at the await it is blocked in.  A handler that catches it
and carries on turns the cancel into nothing: the run keeps going although the engine recorded a
cancel request, and `handle.result()` never reports `WorkflowCancelledError`.  A bare `except:`
or `except BaseException:` catches it even when that was not the intent.

## Example
```python
import asyncio

from ostinato import workflow


@workflow.defn
async def subscription(user: str) -> None:
    while True:
        try:
            await workflow.sleep(30 * 24 * 3600)
            await workflow.execute_activity(bill, user)
        except asyncio.CancelledError:
            workflow.logger.info("cancelled")
```

## Use instead
```python
import asyncio

from ostinato import workflow


@workflow.defn
async def subscription(user: str) -> None:
    while True:
        try:
            await workflow.sleep(30 * 24 * 3600)
            await workflow.execute_activity(bill, user)
        except asyncio.CancelledError:
            # cleanup that must run even though the run is cancelled
            await asyncio.shield(workflow.execute_activity(close_account, user))
            raise
```
Catch `Exception` (which does not include `CancelledError`) to handle failures without touching
cancellation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ._rule import CheckContext, Hit, Rule

_CANCELLATION_TYPES = frozenset(
    {
        "builtins.BaseException",
        "asyncio.CancelledError",
        "asyncio.exceptions.CancelledError",
        "concurrent.futures.CancelledError",
    }
)
_ADVICE = "re-raise it after cleanup (add `raise`), or catch Exception instead"


def _caught_cancellation(ctx: CheckContext, node: ast.expr) -> str | None:
    candidates = node.elts if isinstance(node, ast.Tuple) else [node]
    for candidate in candidates:
        resolved = ctx.resolve(candidate)
        if resolved is not None and resolved.qualname in _CANCELLATION_TYPES:
            return resolved.qualname.rpartition(".")[2]
    return None


def _reraises(body: list[ast.stmt], skip: ast.AST | None = None) -> bool:
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if node is skip:
            continue
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue  # a raise in a nested function does not re-raise from the handler
        pending.extend(ast.iter_child_nodes(node))
    return False


def _inside_reraising_handler(ctx: CheckContext, node: ast.AST) -> bool:
    """Cleanup inside ``except CancelledError: ...; raise`` may swallow its own errors: the
    outer handler still re-raises the cancellation."""
    for outer in ctx.enclosing_handlers():
        catches = outer.type is None or _caught_cancellation(ctx, outer.type) is not None
        if catches and _reraises(outer.body, skip=node):
            return True
    return False


def _check_handler(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.ExceptHandler)
    if node.type is None:
        caught = "bare 'except:'"
    else:
        name = _caught_cancellation(ctx, node.type)
        if name is None:
            return
        caught = f"'except {name}'"
    if not _reraises(node.body) and not _inside_reraising_handler(ctx, node):
        yield Hit(node, f"{caught} swallows the run's cancellation (asyncio.CancelledError)")


def _check_suppress(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    func = node.func
    if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) != "suppress":
        return
    resolved = ctx.resolve(func)
    if resolved is None or resolved.qualname != "contextlib.suppress":
        return
    if _inside_reraising_handler(ctx, node):
        return
    for arg in node.args:
        name = _caught_cancellation(ctx, arg)
        if name is not None:
            yield Hit(
                node,
                f"suppress({name}) swallows the run's cancellation (asyncio.CancelledError)",
                "suppress Exception subclasses only, and let cancellation propagate",
            )
            return


RULE = Rule(
    code="OST111",
    name="swallowed-cancellation",
    summary="Cancellation caught and not re-raised in workflow code",
    problem="swallows the run's cancellation",
    advice=_ADVICE,
    doc=__doc__ or "",
    module=__name__,
    checks={ast.ExceptHandler: _check_handler, ast.Call: _check_suppress},
)
