"""A nightly report on a schedule: every night at 02:30 Paris time a workflow gathers the
day's figures (an activity) and sends the report (another). The schedule lives in the
database and the worker fires it: there is no cron daemon, a fire is never started twice
(even with several workers), and fires missed while no worker ran are caught up within
ten minutes, then skipped and counted.

The demo uses ``--every 2`` seconds instead of the nightly cron so it finishes quickly:

    python examples/nightly_report.py --db reports.db --every 2 --fires 3
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

import ostinato
from ostinato import activity, workflow


@activity.defn
def gather_figures(region: str, day: str) -> dict[str, int]:
    # A real report would query a warehouse here.
    return {"orders": 100 + len(day) + len(region), "refunds": 3}


@activity.defn
def send_report(region: str, day: str, figures: dict[str, int]) -> str:
    line = f"report {region} {day}: {figures['orders']} orders, {figures['refunds']} refunds"
    print(f"    {line}", flush=True)
    return line


@workflow.defn(name="reports.nightly")
async def nightly_report(region: str) -> str:
    # The day reported on is the run's own start time: replay-safe, unlike datetime.now().
    day = workflow.now().date().isoformat()
    figures = await workflow.execute_activity(gather_figures, region, day)
    return await workflow.execute_activity(send_report, region, day, figures)


async def ensure_schedule(client: ostinato.Client, every: float | None) -> ostinato.ScheduleHandle:
    """Create the schedule once; later starts of the program find it in the database."""
    try:
        return await client.get_schedule("nightly-report-eu")
    except ostinato.ScheduleNotFoundError:
        timing = {"every": every} if every else {"cron": "30 2 * * *"}
        return await client.create_schedule(
            "nightly-report-eu",
            nightly_report,
            "eu",
            timezone="Europe/Paris",
            overlap="skip",
            catchup_window=timedelta(minutes=10),
            **timing,  # type: ignore[arg-type]
        )


async def main(db: str, every: float | None, fires: int) -> None:
    backend = ostinato.connect(f"sqlite:///{db}")
    client = ostinato.Client(backend)
    schedule = await ensure_schedule(client, every)
    print(f"schedule: {(await schedule.describe()).spec}")
    async with ostinato.Worker(
        backend, workflows=[nightly_report], activities=[gather_figures, send_report]
    ):
        while (await schedule.describe()).runs_started < fires:
            await asyncio.sleep(0.2)
        desc = await schedule.describe()
        for run in desc.recent_runs:
            await client.get_handle(run.instance_id).result(timeout=30)
    desc = await schedule.describe()
    print(f"started {desc.runs_started} runs; next fire {desc.next_fires[0].isoformat()}")
    for run in desc.recent_runs:
        status = (await client.get_handle(run.instance_id).describe()).status
        print(f"  {run.instance_id}  {run.cause:9} {status}")
    await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="reports.db")
    parser.add_argument("--every", type=float, default=None, help="seconds (default: nightly cron)")
    parser.add_argument("--fires", type=int, default=1)
    options = parser.parse_args()
    asyncio.run(main(options.db, options.every, options.fires))
