"""Order processing: reserve stock, charge with retries, wait for a manager's approval of big
orders (a signal, with a timeout), ship, and follow up a day later (a durable timer).

    python examples/orders.py --db orders.db
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import timedelta

import ostinato
from ostinato import ApplicationError, RetryPolicy, activity, workflow

APPROVAL_LIMIT_CENTS = 100_000


@dataclass
class Order:
    order_id: str
    customer: str
    sku: str
    quantity: int
    amount_cents: int


@dataclass
class OrderResult:
    order_id: str
    status: str
    receipt: str | None = None
    tracking: str | None = None


class Shop:
    """Activities as methods of an object holding shared state (stock, a flaky gateway)."""

    def __init__(self) -> None:
        self.stock = {"book": 10, "lamp": 2}
        self.gateway_calls = 0

    @activity.defn
    async def reserve(self, sku: str, quantity: int) -> None:
        if self.stock.get(sku, 0) < quantity:
            raise ApplicationError(f"not enough {sku} in stock", non_retryable=True)
        self.stock[sku] -= quantity

    @activity.defn
    async def release(self, sku: str, quantity: int) -> None:
        self.stock[sku] = self.stock.get(sku, 0) + quantity

    @activity.defn
    async def charge(self, order_id: str, amount_cents: int) -> str:
        self.gateway_calls += 1
        if self.gateway_calls % 3 == 1:  # the gateway drops every third call
            raise ConnectionError("payment gateway unavailable")
        return f"rcpt-{order_id}"

    @activity.defn
    def ship(self, order_id: str, customer: str) -> str:
        return f"TRACK-{order_id.upper()}"

    @activity.defn
    def send_feedback_request(self, customer: str, order_id: str) -> None:
        print(f"    [email to {customer}] how was order {order_id}?", flush=True)


@workflow.defn(name="orders.process")
async def process_order(order: Order, approval_timeout: float = 3600.0) -> OrderResult:
    await workflow.execute_activity(Shop.reserve, order.sku, order.quantity)
    if order.amount_cents > APPROVAL_LIMIT_CENTS:
        workflow.set_var("waiting_for", "approval")
        decisions = workflow.signal_channel("approval", bool)
        try:
            approved = await decisions.receive(timeout=approval_timeout)
        except asyncio.TimeoutError:
            approved = False
        if not approved:
            await workflow.execute_activity(Shop.release, order.sku, order.quantity)
            return OrderResult(order.order_id, "rejected")
    workflow.set_var("waiting_for", "payment")
    receipt = await workflow.execute_activity(
        Shop.charge,
        order.order_id,
        order.amount_cents,
        retry=RetryPolicy(initial_interval=0.05, max_attempts=5),
        start_to_close_timeout=timedelta(seconds=30),
    )
    tracking = await workflow.execute_activity(Shop.ship, order.order_id, order.customer)
    workflow.set_var("waiting_for", "feedback timer")
    await workflow.sleep(timedelta(seconds=1))  # "a day later", shortened for the demo
    await workflow.execute_activity(Shop.send_feedback_request, order.customer, order.order_id)
    return OrderResult(order.order_id, "completed", receipt, tracking)


async def main(db: str) -> None:
    backend = ostinato.connect(f"sqlite:///{db}")
    shop = Shop()
    async with ostinato.Worker(
        backend,
        workflows=[process_order],
        activities=[shop.reserve, shop.release, shop.charge, shop.ship, shop.send_feedback_request],
    ):
        client = ostinato.Client(backend)
        small = await client.start_workflow(
            process_order, Order("o-1", "ada", "book", 1, 2_500), id="order-o-1"
        )
        big = await client.start_workflow(
            process_order, Order("o-2", "grace", "lamp", 2, 250_000), id="order-o-2"
        )
        await asyncio.sleep(0.2)
        print(big.id, "is waiting:", await big.get_vars())
        await big.signal("approval", True)
        for handle in (small, big):
            result = await handle.result(timeout=30)
            print(f"{handle.id}: {result}")
        print("stock left:", shop.stock)
    await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="orders.db")
    asyncio.run(main(parser.parse_args().db))
    sys.exit(0)
