"""
## What it does
Flags `hash()` of a `str` or `bytes` value in workflow code (or of a tuple holding one): string
and bytes literals, f-strings, `str()`/`bytes()`/`repr()` results, string methods
(`name.lower()`, `text.encode()` ...), and variables or parameters annotated or assigned as
strings.

## Why is this bad?
Python salts the hashes of `str` and `bytes` with a per-process random seed
(`PYTHONHASHSEED`), so `hash("order-42")` is a different number in every worker process.  A
workflow that shards, buckets or names things by it (`hash(customer) % 4`) picks another shard
when it is replayed elsewhere, and the replay no longer matches the history.

## Example
```python
from ostinato import workflow


@workflow.defn
async def route(customer: str) -> str:
    shard = hash(customer) % 4
    return await workflow.execute_activity("store", customer, queue=f"shard-{shard}")
```

## Use instead
```python
import zlib

from ostinato import workflow


@workflow.defn
async def route(customer: str) -> str:
    shard = zlib.crc32(customer.encode()) % 4
    return await workflow.execute_activity("store", customer, queue=f"shard-{shard}")
```
`zlib.crc32()` and `hashlib` digests are the same in every process.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ._rule import CheckContext, Hit, Rule

_PROBLEM = "is salted per process (PYTHONHASHSEED), so it differs on replay"
_ADVICE = "use a stable digest: zlib.crc32(value.encode()) or hashlib.sha256(...)"


def _check_call(ctx: CheckContext, node: ast.AST) -> Iterator[Hit]:
    assert isinstance(node, ast.Call)
    if not isinstance(node.func, ast.Name) or len(node.args) != 1:
        return
    resolved = ctx.resolve(node.func)
    is_hash = resolved is not None and resolved.qualname == "builtins.hash"
    if is_hash and ctx.is_str_valued(node.args[0]):
        yield Hit(node, f"hash() of a str/bytes value {_PROBLEM}")


RULE = Rule(
    code="OST114",
    name="string-hash",
    summary="hash() of a str or bytes value in workflow code",
    problem=_PROBLEM,
    advice=_ADVICE,
    doc=__doc__ or "",
    module=__name__,
    checks={ast.Call: _check_call},
)
