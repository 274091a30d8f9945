"""
## What it does
Flags iteration over a `set` or `frozenset` in workflow code: `for` loops and comprehensions
over one, turning one into a sequence (`list(s)`, `tuple(s)`, `enumerate(s)`, `[*s]`,
`", ".join(s)`), `s.pop()`, and handing one to `asyncio.wait()` / `asyncio.as_completed()`
(which start and order tasks in set order).  A value counts as a set when it is a set literal or
comprehension, a `set()`/`frozenset()` call, a set operation on one, a variable assigned or
annotated as one in the same function or module, an attribute of `self` assigned or annotated as
one anywhere in its class (`self.pending = set()`, a dataclass field `seen: set[str]`), or the
result of a same-module function or method declared to return one (`-> set[str]`) or returning
only set literals.

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
from collections.abc import Callable, Iterator, Mapping

from ._rule import Check, CheckContext, Hit, Rule

_PROBLEM = "iterates over a set, whose order differs between processes"
_ADVICE = "iterate over sorted(...) instead, or keep the items in a list or dict"
_SEQUENCE_BUILTINS = frozenset({"list", "tuple", "enumerate", "iter", "zip"})
_FUNCTION_FIRST_BUILTINS = frozenset({"map", "filter"})
_TASK_ORDERING = frozenset({"asyncio.as_completed", "asyncio.wait", "asyncio.tasks.as_completed"})

Predicate = Callable[[CheckContext, ast.expr], bool]


def iteration_checks(
    matches: Predicate, problem: str, pop_advice: str
) -> Mapping[type[ast.AST], Check]:
    """Checks flagging every way of iterating a value ``matches`` recognises (shared by OST112)."""

    def check_loop(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
        assert isinstance(node, ast.For | ast.AsyncFor | ast.comprehension)
        if matches(ctx, node.iter):
            yield Hit(node.iter, f"this loop {problem}")

    def check_call(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
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
            if any(matches(ctx, arg) for arg in candidates):
                yield Hit(node, f"{name}() {problem}")
        elif isinstance(func, ast.Attribute):
            if func.attr == "join" and node.args and matches(ctx, node.args[0]):
                yield Hit(node, f"str.join() {problem}")
            elif func.attr == "pop" and not node.args and matches(ctx, func.value):
                yield Hit(
                    node,
                    "set.pop() removes an arbitrary item, which differs between processes",
                    pop_advice,
                )

    def check_starred(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
        assert isinstance(node, ast.Starred)
        if isinstance(node.ctx, ast.Load) and matches(ctx, node.value):
            yield Hit(node, f"unpacking *set {problem}")

    return {
        ast.For: check_loop,
        ast.AsyncFor: check_loop,
        ast.comprehension: check_loop,
        ast.Call: check_call,
        ast.Starred: check_starred,
    }


def _is_set(ctx: CheckContext, node: ast.expr) -> bool:
    return ctx.is_set_valued(node)


_CHECKS = iteration_checks(_is_set, _PROBLEM, "take min()/max() or pop from a sorted list instead")


def _check_task_ordering(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    yield from _CHECKS[ast.Call](ctx, node)
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name not in ("as_completed", "wait"):
        return
    resolved = ctx.resolve(func)
    if resolved is None or resolved.qualname not in _TASK_ORDERING:
        return
    if node.args and ctx.is_set_valued(node.args[0]):
        name = resolved.qualname.rpartition(".")[2]
        yield Hit(
            node,
            f"asyncio.{name}() over a set starts its awaitables in set order, "
            "which differs between processes",
            "pass a list (in a fixed order) instead",
        )


RULE = Rule(
    code="OST107",
    name="set-iteration",
    summary="Iteration over a set or frozenset in workflow code",
    problem=_PROBLEM,
    advice=_ADVICE,
    doc=__doc__ or "",
    module=__name__,
    checks={**_CHECKS, ast.Call: _check_task_ordering},
)
