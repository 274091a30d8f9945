"""Round trips saved on a workflow's path (issue 14), each with the behaviour it must keep."""

from __future__ import annotations

import ostinato
import pytest
from ostinato import workflow


@workflow.defn(name="round_trips.waiter")
async def waiter() -> str:
    return str(await workflow.signal_channel("go").receive())


async def test_result_waits_for_the_run_its_start_created(backend_url: str) -> None:
    """A handle from start_workflow knows its run: result() waits for that run (and the runs
    it continues as), not for whichever run is the id's latest when result() is called."""
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(backend, workflows=[waiter], poll_interval=0.05):
            first = await client.start_workflow(waiter, id="order")
            same = await client.start_workflow(waiter, id="order", id_conflict="use_existing")
            second = await client.start_workflow(
                waiter, id="order", id_conflict="terminate_existing"
            )
            await second.signal("go", "second")
            with pytest.raises(ostinato.WorkflowTerminatedError, match="id_conflict"):
                await first.result(timeout=10)
            # use_existing started nothing: its handle follows the id's latest run.
            assert await same.result(timeout=10) == "second"
            assert await second.result(timeout=10) == "second"
            # Everything else a handle does still goes to the id's latest run.
            assert first.run_id is None
            assert (await first.describe()).run_id == (await second.describe()).run_id
    finally:
        await backend.close()
