"""A payment queue that never overloads the payment provider: every card charge runs on the
queue "payments", limited to 5 calls at once and 50 per second across all workers and
processes (``client.set_queue_limits``). The limits live in the database, so a worker started
tomorrow on another machine obeys them too; other queues are not slowed down.

The provider here is a stub that counts the calls in flight and refuses a sixth one, the way
a real one answers 429. The orders wait in the database until the workers start (as after an
outage); a few express orders, taken last, are charged first: they are started with
``priority=`` and charge with ``execute_activity(..., priority=)`` (docs/queues.md, Priority):

    python examples/payments_queue.py --db payments.db --orders 200
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import ostinato
from ostinato import ApplicationError, activity, workflow

PAYMENTS = "payments"


@dataclass
class Provider:
    """The payment provider's side: it allows 5 concurrent calls and 50 per second."""

    max_concurrent: int = 5
    in_flight: int = 0
    most_in_flight: int = 0
    calls: list[float] = field(default_factory=list)
    charged: list[str] = field(default_factory=list)  # order ids, in the order of the calls

    async def charge(self, order_id: str, cents: int) -> str:
        if self.in_flight >= self.max_concurrent:
            raise ApplicationError("429 Too Many Requests", non_retryable=True)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.calls.append(time.monotonic())
        self.charged.append(order_id)
        try:
            await asyncio.sleep(0.03)  # the provider's latency
            return f"ch_{order_id}_{cents}"
        finally:
            self.in_flight -= 1

    def most_calls_within(self, seconds: float) -> int:
        """The most calls the provider saw within any window of ``seconds``."""
        calls = sorted(self.calls)
        return max(
            (sum(1 for c in calls[i:] if c < t + seconds) for i, t in enumerate(calls)), default=0
        )


provider = Provider()


@activity.defn
async def charge_card(order_id: str, cents: int) -> str:
    return await provider.charge(order_id, cents)


EXPRESS = 50  # the priority of express orders (ordinary ones have 0)


@workflow.defn(name="payments.checkout")
async def checkout(order_id: str, cents: int, express: bool = False) -> str:
    return await workflow.execute_activity(
        charge_card, order_id, cents, queue=PAYMENTS, priority=EXPRESS if express else 0
    )


async def limit_payments(client: ostinato.Client) -> None:
    await client.set_queue_limits(PAYMENTS, max_concurrent=5, rate_limit=(50, timedelta(seconds=1)))


async def main(url: str, orders: int, express: int = 5) -> dict[str, Any]:
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    await limit_payments(client)
    print(f"limits of {PAYMENTS!r}: {await client.get_queue_limits(PAYMENTS)}")
    began = time.monotonic()
    handles = [
        await client.start_workflow(checkout, f"o{i}", 1_000 + i, id=f"checkout-{i}")
        for i in range(orders)
    ]
    # Taken last, charged first.
    handles += [
        await client.start_workflow(
            checkout, f"x{i}", 5_000 + i, True, id=f"express-{i}", priority=EXPRESS
        )
        for i in range(express)
    ]
    # Two workers, 20 activity slots each: without the limits they would call the provider
    # 40 times at once.
    workers = [
        ostinato.Worker(
            backend,
            workflows=[checkout],
            activities=[charge_card],
            queues=("default", PAYMENTS),
            max_concurrent_activities=20,
        )
        for _ in range(2)
    ]
    async with workers[0], workers[1]:
        receipts = [await h.result(timeout=120) for h in handles]
    elapsed = time.monotonic() - began
    await backend.close()
    figures = {
        "charges": len(receipts),
        "seconds": round(elapsed, 2),
        "most_in_flight": provider.most_in_flight,
        # The limit holds at claim time; the provider sees each call a few milliseconds later,
        # so a window of exactly 1 s there may hold one more (docs/queues.md, tolerance).
        "most_in_0.95s": provider.most_calls_within(0.95),
        # Where the express charges came among all the provider's calls (0 = first).
        "express_positions": [i for i, o in enumerate(provider.charged) if o.startswith("x")],
    }
    print(figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="payments.db")
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(f"sqlite:///{args.db}", args.orders))
