"""An approval flow: an expense claim waits for a manager's decision (a signal) with a
deadline (a durable timer). Claims that nobody decides in time are escalated to a second
approver; if that one is silent too, the claim is rejected. Each step is visible from outside
with ``client.get_vars(id)`` and ``handle.describe()`` (pending timers).

The deadlines are a fraction of a second so the demo finishes quickly; in production they
would be days, and the workflow would survive restarts of the process meanwhile.

    python examples/approval.py --db approval.db
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

import ostinato
from ostinato import activity, workflow


@dataclass
class Claim:
    claim_id: str
    employee: str
    amount_cents: int


@dataclass
class Decision:
    approver: str
    approved: bool
    note: str = ""


@activity.defn
def notify(to: str, message: str) -> None:
    print(f"    [to {to}] {message}", flush=True)


@activity.defn
def pay(claim: Claim) -> str:
    return f"paid {claim.amount_cents / 100:.2f} to {claim.employee}"


@workflow.defn(name="expenses.approve")
async def approve_claim(claim: Claim, deadline: float) -> str:
    decisions = workflow.signal_channel("decision", Decision)
    for approver in ("manager", "director"):
        workflow.set_var("waiting_for", approver)
        await workflow.execute_activity(
            notify, approver, f"please decide on claim {claim.claim_id} ({claim.employee})"
        )
        try:
            decision: Decision = await decisions.receive(timeout=deadline)
        except asyncio.TimeoutError:
            workflow.logger.info("%s did not answer in time", approver)
            continue
        workflow.set_var("decided_by", decision.approver)
        if not decision.approved:
            await workflow.execute_activity(
                notify, claim.employee, f"claim {claim.claim_id} rejected: {decision.note}"
            )
            return f"rejected by {decision.approver}"
        receipt = await workflow.execute_activity(pay, claim)
        return f"approved by {decision.approver}: {receipt}"
    workflow.set_var("waiting_for", None)
    await workflow.execute_activity(
        notify, claim.employee, f"claim {claim.claim_id} expired without a decision"
    )
    return "expired"


async def main(db: str) -> None:
    backend = ostinato.connect(f"sqlite:///{db}")
    async with ostinato.Worker(backend, workflows=[approve_claim], activities=[notify, pay]):
        client = ostinato.Client(backend)
        deadline = 0.4
        quick = await client.start_workflow(
            approve_claim, Claim("c-1", "ada", 4_200), deadline, id="claim-c-1"
        )
        refused = await client.start_workflow(
            approve_claim, Claim("c-2", "bob", 990_000), deadline, id="claim-c-2"
        )
        escalated = await client.start_workflow(
            approve_claim, Claim("c-3", "cy", 12_000), deadline, id="claim-c-3"
        )
        silent = await client.start_workflow(
            approve_claim, Claim("c-4", "dee", 800), deadline, id="claim-c-4"
        )
        while not (desc := await quick.describe()).pending_timers:
            await asyncio.sleep(0.02)
        print(
            f"{quick.id} waits for {(await quick.get_vars())['waiting_for']}; "
            f"timer due at {desc.pending_timers[0].fire_at:%H:%M:%S.%f}"
        )
        await quick.signal("decision", Decision("manager", True))
        await refused.signal("decision", Decision("manager", False, "over budget"))
        # Nobody answers claim c-3 in time: it moves on to the director, who approves.
        while (await client.get_vars(escalated.id)).get("waiting_for") != "director":
            await asyncio.sleep(0.05)
        await escalated.signal("decision", Decision("director", True))
        for handle in (quick, refused, escalated, silent):
            print(f"{handle.id}: {await handle.result(timeout=30)}")
    await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="approval.db")
    asyncio.run(main(parser.parse_args().db))
