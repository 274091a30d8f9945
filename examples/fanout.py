"""Fan-out / fan-in with child workflows: a report over many regions starts one child
workflow per region, gathers their results with ``asyncio.gather`` and adds them up. One
region's data is broken: its child fails and the parent sees a ``ChildWorkflowError`` with the
cause, and reports the region as missing instead of failing the whole report.

Each child is a workflow of its own, with its own history, id and status: list them with
``ostinato list sqlite:///fanout.db``.

    python examples/fanout.py --db fanout.db
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

import ostinato
from ostinato import ApplicationError, RetryPolicy, activity, workflow


@dataclass
class RegionTotal:
    region: str
    orders: int
    revenue_cents: int


@dataclass
class Report:
    regions: list[RegionTotal] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    revenue_cents: int = 0


@activity.defn
async def fetch_orders(region: str) -> list[int]:
    """Pretend to query one region's database: amounts of its orders, in cents."""
    await asyncio.sleep(0.02)
    if region == "atlantis":
        raise ApplicationError(f"region {region!r} has no database", non_retryable=True)
    seed = sum(map(ord, region))
    return [(seed * (i + 7)) % 10_000 for i in range(seed % 20 + 5)]


@workflow.defn(name="reports.region")
async def region_total(region: str) -> RegionTotal:
    amounts = await workflow.execute_activity(
        fetch_orders, region, retry=RetryPolicy(initial_interval=0.05, max_attempts=3)
    )
    return RegionTotal(region, len(amounts), sum(amounts))


@workflow.defn(name="reports.all")
async def regional_report(regions: list[str]) -> Report:
    workflow.set_var("regions", len(regions))
    # Fan out: one child per region. Child ids default to "<parent id>/<run>-<n>"; naming them
    # makes them easy to find (and starting the same report twice cannot run a region twice).
    report_id = workflow.info().instance_id
    children = [
        workflow.start_child(region_total, region, id=f"{report_id}/{region}") for region in regions
    ]
    # Fan in: return_exceptions keeps one failed child from cancelling the others.
    outcomes = await asyncio.gather(*children, return_exceptions=True)
    report = Report()
    for region, outcome in zip(regions, outcomes, strict=True):
        if isinstance(outcome, ostinato.ChildWorkflowError):
            report.missing[region] = str(outcome.cause)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            report.regions.append(outcome)
            report.revenue_cents += outcome.revenue_cents
    return report


async def main(db: str) -> None:
    backend = ostinato.connect(f"sqlite:///{db}")
    regions = ["north", "south", "east", "west", "atlantis", "centre"]
    async with ostinato.Worker(
        backend, workflows=[regional_report, region_total], activities=[fetch_orders]
    ):
        client = ostinato.Client(backend)
        handle = await client.start_workflow(regional_report, regions)
        report = await handle.result(timeout=30)
        for total in report.regions:
            print(
                f"  {total.region:<8} {total.orders:>3} orders  {total.revenue_cents / 100:>9.2f}"
            )
        for region, reason in report.missing.items():
            print(f"  {region:<8} missing: {reason}")
        print(f"  total    {report.revenue_cents / 100:>23.2f}")
        child = await client.get_handle(f"{handle.id}/north").describe()
        print(f"child {child.instance_id}: {child.status}, parent {child.parent_instance_id}")
    await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="fanout.db")
    asyncio.run(main(parser.parse_args().db))
