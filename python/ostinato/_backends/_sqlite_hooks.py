"""The SQLite backend's hook outbox (tables ``hook_*``, migration 0005): the ``HookStore``
methods, as a layer over ``SqliteCore``. Deliveries are written by a trigger on ``runs``."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

import orjson

from ._hook_store import (
    SUBSCRIPTION_TTL,
    HookDelivery,
    HookFailureRecord,
    HookStore,
    failure_record,
)
from ._sqlite_core import SqliteCore
from ._sqlite_sql import QUERIES as Q
from ._sqlite_store import Wake

__all__ = ["SqliteHooks"]


class SqliteHooks(SqliteCore, HookStore):
    async def subscribe_hooks(self, queues: Sequence[str]) -> None:
        def op(conn: sqlite3.Connection, wake: Wake) -> None:
            until = self.clock() + SUBSCRIPTION_TTL
            conn.executemany(Q["subscribe_hooks"], [(queue, until) for queue in queues])

        await self._call(op)

    async def claim_hook_deliveries(
        self, queues: Sequence[str], hooks: Sequence[str], lease_seconds: float, limit: int
    ) -> list[HookDelivery]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[HookDelivery]:
            now = self.clock()
            token = uuid.uuid4().hex
            pairs = conn.execute(
                Q["claimable_hook_pairs"],
                (orjson.dumps(list(hooks)), orjson.dumps(list(queues)), now, now, limit),
            ).fetchall()
            claimed = []
            for delivery_id, hook in pairs:
                (attempts,) = conn.execute(
                    Q["claim_hook_pair"], (delivery_id, hook, now, token, now + lease_seconds)
                ).fetchone()
                row = conn.execute(Q["hook_delivery_row"], (delivery_id,)).fetchone()
                instance_id, run_id, name, queue, status, occurred_at, result = row
                claimed.append(
                    HookDelivery(
                        delivery_id=delivery_id,
                        hook=hook,
                        instance_id=instance_id,
                        run_id=run_id,
                        workflow_name=name,
                        queue=queue,
                        status=status,
                        occurred_at=occurred_at,
                        result=None if result is None else bytes(result),
                        attempt=attempts,
                        lease_token=token,
                    )
                )
            return claimed

        return await self._call(op)

    async def hook_delivered(self, delivery: HookDelivery, hooks: Sequence[str]) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            key = delivery.delivery_id
            fence = (key, delivery.hook, delivery.lease_token)
            if conn.execute(Q["hook_pair_delivered"], fence).rowcount != 1:
                return False
            names = orjson.dumps(sorted(set(hooks)))
            deleted = conn.execute(
                Q["delete_delivered_hook_delivery"], (key, key, names, len(set(hooks)))
            )
            if deleted.rowcount == 1:
                conn.execute(Q["delete_hook_attempts"], (key,))
            return True

        return await self._call(op)

    async def hook_failed(self, delivery: HookDelivery, error: str, retry_at: float | None) -> bool:
        def op(conn: sqlite3.Connection, wake: Wake) -> bool:
            params = (
                error,
                retry_at,
                retry_at,
                delivery.delivery_id,
                delivery.hook,
                delivery.lease_token,
            )
            return conn.execute(Q["hook_pair_failed"], params).rowcount == 1

        return await self._call(op)

    async def purge_hook_failures(self, given_up_before: float, limit: int) -> int:
        def op(conn: sqlite3.Connection, wake: Wake) -> int:
            rows = conn.execute(
                Q["purge_given_up_hook_deliveries"], (given_up_before, limit)
            ).fetchall()
            for (key,) in rows:
                conn.execute(Q["delete_hook_attempts"], (key,))
                conn.execute(Q["delete_hook_delivery"], (key,))
            conn.execute(Q["delete_orphan_hook_attempts"])
            return len(rows)

        return await self._call(op)

    async def list_hook_failures(self, limit: int = 100) -> list[HookFailureRecord]:
        def op(conn: sqlite3.Connection, wake: Wake) -> list[HookFailureRecord]:
            return [failure_record(row) for row in conn.execute(Q["list_hook_failures"], (limit,))]

        return await self._read(op)
