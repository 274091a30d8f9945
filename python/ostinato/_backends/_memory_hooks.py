"""The in-memory backend's hook outbox (the reference for the SQL versions)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ._hook_store import (
    HOOK_STATUSES,
    SUBSCRIPTION_TTL,
    HookDelivery,
    HookFailureRecord,
    HookStore,
    delivery_id,
)
from ._types import Clock

__all__ = ["HookTables", "MemoryHooks"]


@dataclass
class _Attempt:
    attempts: int = 0
    state: str = "pending"  # pending | delivered | gave_up
    visible_at: float = 0.0
    lease_token: str | None = None
    lease_expires_at: float | None = None
    last_error: str | None = None


@dataclass
class _Delivery:
    seq: int
    delivery_id: str
    instance_id: str
    run_id: str
    workflow_name: str
    queue: str
    status: str
    occurred_at: float
    result: bytes | None
    attempts: dict[str, _Attempt] = field(default_factory=dict)


class HookTables:
    """Subscriptions, deliveries and attempts; written under the backend's lock."""

    def __init__(self) -> None:
        self.subscribed: dict[str, float] = {}  # queue -> subscribed until
        self.deliveries: dict[str, _Delivery] = {}
        self._seq = 0

    def record_state_change(
        self,
        *,
        instance_id: str,
        run_id: str,
        workflow_name: str,
        queue: str,
        status: str,
        result: bytes | None,
        now: float,
        key: str | None = None,
    ) -> None:
        """The outbox write of a run state change (call it in the change's critical section);
        nothing when no worker with hooks serves the queue, or for a status no hook sees.
        ``key``: the change's id when it is not ``delivery_id(...)`` (a numbered pause)."""
        if status not in HOOK_STATUSES or self.subscribed.get(queue, -1.0) < now:
            return
        key = key or delivery_id(instance_id, run_id, status)
        if key in self.deliveries:
            return
        self._seq += 1
        self.deliveries[key] = _Delivery(
            self._seq, key, instance_id, run_id, workflow_name, queue, status, now, result
        )

    def drop_runs(self, runs: Iterable[tuple[str, str]]) -> None:
        """Delete the deliveries (with their attempts) of deleted runs."""
        gone = set(runs)
        for key in [k for k, d in self.deliveries.items() if (d.instance_id, d.run_id) in gone]:
            del self.deliveries[key]

    def redact_run(self, instance_id: str, run_id: str) -> None:
        """Scrub a redacted run's payload from its deliveries, and its hooks' errors."""
        for row in self.deliveries.values():
            if row.instance_id == instance_id and row.run_id == run_id:
                row.result = None
                for attempt in row.attempts.values():
                    attempt.last_error = None

    def purge_given_up(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` deliveries older than ``before`` with a pair given up."""
        doomed = [
            row.delivery_id
            for row in sorted(self.deliveries.values(), key=lambda d: d.seq)
            if row.occurred_at < before and any(a.state == "gave_up" for a in row.attempts.values())
        ][:limit]
        for key in doomed:
            del self.deliveries[key]
        return len(doomed)


class MemoryHooks(HookStore):
    clock: Clock
    _lock: threading.RLock

    @property
    def _hooks(self) -> HookTables:
        raise NotImplementedError

    async def subscribe_hooks(self, queues: Sequence[str]) -> None:
        with self._lock:
            until = self.clock() + SUBSCRIPTION_TTL
            for queue in queues:
                self._hooks.subscribed[queue] = until

    async def claim_hook_deliveries(
        self, queues: Sequence[str], hooks: Sequence[str], lease_seconds: float, limit: int
    ) -> list[HookDelivery]:
        with self._lock:
            now = self.clock()
            token = uuid.uuid4().hex
            claimed: list[HookDelivery] = []
            rows = sorted(self._hooks.deliveries.values(), key=lambda d: d.seq)
            for row in rows:
                if row.queue not in queues:
                    continue
                for hook in hooks:
                    if len(claimed) >= limit:
                        return claimed
                    attempt = row.attempts.get(hook)
                    if attempt is None:
                        attempt = row.attempts[hook] = _Attempt()
                    elif not (
                        attempt.state == "pending"
                        and attempt.visible_at <= now
                        and (attempt.lease_expires_at is None or attempt.lease_expires_at <= now)
                    ):
                        continue
                    attempt.attempts += 1
                    attempt.lease_token = token
                    attempt.lease_expires_at = now + lease_seconds
                    claimed.append(
                        HookDelivery(
                            delivery_id=row.delivery_id,
                            hook=hook,
                            instance_id=row.instance_id,
                            run_id=row.run_id,
                            workflow_name=row.workflow_name,
                            queue=row.queue,
                            status=row.status,
                            occurred_at=row.occurred_at,
                            result=row.result,
                            attempt=attempt.attempts,
                            lease_token=token,
                        )
                    )
            return claimed

    def _leased(self, delivery: HookDelivery) -> tuple[_Delivery, _Attempt] | None:
        row = self._hooks.deliveries.get(delivery.delivery_id)
        attempt = None if row is None else row.attempts.get(delivery.hook)
        if row is None or attempt is None or attempt.state != "pending":
            return None
        if attempt.lease_token != delivery.lease_token:
            return None
        return row, attempt

    async def hook_delivered(self, delivery: HookDelivery, hooks: Sequence[str]) -> bool:
        with self._lock:
            leased = self._leased(delivery)
            if leased is None:
                return False
            row, attempt = leased
            attempt.state = "delivered"
            attempt.lease_token = attempt.lease_expires_at = None
            if all(
                row.attempts.get(h) is not None and row.attempts[h].state == "delivered"
                for h in hooks
            ):
                del self._hooks.deliveries[row.delivery_id]
            return True

    async def hook_failed(self, delivery: HookDelivery, error: str, retry_at: float | None) -> bool:
        with self._lock:
            leased = self._leased(delivery)
            if leased is None:
                return False
            _, attempt = leased
            attempt.lease_token = attempt.lease_expires_at = None
            attempt.last_error = error
            if retry_at is None:
                attempt.state = "gave_up"
            else:
                attempt.visible_at = retry_at
            return True

    async def purge_hook_failures(self, given_up_before: float, limit: int) -> int:
        with self._lock:
            return self._hooks.purge_given_up(given_up_before, limit)

    async def list_hook_failures(self, limit: int = 100) -> list[HookFailureRecord]:
        with self._lock:
            out = [
                HookFailureRecord(
                    delivery_id=row.delivery_id,
                    hook=hook,
                    instance_id=row.instance_id,
                    run_id=row.run_id,
                    workflow_name=row.workflow_name,
                    status=row.status,
                    occurred_at=row.occurred_at,
                    attempts=attempt.attempts,
                    last_error=attempt.last_error or "",
                )
                for row in sorted(self._hooks.deliveries.values(), key=lambda d: -d.seq)
                for hook, attempt in sorted(row.attempts.items())
                if attempt.state == "gave_up"
            ]
            return out[:limit]
