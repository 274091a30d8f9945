"""Temporal fan-out: asyncio.wait's sets and set payloads are unordered; workflow.wait is not."""

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

TIMEOUT = timedelta(seconds=30)


@activity.defn
async def fetch(url: str) -> int:
    return len(url)


@workflow.defn
class Crawl:
    @workflow.run
    async def run(self, urls: list[str]) -> list[int]:
        tasks = [
            asyncio.create_task(workflow.execute_activity(fetch, u, start_to_close_timeout=TIMEOUT))
            for u in urls
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        sizes = [task.result() for task in done]  # OST112
        for task in pending:  # OST112
            task.cancel()
        ordered = [task.result() for task in tasks if task in done]
        await workflow.wait(tasks)
        hosts = {url.split("/")[2] for url in urls}
        await workflow.start_activity(fetch, args=[hosts], task_queue="crawl")  # OST113
        await workflow.execute_child_workflow(Crawl.run, sorted(hosts))
        fetch(urls[0])  # OST110
        return [*sizes, *ordered, workflow.random().randint(0, 9)]
