"""
## What it does
Flags reads of the wall clock or of a monotonic clock in workflow code: `time.time()`,
`time.monotonic()`, `time.perf_counter()` and their `_ns` variants, `datetime.now()`,
`datetime.utcnow()`, `datetime.today()` and `date.today()`; and the `time` functions that
read the clock when no time is given: `time.strftime(fmt)`, `time.localtime()`,
`time.gmtime()`, `time.ctime()` and `time.asctime()` (flagged only when the time argument is
missing or `None`).

## Why is this bad?
A workflow's code runs again every time its run is rebuilt from history (after a crash, a deploy,
or when it is evicted from the worker's cache).  Each of those replays reads a different clock
value, so any decision that depends on it (a branch, a timer length, a value passed to an
activity) can come out differently from the first run, and the replay no longer matches the
history.  The run then stops with `NonDeterminismError`.  `workflow.now()` returns the time
recorded in the history for the current step, so it is the same on every replay.

## Example
```python
import time
from datetime import datetime

from ostinato import workflow


@workflow.defn
async def invoice(order_id: str) -> str:
    issued = datetime.now()
    if time.time() > deadline(order_id):
        return "late"
    return issued.isoformat()
```

## Use instead
```python
from ostinato import workflow


@workflow.defn
async def invoice(order_id: str) -> str:
    issued = workflow.now()
    if issued.timestamp() > deadline(order_id):
        return "late"
    return issued.isoformat()
```
To measure how long something took, subtract two `workflow.now()` values, or time it inside an
activity where real clocks are fine.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ._rule import CheckContext, Hit, Rule

_PROBLEM = "reads the clock, which differs on every replay"
# function -> how many positional arguments it takes before the (optional) time
_IMPLICIT_NOW = {
    "time.strftime": 1,
    "time.localtime": 0,
    "time.gmtime": 0,
    "time.ctime": 0,
    "time.asctime": 0,
}
_NAMES = frozenset(name.rpartition(".")[2] for name in _IMPLICIT_NOW)


def _check_call(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    func = node.func
    if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) not in _NAMES:
        return
    resolved = ctx.resolve(func)
    if resolved is None or resolved.kind != "import":
        return
    before = _IMPLICIT_NOW.get(resolved.qualname)
    if before is None or any(isinstance(arg, ast.Starred) for arg in node.args) or node.keywords:
        return
    given = node.args[before] if len(node.args) > before else None
    if given is None or (isinstance(given, ast.Constant) and given.value is None):
        yield Hit(
            node,
            f"{resolved.qualname}() without a time {_PROBLEM}",
            "pass the time explicitly: workflow.now().timetuple() or workflow.now().strftime(...)",
        )


RULE = Rule(
    code="OST101",
    name="wall-clock",
    summary="Wall-clock or monotonic time read in workflow code",
    problem="reads the clock, which differs on every replay",
    advice="use workflow.now()",
    doc=__doc__ or "",
    module=__name__,
    checks={ast.Call: _check_call},
)
