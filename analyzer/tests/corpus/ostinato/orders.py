"""Order processing in ostinato's idiom: activities, a signal channel, a child, a saga."""

import asyncio
import os
import time
from datetime import timedelta

from ostinato import RetryPolicy, activity, workflow

RETRY = RetryPolicy(max_attempts=5, initial_interval=timedelta(seconds=1))
SEEN_ORDERS: set[str] = set()


@activity.defn
async def reserve(order_id: str, sku: str) -> str:
    return f"{order_id}:{sku}:{time.time()}"  # activities may do anything


@activity.defn
def release(reservation: str) -> None:
    print("released", reservation, os.getpid())


@workflow.defn(name="orders.ship")
async def ship(order_id: str) -> str:
    await workflow.sleep(timedelta(hours=2))
    return f"shipped {order_id}"


@workflow.defn(name="orders.process")
async def process_order(order_id: str, skus: list[str]) -> str:
    approvals = workflow.signal_channel("approve", type=bool)
    reservations: list[str] = []
    try:
        for sku in skus:
            reservation = await workflow.execute_activity(
                reserve, order_id, sku, retry=RETRY, start_to_close_timeout=timedelta(seconds=30)
            )
            reservations.append(reservation)
        if not await approvals.receive(timeout=timedelta(days=1)):
            raise RuntimeError("not approved")
    except BaseException:
        for reservation in reversed(reservations):
            await asyncio.shield(workflow.execute_activity(release, reservation))
        raise
    SEEN_ORDERS.add(order_id)  # OST109
    if os.environ.get("FAST_SHIPPING"):  # OST106
        return await workflow.execute_child(ship, order_id, id=f"ship-{order_id}")
    started = workflow.now()
    deadline = time.monotonic() + 60  # OST101
    workflow.logger.info("order %s started %s, deadline %s", order_id, started, deadline)
    return await workflow.execute_child(ship, order_id, id=f"ship-{order_id}")
