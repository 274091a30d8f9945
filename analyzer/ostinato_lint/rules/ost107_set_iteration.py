"""
## What it does
Flags iteration over a `set` or `frozenset` in workflow code: `for` loops and comprehensions
over one, turning one into a sequence (`list(s)`, `tuple(s)`, `enumerate(s)`, `[*s]`,
`", ".join(s)`) and `s.pop()`.  A value counts as a set when it is a set literal or
comprehension, a `set()`/`frozenset()` call, a set operation on one, or a variable assigned or
annotated as one in the same function.

## Why is this bad?
The order in which a set yields its items depends on the items' hashes, and the hashes of
strings and bytes are salted per process (`PYTHONHASHSEED`).  The same set of strings therefore
iterates in a different order on the worker that replays the run, so activities are scheduled in
a different order than the history records and the replay fails with `NonDeterminismError`.

## Example
```python
from ostinato import workflow


@workflow.defn
async def notify_watchers(emails: list[str]) -> None:
    for email in set(emails):
        await workflow.execute_activity(send_email, email)
```

## Use instead
```python
from ostinato import workflow


@workflow.defn
async def notify_watchers(emails: list[str]) -> None:
    for email in sorted(set(emails)):
        await workflow.execute_activity(send_email, email)
```
`dict` keeps insertion order, so `dict.fromkeys(emails)` removes duplicates while keeping the
original order.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ._rule import CheckContext, Hit, Rule

_PROBLEM = "iterates over a set, whose order differs between processes"
_ADVICE = "iterate over sorted(...) instead, or keep the items in a list or dict"
_SEQUENCE_BUILTINS = frozenset({"list", "tuple", "enumerate", "iter", "zip"})
_FUNCTION_FIRST_BUILTINS = frozenset({"map", "filter"})


def _check_loop(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.For | ast.AsyncFor | ast.comprehension)
    if ctx.is_set_valued(node.iter):
        yield Hit(node.iter, f"this loop {_PROBLEM}")


def _check_call(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    func = node.func
    resolved = ctx.resolve(func) if isinstance(func, ast.Name) else None
    if resolved is not None and resolved.kind == "builtin":
        name = resolved.qualname.removeprefix("builtins.")
        if name in _SEQUENCE_BUILTINS:
            candidates = node.args
        elif name in _FUNCTION_FIRST_BUILTINS:
            candidates = node.args[1:]
        else:
            return
        if any(ctx.is_set_valued(arg) for arg in candidates):
            yield Hit(node, f"{name}() {_PROBLEM}")
    elif isinstance(func, ast.Attribute):
        if func.attr == "join" and node.args and ctx.is_set_valued(node.args[0]):
            yield Hit(node, f"str.join() {_PROBLEM}")
        elif func.attr == "pop" and not node.args and ctx.is_set_valued(func.value):
            yield Hit(
                node,
                "set.pop() removes an arbitrary item, which differs between processes",
                "take min()/max() or pop from a sorted list instead",
            )


def _check_starred(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Starred)
    if isinstance(node.ctx, ast.Load) and ctx.is_set_valued(node.value):
        yield Hit(node, f"unpacking *set {_PROBLEM}")


RULE = Rule(
    code="OST107",
    name="set-iteration",
    summary="Iteration over a set or frozenset in workflow code",
    problem=_PROBLEM,
    advice=_ADVICE,
    doc=__doc__ or "",
    module=__name__,
    checks={
        ast.For: _check_loop,
        ast.AsyncFor: _check_loop,
        ast.comprehension: _check_loop,
        ast.Call: _check_call,
        ast.Starred: _check_starred,
    },
)
