"""The runs list over the JSON API, on every backend: every filter is the backend's
(``list_runs``), so a page is full and its cursor exact however many runs do not match;
paused runs are listed and counted as paused, with their reason; tags filter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from ostinato.backends import Backend, NewRun

from ._live import LiveUI
from .ui_workflows import approval, looper


@pytest.fixture
def api(backend_url: str) -> Iterator[LiveUI]:
    ui = LiveUI(backend_url).start()
    try:
        yield ui
    finally:
        ui.stop()


def _seed_many(ui: LiveUI, count: int, queue: str, prefix: str) -> None:
    """``count`` runs that no worker serves, created straight in the store (fast)."""

    async def go() -> None:
        for i in range(count):
            await ui.backend.create_run(
                NewRun(
                    instance_id=f"{prefix}-{i:05d}",
                    run_id=uuid.uuid4().hex,
                    workflow_name="approval",
                    queue=queue,
                    started_event=b'{"kind":"workflow_started","name":"approval","input":[],'
                    b'"info":{}}',
                )
            )

    ui.call(go(), timeout=120)


def test_a_filtered_page_is_full_past_thousands_of_other_runs(api: LiveUI) -> None:
    """Three matching runs older than 2,100 that do not match: the old UI read 2,000 runs a
    page and stopped short ("partial"); the backend's filter finds all three at once."""
    _seed_many(api, 3, "rare", "r")
    _seed_many(api, 2_100, "busy", "b")
    page = api.get_json("api/runs?queue=rare&limit=5")
    assert [r["id"] for r in page["runs"]] == ["r-00002", "r-00001", "r-00000"]
    assert page["next_cursor"] is None and page["partial"] is False
    # Paging on the backend's cursor: exact, two by two.
    page = api.get_json("api/runs?queue=rare&limit=2")
    assert [r["id"] for r in page["runs"]] == ["r-00002", "r-00001"]
    rest = api.get_json(f"api/runs?queue=rare&limit=2&cursor={page['next_cursor']}")
    assert [r["id"] for r in rest["runs"]] == ["r-00000"] and rest["next_cursor"] is None


def test_paused_runs_show_as_paused_and_tags_filter(api: LiveUI) -> None:
    for name, team in (("billing-1", "billing"), ("billing-2", "billing"), ("ops-1", "ops")):
        api.start_workflow(approval, name, id=name, tags={"team": team})
        api.wait_until(name, lambda d: d.history_length > 0)
    api.call(api.client.get_handle("billing-2").pause("waiting on finance"))

    runs = {r["id"]: r for r in api.get_json("api/runs")["runs"]}
    assert runs["billing-2"]["status"] == "paused"
    assert runs["billing-2"]["pause_reason"] == "waiting on finance"
    assert runs["billing-2"]["paused_at"] is not None
    assert runs["billing-1"]["status"] == "running" and runs["billing-1"]["pause_reason"] is None
    assert runs["ops-1"]["tags"] == {"team": "ops"}
    assert [r["id"] for r in api.get_json("api/runs?status=paused")["runs"]] == ["billing-2"]
    running = api.get_json("api/runs?status=running")["runs"]
    assert {r["id"] for r in running} == {"billing-1", "ops-1"}

    billing = api.get_json("api/runs?tag=team=billing")["runs"]
    assert {r["id"] for r in billing} == {"billing-1", "billing-2"}
    assert [r["id"] for r in api.get_json("api/runs?tag=team%3Dops")["runs"]] == ["ops-1"]
    assert api.get_json("api/runs?tag=team=nobody")["runs"] == []
    both = api.get_json("api/runs?tag=team=billing&status=paused")["runs"]
    assert [r["id"] for r in both] == ["billing-2"]

    run = api.get_json("api/run?id=billing-2")
    assert run["status"] == "paused" and run["pause_reason"] == "waiting on finance"
    stats = api.get_json("api/stats")
    assert stats["totals"] == {"paused": 1, "running": 2}
    assert api.get_json("api/poll?id=billing-2")["status"] == "paused"

    status, _, body = api.request("api/runs?tag=team")
    assert status == 400 and b"tag must be key=value" in body
    status, _, body = api.request("api/runs?status=sleeping")
    assert status == 400 and b"paused, blocked" in body


def test_the_run_page_has_the_continue_as_new_chain(api: LiveUI) -> None:
    api.start_workflow(looper, 0, 30, id="loop")
    api.wait_closed("loop", timeout=60)
    last = api.get_json("api/run?id=loop")
    chain = last["chain"]
    # The last 26 of 31 runs, oldest first, this one last; the rest behind "earlier".
    assert len(chain["runs"]) == 26 and chain["later"] is None
    assert chain["runs"][-1] == {
        "run_id": last["run_id"],
        "status": "completed",
        "created_at": last["created_at"],
        "closed_at": last["closed_at"],
        "current": True,
    }
    assert {r["status"] for r in chain["runs"][:-1]} == {"continued_as_new"}
    assert chain["earlier"] == chain["runs"][0]["run_id"]
    # Each run names the next: the chain is in order.
    for older, newer in zip(chain["runs"], chain["runs"][1:], strict=False):
        run = api.get_json(f"api/run?id=loop&run={older['run_id']}")
        assert run["next_run_id"] == newer["run_id"]
    # From the earliest shown (run 5): the five before it and the 25 after it: all 31.
    middle = api.get_json(f"api/run?id=loop&run={chain['earlier']}")["chain"]
    assert len(middle["runs"]) == 31
    assert middle["earlier"] is None and middle["later"] is None
    first = middle["runs"][0]["run_id"]
    start = api.get_json(f"api/run?id=loop&run={first}")
    assert start["input"] == [0, 30]
    # From the first run: itself and 25 after, then a link on to later runs.
    assert len(start["chain"]["runs"]) == 26 and start["chain"]["earlier"] is None
    assert (
        start["chain"]["later"]
        == start["chain"]["runs"][-1]["run_id"]
        == middle["runs"][25]["run_id"]
    )

    # The backend's own walk (next_run_id) and the contract's default one (each run's
    # workflow_started in its history) agree.
    ids = [r["run_id"] for r in middle["runs"]]
    own = api.call(api.backend.previous_run_ids("loop", ids[-1], 100))
    default = api.call(Backend.previous_run_ids(api.backend, "loop", ids[-1], 100))
    assert own == default == ids[-2::-1]
    # A run without a chain shows none.
    api.start_workflow(approval, "x", id="single")
    assert [r["current"] for r in api.get_json("api/run?id=single")["chain"]["runs"]] == [True]
