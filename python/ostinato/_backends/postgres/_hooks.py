"""The hook outbox (tables ``hook_*``, migration 0007): the ``HookStore`` methods.
Deliveries are written by a trigger on ``runs``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from .._hook_store import (
    SUBSCRIPTION_TTL,
    HookDelivery,
    HookFailureRecord,
    HookStore,
    failure_record,
)
from ._core import _Core, _Effects
from ._pool import Conn

__all__ = ["_HookSide"]


class _HookSide(_Core, HookStore):
    async def subscribe_hooks(self, queues: Sequence[str]) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            params = {"queues": list(queues), "until": self.clock() + SUBSCRIPTION_TTL}
            await self._execute(conn, "subscribe_hooks", params)

        await self._run("subscribing hooks", body)

    async def claim_hook_deliveries(
        self, queues: Sequence[str], hooks: Sequence[str], lease_seconds: float, limit: int
    ) -> list[HookDelivery]:
        async def body(conn: Conn, effects: _Effects) -> list[HookDelivery]:
            now = self.clock()
            token = uuid.uuid4().hex
            params = {
                "queues": list(queues),
                "hooks": list(hooks),
                "now": now,
                "token": token,
                "expires": now + lease_seconds,
                "limit": limit,
            }
            return [
                HookDelivery(
                    delivery_id=r[0],
                    hook=r[1],
                    instance_id=r[2],
                    run_id=r[3],
                    workflow_name=r[4],
                    queue=r[5],
                    status=r[6],
                    occurred_at=float(r[7]),
                    result=None if r[8] is None else bytes(r[8]),
                    attempt=int(r[9]),
                    lease_token=token,
                )
                for r in await self._fetchall(conn, "claim_hook_deliveries", params)
            ]

        return await self._run("claiming hook deliveries", body)

    def _fence(self, delivery: HookDelivery) -> dict[str, object]:
        return {
            "delivery_id": delivery.delivery_id,
            "hook": delivery.hook,
            "token": delivery.lease_token,
        }

    async def hook_delivered(self, delivery: HookDelivery, hooks: Sequence[str]) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            key = {"delivery_id": delivery.delivery_id}
            await self._fetchone(conn, "lock_hook_delivery", key)
            if await self._fetchone(conn, "hook_pair_delivered", self._fence(delivery)) is None:
                return False
            params = key | {"hooks": sorted(set(hooks))}
            await self._execute(conn, "delete_delivered_hook_delivery", params)
            return True

        return await self._run(f"recording hook delivery {delivery.delivery_id!r}", body)

    async def hook_failed(self, delivery: HookDelivery, error: str, retry_at: float | None) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            params = self._fence(delivery) | {"error": error, "retry_at": retry_at}
            return await self._fetchone(conn, "hook_pair_failed", params) is not None

        return await self._run(f"recording hook failure {delivery.delivery_id!r}", body)

    async def purge_hook_failures(self, given_up_before: float, limit: int) -> int:
        async def body(conn: Conn, effects: _Effects) -> int:
            params = {"before": given_up_before, "limit": limit}
            return len(await self._fetchall(conn, "purge_hook_failures", params))

        return await self._run("purging given-up hook deliveries", body)

    async def list_hook_failures(self, limit: int = 100) -> list[HookFailureRecord]:
        async def body(conn: Conn, effects: _Effects) -> list[HookFailureRecord]:
            rows = await self._fetchall(conn, "list_hook_failures", {"limit": limit})
            return [failure_record(r) for r in rows]

        return await self._run("listing hook failures", body, transaction=False)
