"""Helpers for end-to-end workflow tests: a backend, a worker and a client in one process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import ostinato
from ostinato.testing import replay


class Harness:
    def __init__(self, url: str, cache_size: int) -> None:
        self.url = url
        self.cache_size = cache_size
        self.backend = ostinato.connect(url)
        self.client = ostinato.Client(self.backend)

    @contextlib.asynccontextmanager
    async def worker(
        self,
        workflows: Sequence[Callable[..., Any]] = (),
        activities: Sequence[Callable[..., Any]] = (),
        **options: Any,
    ) -> AsyncIterator[ostinato.Worker]:
        options.setdefault("workflow_cache_size", self.cache_size)
        options.setdefault("poll_interval", 0.05)
        async with ostinato.Worker(
            self.backend, workflows=workflows, activities=activities, **options
        ) as worker:
            yield worker

    async def run(
        self,
        workflow: Callable[..., Any],
        *args: Any,
        activities: Sequence[Callable[..., Any]] = (),
        id: str | None = None,
        timeout: float = 20,
        **worker_options: Any,
    ) -> Any:
        """Start ``workflow``, run it to the end, check its history replays, return result."""
        async with self.worker([workflow], activities, **worker_options):
            handle = await self.client.start_workflow(workflow, *args, id=id)
            try:
                return await handle.result(timeout=timeout)
            finally:
                await self.check_replay(workflow, handle)

    async def check_replay(self, workflow: Callable[..., Any], handle: Any) -> None:
        desc = await handle.describe()
        if desc.status in ("completed", "failed", "canceled", "continued_as_new"):
            replay(workflow, await handle.history())


@contextlib.asynccontextmanager
async def harness(url: str, cache_size: int) -> AsyncIterator[Harness]:
    h = Harness(url, cache_size)
    await h.backend.open()
    try:
        yield h
    finally:
        await h.backend.close()
