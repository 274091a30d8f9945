"""
## What it does
Flags threads, processes and executors in workflow code: `threading`, `multiprocessing`,
`concurrent.futures`, `asyncio.to_thread()`, `asyncio.run_coroutine_threadsafe()` and
`loop.run_in_executor()`.

## Why is this bad?
A workflow's determinism comes from its event loop: tasks run in a fixed order, one step at a
time, and only the engine decides when each await resumes.  Work handed to a thread or a process
finishes whenever the operating system lets it, so the order in which results arrive (and
therefore what the workflow does next) changes from one replay to the next.  The other thread
also keeps running after the workflow is evicted or cancelled.

## Example
```python
import asyncio

from ostinato import workflow


@workflow.defn
async def render_all(pages: list[str]) -> list[str]:
    return await asyncio.gather(*(asyncio.to_thread(render, page) for page in pages))
```

## Use instead
```python
import asyncio

from ostinato import activity, workflow


@activity.defn
def render_page(page: str) -> str:  # sync activities already run in a thread pool
    return render(page)


@workflow.defn
async def render_all(pages: list[str]) -> list[str]:
    return await asyncio.gather(
        *(workflow.execute_activity(render_page, page) for page in pages)
    )
```
Concurrency *inside* a workflow is fine when it uses asyncio tasks (`asyncio.gather`,
`asyncio.create_task`): the workflow loop schedules them deterministically.
"""

from ._rule import Rule

RULE = Rule(
    code="OST105",
    name="threads",
    summary="Threads, processes or executors in workflow code",
    problem="runs code outside the workflow's deterministic event loop",
    advice="use asyncio tasks in the workflow, or move the work into an activity",
    doc=__doc__ or "",
    module=__name__,
)
