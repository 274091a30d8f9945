"""The UI's JSON API over HTTP against a real server, on every backend (PostgreSQL too)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import pytest

from ._live import LiveUI
from .ui_workflows import approval, doomed, family, order


@pytest.fixture
def api(backend_url: str) -> Iterator[LiveUI]:
    ui = LiveUI(backend_url, allow_actions=True).start()
    try:
        yield ui
    finally:
        ui.stop()


def test_runs_run_history_stats(api: LiveUI) -> None:
    api.start_workflow(order, "ann", id="order-ann")
    api.start_workflow(doomed, "o-1", id="doomed-1")
    api.start_workflow(family, "fam", id="fam-1")
    for run in ("order-ann", "doomed-1", "fam-1"):
        api.wait_closed(run)
    api.start_workflow(approval, "later", id="later-1", queue="idle", start_delay=0)

    page = api.get_json("api/runs")
    assert next(r["id"] for r in page["runs"]) == "later-1"
    assert {r["id"] for r in page["runs"]} == {
        "order-ann",
        "doomed-1",
        "fam-1",
        "fam-child-a",
        "fam-child-b",
        "later-1",
    }
    assert page["next_cursor"] is None
    failed = api.get_json("api/runs?status=failed")["runs"]
    assert [(r["id"], r["failure"]) for r in failed] == [
        (
            "doomed-1",
            "ActivityError: activity 'refuse' failed after 1 attempt(s): card declined for o-1",
        )
    ]
    assert [r["id"] for r in api.get_json("api/runs?queue=idle")["runs"]] == ["later-1"]
    assert [r["id"] for r in api.get_json("api/runs?q=fam-child-&limit=1")["runs"]] == [
        "fam-child-b"
    ]

    run = api.get_json("api/run?id=order-ann")
    assert run["status"] == "completed" and run["result"] == "hello ann, charged"
    assert run["input"] == ["ann"] and run["vars"] == {"stage": "done"}
    items = run["timeline"]["items"]
    assert [i["kind"] for i in items] == ["activity", "activity", "timer"]
    assert [a["number"] for a in items[1]["attempts"]] == [1, 2, 3]
    doomed_run = api.get_json("api/run?id=doomed-1")
    assert doomed_run["failure"][0]["type"] == "ActivityError"
    assert any("card declined" in c["message"] for c in doomed_run["failure"])
    fam = api.get_json("api/run?id=fam-1")
    assert [(c["id"], c["status"]) for c in fam["children"]] == [
        ("fam-child-a", "completed"),
        ("fam-child-b", "completed"),
    ]
    assert api.get_json("api/run?id=fam-child-a")["parent_id"] == "fam-1"

    history = api.get_json("api/history?id=order-ann")
    kinds = [e["kind"] for e in history["events"]]
    assert kinds[0] == "task_started" and kinds[-1] == "workflow_completed"
    assert [e["seq"] for e in history["events"]] == list(range(1, len(kinds) + 1))

    # Time range: everything started in the last hour, nothing after the next one.
    now = api.backend.clock()
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 3600))
    in_an_hour = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))
    assert len(api.get_json(f"api/runs?started_after={hour_ago}")["runs"]) == 6
    assert api.get_json(f"api/runs?started_after={in_an_hour}")["runs"] == []
    assert len(api.get_json(f"api/runs?started_before={in_an_hour}")["runs"]) == 6
    assert api.get_json(f"api/runs?started_before={hour_ago}")["runs"] == []

    status, headers, body = api.request("api/diagram?id=order-ann&format=mermaid")
    assert status == 200 and body.startswith(b"sequenceDiagram")
    status, headers, body = api.request("api/diagram?id=order-ann")
    assert status == 200 and headers["content-type"] == "image/svg+xml"
    assert body.lstrip().startswith(b"<svg")

    stats = api.get_json("api/stats")
    assert stats["totals"]["completed"] == 4 and stats["totals"]["failed"] == 1
    assert {q["queue"] for q in stats["queues"]} >= {"idle"}
    idle = next(q for q in stats["queues"] if q["queue"] == "idle")
    assert idle["workflow_tasks"] == 1 and idle["oldest_ready_age"] >= 0
    assert idle["held_by_limits"] == 0  # queue limits hold nothing back there


def test_paging_resumes_exactly_with_local_filters(api: LiveUI) -> None:
    for i in range(12):
        api.start_workflow(
            approval, str(i), id=f"p-{i:02d}", queue="odd" if i % 2 else "even", start_delay=3600
        )
    seen: list[str] = []
    cursor = ""
    while True:
        page = api.get_json(f"api/runs?queue=odd&limit=2&cursor={cursor}")
        seen += [r["id"] for r in page["runs"]]
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert seen == [f"p-{i:02d}" for i in reversed(range(1, 12, 2))]


def test_poll_answers_304_while_nothing_changed(api: LiveUI) -> None:
    api.start_workflow(approval, "x", id="poll-1")
    api.wait_until("poll-1", lambda d: d.history_length > 0)
    status, headers, body = api.request("api/poll?id=poll-1")
    assert status == 200
    etag = headers["etag"] if "etag" in headers else headers["ETag"]
    assert orjson.loads(body)["status"] == "running"
    status, _, body = api.request("api/poll?id=poll-1", headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    api.call(api.client.get_handle("poll-1").signal("approve", "yes"))
    api.wait_closed("poll-1")
    status, headers, body = api.request("api/poll?id=poll-1", headers={"If-None-Match": etag})
    assert status == 200 and orjson.loads(body)["status"] == "completed"


def test_errors_are_clear(api: LiveUI) -> None:
    for path, status, words in (
        ("api/run?id=nope", 404, "nope"),
        ("api/run", 400, "missing the run's id"),
        ("api/runs?status=bogus", 400, "status must be one of"),
        ("api/runs?limit=0", 400, "limit must be a number from 1 to 500"),
        ("api/runs?cursor=zzz", 400, "invalid list cursor"),
        ("api/runs?started_before=soon", 400, "started_before must be an ISO 8601"),
        ("api/diagram?id=nope&format=png", 400, "format must be svg or mermaid"),
    ):
        got, _, body = api.request(path)
        assert got == status, (path, body)
        assert words in orjson.loads(body)["error"], (path, body)


def test_actions_by_json_with_the_token(api: LiveUI) -> None:
    api.start_workflow(approval, "x", id="act-1")
    api.wait_until("act-1", lambda d: d.history_length > 0)
    status, _, page = api.request("run?id=act-1")
    token = page.split(b'name="csrf-token" content="')[1].split(b'"')[0].decode()
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    status, _, body = api.request(
        "api/signal?id=act-1",
        method="POST",
        body=orjson.dumps({"name": "approve", "value": '"via api"'}),
        headers={**json_headers, "X-CSRF-Token": token},
    )
    assert status == 200, body
    api.wait_closed("act-1")
    assert api.get_json("api/run?id=act-1")["result"] == "x: via api"
    # Closed: a second action is a clear conflict.
    status, _, body = api.request(
        "api/cancel?id=act-1",
        method="POST",
        body=b"{}",
        headers={**json_headers, "X-CSRF-Token": token},
    )
    assert status == 409, body
    status, _, body = api.request(
        "api/explode?id=act-1",
        method="POST",
        body=b"{}",
        headers={**json_headers, "X-CSRF-Token": token},
    )
    assert status == 404 and b"no such action" in body


def test_import_ostinato_does_not_import_the_ui() -> None:
    code = (
        "import sys, ostinato, ostinato.testing\n"
        "bad = [m for m in ('starlette', 'uvicorn', 'ostinato.ui') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
