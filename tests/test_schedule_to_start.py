"""Time in queue (schedule-to-start) of every workflow task and every activity attempt, on
every backend: measured from when the task became ready (a timer's fire time, a retry's
time, the end of a start delay), not from when the run or the activity was first scheduled."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import ostinato
import prometheus_client
import pytest
from e2e_support import harness
from ostinato import ApplicationError, activity, workflow
from prometheus_client.parser import text_string_to_metric_families

_calls: dict[str, int] = {}


@activity.defn
async def fails_once(key: str) -> str:
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] == 1:
        raise ApplicationError("once", type="Once")
    return "ok"


# A retry 1.5 s after the failed attempt: measured from the first schedule, the retry's time
# in queue would be over 1.5 s.
_RETRY = ostinato.RetryPolicy(initial_interval=timedelta(seconds=1.5))


@workflow.defn
async def sleeps_then_retries() -> str:
    await workflow.sleep(timedelta(seconds=1.5))
    return await workflow.execute_activity(fails_once, workflow.info().run_id, retry=_RETRY)


WF = "ostinato_workflow_schedule_to_start_seconds"
ACT = "ostinato_activity_schedule_to_start_seconds"


def histogram(registry: prometheus_client.CollectorRegistry, name: str) -> dict[str, float]:
    """count, sum and the count of the le=1.0 bucket of ``name`` (one label set here)."""
    text = prometheus_client.generate_latest(registry).decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == f"{name}_count":
                out["count"] = s.value
            elif s.name == f"{name}_sum":
                out["sum"] = s.value
            elif s.name == f"{name}_bucket" and s.labels["le"] == "1.0":
                out["le1"] = s.value
    return out


@pytest.mark.parametrize("backend_url", ["memory", "sqlite", "postgres"], indirect=True)
async def test_every_task_and_attempt_counts_its_own_time_in_queue(backend_url: str) -> None:
    registry = prometheus_client.CollectorRegistry()
    async with harness(backend_url, 10_000) as h:
        # Started 1.5 s after it was created: the first task waited from the delay's end.
        delayed = await h.client.start_workflow(
            sleeps_then_retries, start_delay=timedelta(seconds=1.5)
        )
        async with h.worker([sleeps_then_retries], [fails_once], prometheus_registry=registry) as w:
            assert await delayed.result(timeout=30) == "ok"
            tasks = w.stats["workflow_tasks"]
        wf, act = histogram(registry, WF), histogram(registry, ACT)
        # Every workflow task (start, timer fired, activity done) and every attempt, each
        # claimed at once by an idle worker: all well under a second.
        assert wf["count"] == tasks == 3
        assert wf["le1"] == 3, wf
        assert act["count"] == 2
        assert act["le1"] == 2, act

        # A run that waits for a worker: its first task's time in queue is that wait.
        registry2 = prometheus_client.CollectorRegistry()
        waited = await h.client.start_workflow(sleeps_then_retries)
        await asyncio.sleep(1.2)
        async with h.worker([sleeps_then_retries], [fails_once], prometheus_registry=registry2):
            assert await waited.result(timeout=30) == "ok"
        wf = histogram(registry2, WF)
        assert wf["count"] == 3
        assert wf["le1"] == 2, wf  # the first waited over a second, the others did not
        assert wf["sum"] >= 1.2
