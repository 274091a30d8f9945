"""Hooks on run state changes: ``@ostinato.hook`` and the worker's delivery loop.

A run state change of interest is written to the backend's outbox in the transaction of the
change (``_backends._hook_store``); workers with hooks claim (delivery, hook) pairs under a
lease, call the hook, and mark the pair delivered, or retry it with back-off, or give it up
after its last attempt (an ERROR log; ``client.list_hook_failures()`` lists it).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from ._backends._hook_store import HookDelivery, HookStore
from ._failure import decode_failure
from ._retry import RetryPolicy

__all__ = ["HOOK_EVENTS", "HookDefinition", "HookRunner", "RunStateChange", "hook"]

log = logging.getLogger("ostinato.hooks")

# The statuses a hook may ask for, as ``on=`` spells them.
HOOK_EVENTS = ("completed", "failed", "cancelled", "terminated", "paused", "timed_out")
# Stored run status -> hook event name (runs store "canceled").
_EVENT_OF_STATUS = {"canceled": "cancelled"}

DEFAULT_HOOK_RETRY = RetryPolicy(initial_interval=1.0, max_interval=3600.0, max_attempts=25)


@dataclass(frozen=True)
class RunStateChange:
    """What a hook is called with: one state change of one run.

    ``id`` is the same on every delivery of this change (``"<instance>:<run>:<status>"``;
    ``"<instance>:<run>:paused:<n>"`` for the run's n-th pause): use it to make a hook
    idempotent. ``status`` is one of ``HOOK_EVENTS``. ``result`` is the decoded JSON result
    of a completed run (None otherwise); ``failure`` the failure of the other closes, as an
    exception (``type(failure).__name__`` / its ``type`` attribute and ``str(failure)``);
    ``reason`` the reason given to a pause (None otherwise). ``attempt`` is 1 on the first
    delivery to this hook. All three are None once the run was redacted.
    """

    id: str
    instance_id: str
    run_id: str
    workflow_name: str
    status: str
    time: datetime
    result: Any = None
    failure: BaseException | None = None
    attempt: int = 1
    reason: str | None = None


HookFn = Callable[[RunStateChange], Awaitable[None]]


@dataclass(frozen=True)
class HookDefinition:
    name: str
    fn: HookFn
    on: frozenset[str]
    workflows: frozenset[str] | None
    retry: RetryPolicy

    def wants(self, event: RunStateChange) -> bool:
        if event.status not in self.on:
            return False
        return self.workflows is None or event.workflow_name in self.workflows


def hook(
    on: Iterable[str] = HOOK_EVENTS,
    workflows: Iterable[str] | None = None,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
) -> Callable[[HookFn], HookFn]:
    """Mark ``async def fn(event: RunStateChange) -> None`` as a hook for ``Worker(hooks=)``.

    ``on``: the statuses it is called for (any of ``HOOK_EVENTS``); ``workflows``: workflow
    names it is limited to (None: all). ``name`` (default: module and qualified name of the
    function) identifies the hook in the backend: keep it stable across deploys. ``retry``:
    back-off and attempts of failed calls (default 1 s doubling up to 1 h, 25 attempts).
    """
    if isinstance(on, str):
        on = (on,)
    events = frozenset(on)
    unknown = sorted(events - set(HOOK_EVENTS))
    if unknown or not events:
        raise ValueError(
            f"hook(on=...) takes some of {', '.join(HOOK_EVENTS)}; got {sorted(events) or 'none'}"
        )
    names: frozenset[str] | None = None
    if workflows is not None:
        if isinstance(workflows, str):
            workflows = (workflows,)
        names = frozenset(workflows)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError("hook(workflows=...) takes workflow names (non-empty str), or None")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"hook(name=...) must be a non-empty str, got {name!r}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"hook(retry=...) takes a RetryPolicy, got {retry!r}")

    def mark(fn: HookFn) -> HookFn:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"a hook must be an async def function, got {fn!r}")
        definition = HookDefinition(
            name=name or f"{fn.__module__}.{fn.__qualname__}",
            fn=fn,
            on=events,
            workflows=names,
            retry=retry or DEFAULT_HOOK_RETRY,
        )
        fn.__ostinato_hook__ = definition  # type: ignore[attr-defined]
        return fn

    return mark


def build_hooks(hooks: Iterable[Callable[..., Any]]) -> list[HookDefinition]:
    """The definitions of ``Worker(hooks=...)``; a clear error for anything else."""
    out: list[HookDefinition] = []
    for fn in hooks:
        definition = getattr(fn, "__ostinato_hook__", None)
        if not isinstance(definition, HookDefinition):
            raise TypeError(f"Worker(hooks=...) takes functions decorated with @hook, got {fn!r}")
        if any(d.name == definition.name for d in out):
            raise ValueError(f"two hooks are named {definition.name!r}: give one a name=")
        out.append(definition)
    return out


def state_change(delivery: HookDelivery) -> RunStateChange:
    result: Any = None
    failure: BaseException | None = None
    reason: str | None = None
    if delivery.status == "paused":
        # The stored pause reason (UTF-8 text, not a payload).
        if delivery.result is not None:
            reason = delivery.result.decode("utf-8", errors="replace")
    elif delivery.status == "completed":
        try:
            result = orjson.loads(delivery.result or b"null")
        except orjson.JSONDecodeError:
            result = None
    elif delivery.result is not None:
        failure = decode_failure(delivery.result)
    return RunStateChange(
        id=delivery.delivery_id,
        instance_id=delivery.instance_id,
        run_id=delivery.run_id,
        workflow_name=delivery.workflow_name,
        status=_EVENT_OF_STATUS.get(delivery.status, delivery.status),
        time=datetime.fromtimestamp(delivery.occurred_at, tz=timezone.utc),
        result=result,
        failure=failure,
        attempt=delivery.attempt,
        reason=reason,
    )


class HookRunner:
    """The delivery loop of one worker."""

    def __init__(
        self,
        store: HookStore,
        hooks: Sequence[HookDefinition],
        queues: Sequence[str],
        *,
        clock: Callable[[], float],
        lease: float,
        batch: int,
    ) -> None:
        self.store = store
        self.hooks = {h.name: h for h in hooks}
        self.queues = tuple(queues)
        self.clock = clock
        self.lease = lease
        self.batch = batch
        self._subscribed_at: float | None = None

    async def subscribe(self) -> None:
        """Tell the backend to record the state changes of this worker's queues."""
        await self.store.subscribe_hooks(self.queues)
        self._subscribed_at = asyncio.get_running_loop().time()

    async def run_once(self) -> int:
        """Subscribe (again every 10 minutes), claim and deliver one batch; the number
        claimed."""
        loop = asyncio.get_running_loop()
        if self._subscribed_at is None or loop.time() - self._subscribed_at > 600:
            await self.subscribe()
        claimed = await self.store.claim_hook_deliveries(
            self.queues, list(self.hooks), self.lease, self.batch
        )
        if claimed:
            await asyncio.gather(*(self._deliver(d) for d in claimed))
        return len(claimed)

    async def _deliver(self, delivery: HookDelivery) -> None:
        definition = self.hooks[delivery.hook]
        event = state_change(delivery)
        names = list(self.hooks)
        if not definition.wants(event):
            await self.store.hook_delivered(delivery, names)
            return
        try:
            # A call that outlives its lease could run twice at once: it is cut short first.
            await asyncio.wait_for(definition.fn(event), timeout=self.lease * 0.9)
        except asyncio.CancelledError:
            raise  # the worker stops: the lease expires and the pair is delivered again
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, asyncio.TimeoutError):
                error = f"the hook ran longer than {self.lease * 0.9:g}s (hook lease 90%)"
            await self._failed(definition, delivery, error)
            return
        if not await self.store.hook_delivered(delivery, names):
            log.warning(
                "hook %s delivered %s after losing its lease; it may be delivered again",
                definition.name,
                delivery.delivery_id,
            )

    async def _failed(self, definition: HookDefinition, delivery: HookDelivery, error: str) -> None:
        if definition.retry.allows_another(delivery.attempt):
            retry_at = self.clock() + definition.retry.backoff(delivery.attempt)
            log.warning(
                "hook %s failed on %s (attempt %d): %s; retrying",
                definition.name,
                delivery.delivery_id,
                delivery.attempt,
                error,
            )
            await self.store.hook_failed(delivery, error, retry_at)
        else:
            log.error(
                "hook %s gave up on %s after %d attempts: %s (see client.list_hook_failures())",
                definition.name,
                delivery.delivery_id,
                delivery.attempt,
                error,
            )
            await self.store.hook_failed(delivery, error, None)
