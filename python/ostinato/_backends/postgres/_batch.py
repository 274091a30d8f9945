"""Group commit: concurrent writes of one kind go to the database in one statement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# Most operations one batch statement applies (the rest wait for the next batch).
_MAX_BATCH = 256


# ---- group commit -----------------------------------------------------------------------------


class _Batcher(Generic[Item, Outcome]):
    """Group commit for one kind of write: calls made while a batch is on its way wait and go
    together in the next one, so N concurrent callers cost one statement, one transaction and
    one round trip instead of N. A call arriving when nothing is on its way goes at once (on
    the next turn of the event loop, with whatever else was called in this one).

    ``apply`` gets the items of one batch (arrival order, never two with the same key) and
    returns one outcome per item: the caller's result, or the exception to raise to it. If
    ``apply`` itself raises, every caller of the batch gets that exception. A caller cancelled
    before its batch is sent is left out of it (its write never happens).
    """

    def __init__(
        self,
        apply: Callable[[list[Item]], Awaitable[list[Outcome | BaseException]]],
        key: Callable[[Item], Hashable],
    ) -> None:
        self._apply = apply
        self._key = key
        self._queue: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="ostinato-postgres-batch")
        return await future

    async def drain(self) -> None:
        """Wait until every submitted item has been applied (or failed)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch: list[tuple[Item, asyncio.Future[Outcome]]] = []
                later: list[tuple[Item, asyncio.Future[Outcome]]] = []
                keys: set[Hashable] = set()
                for item, future in self._queue:
                    if future.done():
                        continue  # its caller was cancelled
                    key = self._key(item)
                    if len(batch) >= _MAX_BATCH or key in keys:
                        later.append((item, future))
                    else:
                        keys.add(key)
                        batch.append((item, future))
                self._queue = later
                if not batch:
                    continue
                try:
                    outcomes = await self._apply([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        except asyncio.CancelledError:
            queued, self._queue = self._queue, []
            for _, future in queued:
                future.cancel()
            raise
        finally:
            self._flusher = None
