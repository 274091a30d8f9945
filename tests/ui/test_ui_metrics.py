"""The UI's ``/metrics``: a real scrape of a live UI shows the store's backlog per queue and
runs by status (on every backend), next to the metrics of the process's workers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import ostinato
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ._live import LiveUI
from .ui_workflows import approval, doomed, order


@pytest.fixture
def ui(backend_url: str) -> Iterator[LiveUI]:
    live = LiveUI(backend_url).start()
    try:
        yield live
    finally:
        live.stop()


def scrape(ui: LiveUI) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, headers, body = ui.request("metrics")
    assert status == 200, body[:300]
    assert headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_show_backlog_and_runs(ui: LiveUI) -> None:
    ui.start_workflow(order, "ann", id="order-ann")
    ui.start_workflow(doomed, "o-1", id="doomed-1")
    for run in ("order-ann", "doomed-1"):
        ui.wait_closed(run)
    for i in range(3):  # a queue no worker serves: its backlog grows
        ui.start_workflow(approval, "x", id=f"idle-{i}", queue="idle")
    ui.block(order, "bob", id="stuck-1", reason="NonDeterminismError: drifted")

    samples = scrape(ui)

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset(labels.items())))

    assert value("ostinato_store_up") == 1
    assert value("ostinato_queue_backlog", queue="idle", kind="workflow") == 3
    assert value("ostinato_queue_backlog", queue="idle", kind="activity") == 0
    oldest = value("ostinato_queue_oldest_ready_seconds", queue="idle")
    assert oldest is not None and 0 <= oldest < 60
    assert value("ostinato_runs", workflow="order", status="completed", blocked="false") == 1
    assert value("ostinato_runs", workflow="doomed", status="failed", blocked="false") == 1
    assert value("ostinato_runs", workflow="approval", status="running", blocked="false") == 3
    assert value("ostinato_runs", workflow="order", status="running", blocked="true") == 1
    # The workers' metrics are listed too (this process's, in the default registry).
    families = {name for name, _ in samples}
    assert "ostinato_workflow_cache_size" in families

    # Bounded labels: no instance ids.
    label_values = {v for _, labels in samples for _, v in labels}
    assert not any(v.startswith(("idle-", "order-", "stuck-")) for v in label_values)


def test_a_store_that_cannot_be_read_says_so_and_still_serves(ui: LiveUI) -> None:
    async def break_stats() -> None:
        async def fail() -> None:
            raise ostinato.OstinatoError("the database is away")

        ui.backend.stats = fail  # type: ignore[method-assign,assignment]
        await asyncio.sleep(0)

    ui.call(break_stats())
    samples = scrape(ui)
    assert samples[("ostinato_store_up", frozenset())] == 0
    assert not any(name == "ostinato_queue_backlog" for name, _ in samples)
