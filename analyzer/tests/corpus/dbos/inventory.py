"""DBOS class-based workflows (DBOS.dbos_class) with async steps."""

import asyncio
import time
from datetime import datetime

from dbos import DBOS


@DBOS.dbos_class()
class Inventory:
    def __init__(self) -> None:
        self.reserved: set[str] = set()

    @DBOS.step()
    async def count(self, sku: str) -> int:
        await asyncio.sleep(0.1)
        return int(time.time()) % 10

    @DBOS.workflow()
    async def restock(self, skus: list[str]) -> dict[str, int]:
        counts = {sku: await self.count(sku) for sku in skus}
        tasks = [asyncio.create_task(self.count(sku)) for sku in skus]
        done, _ = await asyncio.wait(tasks)
        extra = [task.result() for task in done]  # OST112
        for sku in self.reserved:  # OST107
            counts[sku] = counts.get(sku, 0) - 1
        counts["stamp"] = int(datetime.now().timestamp())  # OST101
        counts["extra"] = sum(extra)
        time.sleep(1)  # noqa: ASYNC251  # OST103
        return counts
