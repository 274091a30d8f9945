"""
## What it does
Flags randomness in workflow code: anything from `random` (including `random.Random()`
instances), `secrets`, `numpy.random`, `os.urandom()`, and `uuid.uuid1()` / `uuid.uuid4()`.
A generator seeded with a constant (`random.Random(42)`, `numpy.random.default_rng(7)`) draws the
same numbers in every process and is not flagged; one seeded from anything else is.

## Why is this bad?
A replay must take exactly the decisions the first execution took.  A random number drawn
during replay is a new number, so a random choice, a random delay or a freshly generated
identifier differs from the one recorded in the history, and the run fails with
`NonDeterminismError` (or, worse, silently sends a different ID to the outside world).
`workflow.random()` is a `random.Random` seeded from the run's history, and `workflow.uuid4()`
derives its value from it, so both repeat themselves on replay.

## Example
```python
import random
import uuid

from ostinato import workflow


@workflow.defn
async def assign_reviewer(pr: int, reviewers: list[str]) -> str:
    request_id = str(uuid.uuid4())
    reviewer = random.choice(reviewers)
    await workflow.execute_activity(notify, reviewer, request_id)
    return reviewer
```

## Use instead
```python
from ostinato import workflow


@workflow.defn
async def assign_reviewer(pr: int, reviewers: list[str]) -> str:
    request_id = str(workflow.uuid4())
    reviewer = workflow.random().choice(reviewers)
    await workflow.execute_activity(notify, reviewer, request_id)
    return reviewer
```
Secrets (tokens, keys) must not come from a seeded generator: create them in an activity.
"""

from ._rule import Rule

RULE = Rule(
    code="OST102",
    name="randomness",
    summary="Unseeded randomness or random UUIDs in workflow code",
    problem="is random, so a replay gets a different value",
    advice="use workflow.random() or workflow.uuid4()",
    doc=__doc__ or "",
    module=__name__,
)
