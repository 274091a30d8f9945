"""The ``ostinato`` command run as a subprocess against stores filled by a real worker (SQLite;
PostgreSQL for listing): tables, ``--json`` shapes, colour only on a terminal, one-line
errors with non-zero exit codes, and signal/cancel/terminate acting on real runs."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import ostinato
import pytest
from ostinato import _view
from ostinato.testing import replay
from view_workflows import messenger, order, run_order, stuck, waiter, worker

ANSI = re.compile(r"\x1b\[")
NOT_FOUND = "ostinato: WorkflowNotFoundError: no workflow with id 'nope'"
EVIL_ID = "evil\x1b[2Jid"
DESCRIPTION_KEYS = {
    "instance_id", "run_id", "workflow_name", "queue", "status", "created_at", "updated_at",
    "closed_at", "history_length", "blocked_reason", "failure", "parent_instance_id",
    "next_run_id", "pending_activities", "pending_timers", "pending_children", "tags",
    "priority", "paused_at", "pause_reason",
    "duration_seconds", "vars", "redacted",
}  # fmt: skip


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ostinato", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")},
            **env,
        },
    )


def ok(*args: str, **env: str) -> str:
    out = cli(*args, **env)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return out.stdout


async def fill(url: str) -> None:
    """The runs the tests look at: a finished order (continued as new once) with its two
    children, an activity stuck retrying, a waiter cancelled by another workflow, and a
    waiter whose id holds an escape sequence."""
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    async with worker(backend):
        await run_order(client, "order-1", rounds=2)
        handle = await client.start_workflow(stuck, id="stuck-1")
        async with asyncio.timeout(20):
            while not (d := await handle.describe()).pending_activities or (
                d.pending_activities[0].state != "retrying"
            ):
                await asyncio.sleep(0.02)
        await client.start_workflow(waiter, id="waiter-1")
        await (await client.start_workflow(messenger, "waiter-1", id="messenger-1")).result(20)
        await client.start_workflow(waiter, id=EVIL_ID)
        async with asyncio.timeout(20):
            while (await client.get_handle("waiter-1").describe()).status != "canceled":
                await asyncio.sleep(0.02)
    await backend.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli')}/runs.db"
    asyncio.run(fill(url))
    return url


async def client_call(url: str, call: Any) -> Any:
    backend = ostinato.connect(url)
    try:
        return await call(ostinato.Client(backend))
    finally:
        await backend.close()


def columns(line: str, header: str, name: str) -> str:
    """The text of ``line`` under column ``name`` of ``header`` (to the next column)."""
    start = header.index(name)
    rest = header[start + len(name) :]
    width = len(rest) - len(rest.lstrip(" ")) + len(name)
    return line[start : start + width].strip()


# ---- list -------------------------------------------------------------------------------


def test_list_prints_an_aligned_table_without_colour_when_piped(store: str) -> None:
    out = ok("list", store)
    assert not ANSI.search(out)
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "WORKFLOW", "STATUS", "STARTED", "DURATION", "NOTE"]
    by_id = {row.split()[0]: row for row in rows}
    assert set(by_id) == {
        "order-1", "order-1-child-2", "order-1+-child-1", "stuck-1", "waiter-1",
        "messenger-1", "evil\\x1b[2Jid",
    }  # fmt: skip
    for row in rows:  # every column starts where its header does
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", columns(row, header, "STARTED")
        )
        assert re.fullmatch(r"[\d.]+ (ms|s|min)( \d+ s)?", columns(row, header, "DURATION"))
    assert columns(by_id["order-1"], header, "WORKFLOW") == "view.order"
    assert columns(by_id["order-1"], header, "STATUS") == "completed"
    assert columns(by_id["stuck-1"], header, "STATUS") == "running"
    assert columns(by_id["waiter-1"], header, "STATUS") == "canceled"
    assert by_id["waiter-1"].endswith(
        "WorkflowCancelledError: workflow 'view.waiter' was cancelled"
    )
    assert by_id["order-1-child-2"].endswith("child of order-1")
    assert "\x1b" not in out  # the id's escape sequence is shown, not sent


def test_list_json_pages_and_filters(store: str) -> None:
    everything = orjson.loads(ok("list", store, "--json"))
    assert set(everything) == {"workflows", "next_cursor"} and everything["next_cursor"] is None
    assert all(set(w) == DESCRIPTION_KEYS for w in everything["workflows"])
    ids = [w["instance_id"] for w in everything["workflows"]]
    first = orjson.loads(ok("list", store, "--json", "--limit", "3"))
    assert [w["instance_id"] for w in first["workflows"]] == ids[:3]
    rest = orjson.loads(ok("list", store, "--json", "--cursor", first["next_cursor"]))
    assert [w["instance_id"] for w in rest["workflows"]] == ids[3:]
    running = orjson.loads(ok("list", store, "--json", "--status", "running"))
    assert sorted(w["instance_id"] for w in running["workflows"]) == [EVIL_ID, "stuck-1"]
    children = orjson.loads(ok("list", store, "--json", "--workflow", "view.child"))
    assert {w["parent_instance_id"] for w in children["workflows"]} == {"order-1"}
    assert len(children["workflows"]) == 2
    table = ok("list", store, "--limit", "3")
    assert table.splitlines()[-1] == f"more: --cursor {first['next_cursor']}"


def test_colour_on_a_terminal_only(store: str) -> None:
    # A real pseudo-terminal: colour without being asked.
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm"
    process = subprocess.Popen(
        [sys.executable, "-m", "ostinato", "list", store],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=120) == 0
    os.close(leader)
    shown = b"".join(chunks).decode()
    assert "\x1b[32mcompleted\x1b[0m" in shown and "\x1b[36mrunning\x1b[0m" in shown
    assert "\x1b[33mcanceled\x1b[0m" in shown
    # NO_COLOR wins over everything; FORCE_COLOR colours a pipe (for less -R).
    assert "\x1b[32mcompleted\x1b[0m" in ok("list", store, FORCE_COLOR="1")
    assert not ANSI.search(ok("list", store, FORCE_COLOR="1", NO_COLOR="1"))


# ---- describe, history, show, diagram --------------------------------------------------


def test_describe_table_and_json(store: str) -> None:
    out = ok("describe", store, "stuck-1")
    lines = out.splitlines()
    assert lines[0].split() == ["stuck-1", "view.stuck", "running"]
    assert "pending activities" in lines
    header = lines[lines.index("pending activities") + 1]
    assert header.split() == [
        "ID",
        "NAME",
        "STATE",
        "ATTEMPT",
        "NEXT",
        "ATTEMPT",
        "LAST",
        "FAILURE",
    ]
    row = lines[lines.index("pending activities") + 2]
    assert row.split()[:4] == ["1", "view.always_down", "retrying", "1"]
    assert row.endswith("ConnectionError: mail server down")
    shown = orjson.loads(ok("describe", store, "order-1", "--json"))
    assert set(shown) == DESCRIPTION_KEYS
    assert (shown["status"], shown["vars"]) == ("completed", {"stage": "waiting"})
    assert shown["closed_at"].endswith("+00:00") and shown["duration_seconds"] > 0
    earlier = orjson.loads(ok("describe", store, "order-1", "--json", "--run-id", shown["run_id"]))
    assert earlier["run_id"] == shown["run_id"] and earlier["vars"] is None


def test_history_table_json_and_replay(store: str, tmp_path: Path) -> None:
    events = asyncio.run(client_call(store, lambda c: c.get_handle("order-1").history()))
    saved = ok("history", store, "order-1", "--json")
    assert orjson.loads(saved) == events
    (tmp_path / "order.json").write_text(saved)
    replay(order, tmp_path / "order.json")  # the file is a replayable history
    header, *rows = ok("history", store, "order-1").splitlines()
    assert header.split() == ["SEQ", "TIME", "KIND", "SUMMARY"]
    assert len(rows) == len(events)
    assert [int(r.split()[0]) for r in rows] == list(range(1, len(events) + 1))
    assert [r.split()[3] for r in rows] == [e["kind"] for e in events]
    completed = next(r for r in rows if "activity_completed" in r)
    assert completed.endswith('#1 attempt 3: -> "charged order-1+"')
    full = ok("history", store, "order-1", "--payloads")
    assert '        "kind": "activity_completed",' in full.splitlines()


def test_show_prints_the_timeline(store: str) -> None:
    lines = ok("show", store, "order-1").splitlines()
    assert lines[0].startswith("order-1  view.order  completed  started ")
    assert any(re.fullmatch(r"  var +stage = \"waiting\"", line) for line in lines)
    header = next(line for line in lines if line.lstrip().startswith("AT"))
    items = lines[lines.index(header) + 1 :]
    assert [columns(row, header, "KIND") for row in items] == [
        "activity", "activity", "timer", "side_effect", "patch", "child", "signal"
    ]  # fmt: skip
    assert columns(items[0], header, "STATUS") == "completed"
    assert re.search(r"  completed +3 +[\d.]+ m?s  result \"charged order-1\+\"$", items[0])
    assert items[1].endswith("ApplicationError: card 4242 declined")
    assert "-> order-1+-child-1, result 8" in items[5]

    async def expected(client: ostinato.Client) -> Any:
        handle = client.get_handle("order-1")
        return _view.timeline_json(
            _view.build_timeline(
                await handle.history(), await handle.describe(), await client.get_vars("order-1")
            )
        )

    assert orjson.loads(ok("show", store, "order-1", "--json")) == orjson.loads(
        orjson.dumps(asyncio.run(client_call(store, expected)))
    )


def test_diagram_mermaid_and_svg(store: str) -> None:
    async def timeline(client: ostinato.Client) -> Any:
        handle = client.get_handle("order-1")
        return _view.build_timeline(await handle.history(), await handle.describe())

    expected = asyncio.run(client_call(store, timeline))
    assert ok("diagram", store, "order-1") == _view.mermaid(expected)
    assert ok("diagram", store, "order-1", "--format", "mermaid").startswith("sequenceDiagram\n")
    svg = ok("diagram", store, "order-1", "--format", "svg")
    assert svg == _view.svg(expected)
    assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"


def test_stats(store: str) -> None:
    shown = orjson.loads(ok("stats", store, "--json"))
    assert shown["runs"] == 7 and shown["complete"] is True
    assert shown["by_status"] == {"completed": 4, "running": 2, "canceled": 1}
    assert shown["by_workflow"]["view.child"] == {"completed": 2}
    assert shown["open_by_queue"]["default"]["open"] == 2
    lines = ok("stats", store).splitlines()
    assert lines[0] == "7 workflows"
    assert lines[1].split() == ["completed", "4", "running", "2", "canceled", "1"]
    header = lines[3]
    assert header.split() == ["WORKFLOW", "COMPLETED", "RUNNING", "CANCELED", "TOTAL"]
    child = next(line for line in lines if line.startswith("view.child "))
    assert child.split() == ["view.child", "2", "-", "-", "2"]
    partial = ok("stats", store, "--max-runs", "3")
    assert partial.splitlines()[0] == "3 workflows (stopped at --max-runs 3; counts are partial)"


# ---- signal / cancel / terminate ---------------------------------------------------------


async def test_actions_say_what_they_did_and_act(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/actions.db"
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    for id in ("to-signal", "to-cancel", "to-terminate"):
        await client.start_workflow(waiter, id=id)
    run = asyncio.to_thread
    said = await run(ok, "signal", url, "to-signal", "never", '{"x": [1, 2]}')
    assert said == "sent signal 'never' to workflow 'to-signal' with value {\"x\":[1,2]}\n"
    said = await run(ok, "cancel", url, "to-cancel", "--reason", "duplicate")
    assert said == "asked workflow 'to-cancel' to cancel (reason: duplicate)\n"
    said = await run(ok, "terminate", url, "to-terminate")
    assert said == "terminated workflow 'to-terminate' (reason: terminate from the command line)\n"
    async with worker(backend):
        assert await client.get_handle("to-signal").result(timeout=20) is None
        with pytest.raises(ostinato.WorkflowCancelledError):
            await client.get_handle("to-cancel").result(timeout=20)
    history = await client.get_handle("to-signal").history()
    assert {
        "seq": 3,
        "kind": "signal_received",
        "name": "never",
        "payload": {"x": [1, 2]},
    } in history
    cancelled = await client.get_handle("to-cancel").history()
    assert [e["reason"] for e in cancelled if e["kind"] == "cancel_requested"] == ["duplicate"]
    assert (await client.get_handle("to-terminate").describe()).status == "terminated"
    await backend.close()


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["describe", "{db}", "nope"], 1, NOT_FOUND),
        (["show", "{db}", "nope"], 1, NOT_FOUND),
        (["history", "{db}", "nope"], 1, NOT_FOUND),
        (["diagram", "{db}", "nope"], 1, NOT_FOUND),
        (["signal", "{db}", "nope", "go"], 1, NOT_FOUND),
        (
            ["terminate", "{db}", "order-1"],
            1,
            "ostinato: WorkflowNotRunningError: workflow 'order-1' is not running "
            "(status: completed)",
        ),
        (
            ["signal", "{db}", "stuck-1", "go", "yes"],
            1,
            "ostinato: ValueError: the signal value must be JSON",
        ),
        (
            ["list", "sqlite:////no/such/dir/x.db"],
            1,
            "ostinato: OperationalError: unable to open SQLite database file '/no/such/dir/x.db'",
        ),
        (
            ["list", "postgresql://u:secret@127.0.0.1:1/x"],
            1,
            "ostinato: OperationalError: PostgreSQL at postgresql://u:***@127.0.0.1:1/x failed",
        ),
        (["list", "mysql://x"], 1, "ostinato: ValueError:"),
        (
            ["show", "{db}"],
            2,
            "ostinato show: error: the following arguments are required: id "
            "(see ostinato show --help)",
        ),
        (
            ["diagram", "{db}", "order-1", "--format", "png"],
            2,
            "ostinato diagram: error: argument --format: invalid choice: 'png'",
        ),
        (
            ["stats", "{db}", "--max-runs", "0"],
            2,
            "ostinato stats: error: argument --max-runs: invalid positive integer value: '0'",
        ),
        (["frobnicate"], 2, "ostinato: error: argument command: invalid choice: 'frobnicate'"),
    ],
)
def test_errors_are_one_line_with_a_non_zero_exit_code(
    store: str, args: list[str], code: int, message: str
) -> None:
    out = cli(*(store if a == "{db}" else a for a in args))
    assert out.returncode == code, out
    assert out.stdout == ""
    assert out.stderr.startswith(message) and out.stderr.count("\n") == 1, out.stderr
    assert "secret" not in out.stderr


# ---- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_list_and_show_on_postgres(postgres_url: str) -> None:
    asyncio.run(fill(postgres_url))
    listed = orjson.loads(ok("list", postgres_url, "--json"))
    assert {w["instance_id"]: w["status"] for w in listed["workflows"]} == {
        "order-1": "completed", "order-1-child-2": "completed", "order-1+-child-1": "completed",
        "stuck-1": "running", "waiter-1": "canceled", "messenger-1": "completed",
        EVIL_ID: "running",
    }  # fmt: skip
    header, *rows = ok("list", postgres_url, "--status", "running").splitlines()
    assert sorted(row.split()[0] for row in rows) == ["evil\\x1b[2Jid", "stuck-1"]
    assert columns(rows[0], header, "STATUS") == "running"
    shown = ok("show", postgres_url, "order-1").splitlines()
    assert shown[0].startswith("order-1  view.order  completed")
    stats = orjson.loads(ok("stats", postgres_url, "--json"))
    assert stats["by_status"] == {"completed": 4, "running": 2, "canceled": 1}
