"""Log records from workers, workflow code and activity code carry the ids of the run and
activity they are about, for a JSON formatter to show."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import ostinato
import pytest
from e2e_support import harness
from ostinato import ApplicationError, activity, workflow

app_log = logging.getLogger("tests.myapp")
_attempts: dict[str, int] = {}


@activity.defn
async def charge(order: str) -> str:
    activity.logger.info("charging %s", order)
    _attempts[order] = _attempts.get(order, 0) + 1
    if _attempts[order] == 1:
        raise ApplicationError("card network busy", type="Busy")
    app_log.info("charged")
    return "receipt"


@activity.defn
def email(order: str) -> None:  # a sync activity: runs in a thread
    app_log.warning("emailing about %s", order)


@workflow.defn
async def order_flow(order: str) -> str:
    workflow.logger.info("processing %s", order)
    app_log.info("from workflow code, on the app's own logger")
    retry = ostinato.RetryPolicy(initial_interval=timedelta(milliseconds=10))
    receipt = await workflow.execute_activity(charge, order, retry=retry)
    await workflow.execute_activity(email, order)
    return str(receipt)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    handler.addFilter(ostinato.LogContextFilter())  # stamps the app's own loggers too
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def ids(record: logging.LogRecord) -> tuple[object, ...]:
    return tuple(
        getattr(record, f, "-")
        for f in (
            "ostinato_instance_id",
            "ostinato_run_id",
            "ostinato_workflow_name",
            "ostinato_activity_name",
            "ostinato_attempt",
        )
    )


@pytest.mark.parametrize("backend_url", ["memory", "sqlite"], indirect=True)
async def test_records_carry_the_run_and_activity(backend_url: str, captured: Capture) -> None:
    async with harness(backend_url, 10_000) as h, h.worker([order_flow], [charge, email]):
        handle = await h.client.start_workflow(order_flow, backend_url, id="order-7")
        assert await handle.result(timeout=20) == "receipt"
        run_id = (await handle.describe()).run_id
    by_message = {r.getMessage(): r for r in captured.records}

    wf = by_message[f"[order_flow order-7] processing {backend_url}"]
    assert ids(wf) == ("order-7", run_id, "order_flow", None, None)
    assert wf.name == "ostinato.workflow"
    assert ids(by_message["from workflow code, on the app's own logger"]) == ids(wf)

    first, second = [r for r in captured.records if r.getMessage() == f"charging {backend_url}"]
    assert ids(first) == ("order-7", run_id, "order_flow", "charge", 1)
    assert ids(second) == ("order-7", run_id, "order_flow", "charge", 2)
    assert ids(by_message["charged"]) == ids(second)
    # The worker's own record about the failed attempt.
    (retrying,) = [r for r in captured.records if "retrying in" in r.getMessage()]
    assert retrying.name == "ostinato.worker"
    assert ids(retrying) == ids(first)
    sync = by_message[f"emailing about {backend_url}"]
    assert ids(sync) == ("order-7", run_id, "order_flow", "email", 1)
    assert sync.ostinato_activity_id == 2  # type: ignore[attr-defined]


def test_records_outside_a_task_pass_unchanged(captured: Capture) -> None:
    app_log.info("starting up")
    (record,) = captured.records
    assert not hasattr(record, "ostinato_instance_id")


async def test_engine_records_carry_ids_without_the_users_filter() -> None:
    """The ostinato.* loggers stamp their own records, whatever handler gets them."""
    handler = Capture()
    worker_log = logging.getLogger("ostinato.workflow")
    worker_log.addHandler(handler)
    worker_log.setLevel(logging.INFO)
    try:
        async with harness("memory://", 10_000) as h, h.worker([order_flow], [charge, email]):
            handle = await h.client.start_workflow(order_flow, "x", id="plain")
            await handle.result(timeout=20)
    finally:
        worker_log.removeHandler(handler)
        worker_log.setLevel(logging.NOTSET)
    (record,) = [r for r in handler.records if "processing" in r.getMessage()]
    assert record.ostinato_instance_id == "plain"  # type: ignore[attr-defined]
    assert record.ostinato_activity_name is None  # type: ignore[attr-defined]
