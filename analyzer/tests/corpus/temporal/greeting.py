"""A Temporal workflow class with signal, query and update handlers."""

import asyncio
import uuid
from datetime import datetime, timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx


@activity.defn
async def compose(name: str) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"https://greet.example/{name}")).text


@workflow.defn
class Greeter:
    @workflow.init
    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: set[str] = set()
        self.started = datetime.utcnow()  # OST101

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: bool(self.pending), timeout=timedelta(hours=1))
        greetings = []
        for extra in self.pending:  # OST107
            greetings.append(
                await workflow.execute_activity(
                    compose, extra, start_to_close_timeout=timedelta(seconds=10)
                )
            )
        request_id = uuid.uuid4()  # OST102
        safe_id = workflow.uuid4()
        await asyncio.sleep(5)
        return f"{self.name}: {greetings} {request_id} {safe_id} {workflow.now()}"

    @workflow.signal
    def add(self, name: str) -> None:
        self.pending.add(name)

    @workflow.query
    def count(self) -> int:
        return len(self.pending)

    @workflow.update
    async def rename(self, name: str) -> str:
        self.name = name
        try:
            await workflow.sleep(1)
        except asyncio.CancelledError:  # OST111
            workflow.logger.info("rename cancelled")
        return name
