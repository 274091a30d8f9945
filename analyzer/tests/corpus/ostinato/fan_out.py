"""Fan-out with asyncio in ostinato: wait/gather are replay-safe, sets and hashes are not."""

import asyncio
import random

from ostinato import activity, workflow


@activity.defn
async def score(item: str) -> int:
    return len(item)


class Batch:
    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.failed: set[str] = set()

    def tags(self) -> set[str]:
        return {item.split(":")[0] for item in self.items}


@workflow.defn
async def rank(items: list[str]) -> list[int]:
    batch = Batch(items)
    tasks = [asyncio.create_task(workflow.execute_activity(score, item)) for item in items]
    done, pending = await asyncio.wait(tasks, timeout=60)
    for task in pending:
        task.cancel()
    scores = [task.result() for task in done]
    for tag in batch.tags():  # OST107
        workflow.logger.info("tag %s", tag)
    retry = [item for item in batch.failed]  # OST107
    shard = hash(items[0].lower()) % 8  # OST114
    jitter = random.Random(1234).random()
    pick = workflow.random().choice(items)
    await workflow.execute_activity(score, set(items))
    totals = await asyncio.gather(*(workflow.execute_activity(score, i) for i in sorted(items)))
    return [*scores, *totals, shard, int(jitter), len(retry), len(pick)]
