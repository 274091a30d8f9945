"""In-process wake-ups: coroutines waiting for work or for a run to close, woken at once by
a commit of this process (from any thread) instead of by polling."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Hashable, Iterable

__all__ = ["Waiter", "Waiters", "wait_on", "work_keys"]


class Waiter:
    """One pending wait: a future on the waiting coroutine's loop, woken by any of its keys."""

    __slots__ = ("broad", "future", "keys", "loop")

    def __init__(self, keys: tuple[Hashable, ...]) -> None:
        # True when woken by notify_all ("something changed, look again"), not by a key.
        self.broad = False
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.keys = keys


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Waiters:
    """Registry of waiting coroutines keyed by what they wait for.

    ``notify`` may be called from any thread (the SQLite writer thread does): a waiter on
    another thread's loop is woken with ``call_soon_threadsafe``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Hashable, set[Waiter]] = {}

    def register(self, keys: Iterable[Hashable]) -> Waiter:
        waiter = Waiter(tuple(keys))
        with self._lock:
            for key in waiter.keys:
                self._by_key.setdefault(key, set()).add(waiter)
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        with self._lock:
            for key in waiter.keys:
                waiting = self._by_key.get(key)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._by_key[key]

    def notify(self, keys: Iterable[Hashable]) -> None:
        with self._lock:
            woken = {w for key in keys for w in self._by_key.get(key, ())}
        self._wake(woken)

    def waiting(self) -> bool:
        """Whether anyone waits (read without the lock: a hint, not a promise)."""
        return bool(self._by_key)

    def notify_all(self) -> None:
        with self._lock:
            woken = {w for waiting in self._by_key.values() for w in waiting}
        for waiter in woken:
            waiter.broad = True
        self._wake(woken)

    @staticmethod
    def _wake(woken: set[Waiter]) -> None:
        if not woken:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for waiter in woken:
            if waiter.loop is current:
                _wake(waiter.future)
            else:
                # RuntimeError: that loop is closed, so nobody waits there any more.
                with contextlib.suppress(RuntimeError):
                    waiter.loop.call_soon_threadsafe(_wake, waiter.future)


def work_keys(kind: str, queues: Iterable[str]) -> list[tuple[str, str]]:
    if kind not in ("workflow", "activity"):
        raise ValueError(f"kind must be 'workflow' or 'activity', not {kind!r}")
    return [(kind, queue) for queue in queues]


async def wait_on(waiter: Waiter, timeout: float) -> bool:
    """Wait until the waiter is woken (True) or ``timeout`` seconds pass (False)."""
    if waiter.future.done():
        return True
    if timeout <= 0:
        return False
    done, _ = await asyncio.wait({waiter.future}, timeout=timeout)
    return bool(done)
