"""A subscription that bills its customer every cycle (after simple-workflow-go's sample).

The payment provider is flaky: ``charge`` fails 70% of the time, and the engine retries it
with back-off. The workflow publishes its progress with ``workflow.set_var``, which this
script reads from outside with ``client.get_vars`` while the workflow runs.

To show durability the demo runs the worker in a child process, kills it with SIGKILL in
the middle of the subscription, starts a new one, and the workflow carries on from where
it was: completed cycles are not billed twice.

    python examples/subscription.py --db demo.db            # the demo
    python examples/subscription.py --db demo.db worker     # just a worker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import ostinato
from ostinato import RetryPolicy, activity, workflow


@dataclass
class Subscription:
    customer: str
    cycles: int
    cycle_seconds: float
    price_cents: int


@activity.defn
def charge(customer: str, cycle: int, amount_cents: int) -> str:
    """Charge the customer through a payment provider that fails 70% of the time."""
    if random.random() < 0.7:
        raise ConnectionError(f"payment provider timed out (cycle {cycle})")
    return f"receipt-{customer}-{cycle}"


@activity.defn
async def send_email(customer: str, text: str) -> None:
    print(f"    [email to {customer}] {text}", flush=True)


@workflow.defn(name="subscription")
async def subscription(sub: Subscription) -> list[str]:
    receipts: list[str] = []
    start = workflow.now()
    workflow.set_var("status", "trial")
    await workflow.execute_activity(send_email, sub.customer, "welcome! your trial started")
    for cycle in range(1, sub.cycles + 1):
        # Bill at the end of each cycle, measured from the start of the subscription.
        await workflow.wait_until(start + timedelta(seconds=sub.cycle_seconds * cycle))
        receipt = await workflow.execute_activity(
            charge,
            sub.customer,
            cycle,
            sub.price_cents,
            retry=RetryPolicy(initial_interval=0.05, max_interval=0.5, max_attempts=50),
            start_to_close_timeout=10,
        )
        receipts.append(receipt)
        workflow.set_var("status", "active")
        workflow.set_var("cycles_billed", cycle)
        workflow.set_var("total_cents", cycle * sub.price_cents)
        workflow.logger.info("cycle %d billed: %s", cycle, receipt)
    await workflow.execute_activity(send_email, sub.customer, "thanks! subscription complete")
    workflow.set_var("status", "completed")
    return receipts


async def run_worker(url: str) -> None:
    backend = ostinato.connect(url)
    worker = ostinato.Worker(
        backend, workflows=[subscription], activities=[charge, send_email], handle_signals=True
    )
    await worker.run()


def spawn_worker(db: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--db", db, "worker"])


async def demo(db: str, cycles: int) -> int:
    url = f"sqlite:///{db}"
    client = ostinato.Client(ostinato.connect(url))
    sub = Subscription(customer="ada", cycles=cycles, cycle_seconds=0.5, price_cents=999)
    handle = await client.start_workflow(subscription, sub, id=f"subscription-ada-{os.getpid()}")
    print(f"started workflow {handle.id} on {url}")
    worker = spawn_worker(db)
    killed = False
    last = None
    try:
        while True:
            progress = await client.get_vars(handle.id)
            if progress != last:
                print(f"  progress: {progress}", flush=True)
                last = progress
            if not killed and progress.get("cycles_billed", 0) >= cycles // 2:
                print(f"  !! killing the worker (pid {worker.pid}) with SIGKILL", flush=True)
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                killed = True
                worker = spawn_worker(db)
                print(f"  .. started a new worker (pid {worker.pid})", flush=True)
            if (await handle.describe()).status != "running":
                break
            await asyncio.sleep(0.1)
        receipts = await handle.result(timeout=5)
    finally:
        worker.terminate()
        worker.wait()
    history = await handle.history()
    charged = [e for e in history if e["kind"] == "activity_completed" and "receipt" in str(e)]
    print(f"done: {len(receipts)} receipts {receipts}")
    attempts = [e["attempt"] for e in charged]
    print(f"history: {len(history)} events; {len(charged)} charges recorded (one per cycle)")
    print(f"payment attempts per cycle (the provider fails 70% of the time): {attempts}")
    return 0 if len(charged) == cycles else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="demo.db", help="SQLite file (default demo.db)")
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("mode", nargs="?", default="demo", choices=["demo", "worker"])
    args = parser.parse_args()
    if args.mode == "worker":
        asyncio.run(run_worker(f"sqlite:///{args.db}"))
        return 0
    return asyncio.run(demo(args.db, args.cycles))


if __name__ == "__main__":
    sys.exit(main())
