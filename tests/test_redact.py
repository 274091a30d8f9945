"""``handle.redact()``: every payload of a closed run scrubbed on every backend, not one byte
of it left in any table; the event skeleton kept and marked; replay refused."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import timedelta
from typing import Any

import orjson
import ostinato
import psycopg
import pytest
from ostinato import activity, workflow
from ostinato.testing import replay

MARKER = "PII-7f3a9c"  # in every input, result, signal, variable, failure and detail


@activity.defn
def remember(value: str) -> str:
    activity.heartbeat({"seen": value})
    return f"{value}-result"


@activity.defn
def refuse(value: str) -> str:
    raise ostinato.ApplicationError(f"no {value}", {"why": value}, non_retryable=True)


@workflow.defn
async def customer(name: str) -> str:
    workflow.set_var("email", f"{name}@example.com")
    echoed = await workflow.execute_activity(
        remember, name, start_to_close_timeout=timedelta(seconds=10)
    )
    with contextlib.suppress(ostinato.ActivityError):
        await workflow.execute_activity(refuse, name, start_to_close_timeout=timedelta(seconds=10))
    noted = await workflow.side_effect(lambda: f"{MARKER}-side")
    said = await workflow.signal_channel("note", str).receive()
    return f"{echoed} {noted} {said}"


@workflow.defn
async def failing(name: str) -> str:
    raise ostinato.ApplicationError(f"bad customer {name}", non_retryable=True)


@workflow.defn
async def waits() -> str:
    return await workflow.signal_channel("go", str).receive()


def leftovers_sqlite(path: str) -> list[str]:
    found = []
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    data = value if isinstance(value, bytes) else str(value).encode()
                    if MARKER.encode() in data:
                        found.append(f"{table}: {row!r:.200}")
    return found


def leftovers_postgres(url: str) -> list[str]:
    found = []
    hexed = MARKER.encode().hex()
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ostinato'"
        ).fetchall()
        for (table,) in tables:
            for (text,) in conn.execute(f"SELECT t::text FROM ostinato.{table} AS t"):
                if MARKER in text or hexed in text:
                    found.append(f"{table}: {text:.200}")
    return found


def leftovers(url: str, backend: ostinato.Backend) -> list[str]:
    if url.startswith("sqlite:///"):
        return leftovers_sqlite(url.removeprefix("sqlite:///"))
    if url.startswith("postgresql"):
        return leftovers_postgres(url)
    # Memory: every row the backend keeps, as the dataclasses' reprs (bytes shown as text).
    store = backend._store  # type: ignore[attr-defined]
    state = repr(vars(store)) + repr(vars(store.hooks))
    return [MARKER] if MARKER in state else []


@ostinato.hook(
    on=("completed", "failed", "paused"), retry=ostinato.RetryPolicy(max_attempts=1), name="post"
)
async def gives_up(event: ostinato.RunStateChange) -> None:
    # A hook whose error quotes what it was given (as many do): kept with the give-up.
    raise RuntimeError(f"could not post {event.result} {event.failure} {event.reason}")


DELIVERED: list[str] = []


@ostinato.hook(on=("completed", "failed", "paused"), name="log")
async def delivered(event: ostinato.RunStateChange) -> None:
    DELIVERED.append(event.id)  # delivered at once: its pair of each delivery is "delivered"


async def hooks_gave_up(client: ostinato.Client, count: int) -> None:
    for _ in range(600):
        if len(await client.list_hook_failures()) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the hooks did not give up on {count} changes")


async def pause_with_marker_and_finish(client: ostinato.Client, handle: Any) -> None:
    """Pause the run with the marker as reason (a "paused" hook delivery that holds it),
    resume it and let it complete with the marker as result."""
    assert await handle.pause(f"{MARKER}-reason")
    assert await handle.resume()
    await handle.signal("go", f"{MARKER}-go")
    assert MARKER in await handle.result(timeout=30)


async def test_redact_scrubs_every_payload_and_keeps_the_skeleton(backend_url: str) -> None:
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    everything: dict[str, Any] = {
        "workflows": [customer, failing, waits],
        "activities": [remember, refuse],
        "poll_interval": 0.05,
    }
    try:
        # A worker with a hook that gives up and one that succeeds: the delivery rows of c-1
        # and c-2 are kept (one pair delivered, one given up).
        DELIVERED.clear()
        async with ostinato.Worker(backend, hooks=[gives_up, delivered], **everything):
            handle = await client.start_workflow(customer, MARKER, id="c-1")
            await handle.signal("note", f"{MARKER}-signal")
            assert MARKER in await handle.result(timeout=30)
            bad = await client.start_workflow(failing, MARKER, id="c-2")
            with pytest.raises(ostinato.WorkflowFailedError):
                await bad.result(timeout=30)
            running = await client.start_workflow(waits, id="running")
            with pytest.raises(ostinato.WorkflowAlreadyStartedError, match="still running"):
                await running.redact()
            await hooks_gave_up(client, 2)
            while len(DELIVERED) < 2:
                await asyncio.sleep(0.05)
        # No hook worker now: the pause and close of "running" wait, not yet delivered.
        async with ostinato.Worker(backend, **everything):
            await pause_with_marker_and_finish(client, running)
        assert leftovers(backend_url, backend), "the test's marker is not where it should be"
        before = await handle.history()
        assert MARKER in orjson.dumps(before).decode()
        replay(customer, before)  # replayable before

        await handle.redact()
        await bad.redact()
        await running.redact()

        assert leftovers(backend_url, backend) == []
        # The give-ups stay listed, without what the hook said.
        failures = await client.list_hook_failures()
        assert sorted(f.instance_id for f in failures) == ["c-1", "c-2"]
        assert {f.last_error for f in failures} == {""}
        after = await handle.history()
        assert MARKER not in orjson.dumps(after).decode()
        assert MARKER not in orjson.dumps(await bad.history()).decode()
        skeleton = ("kind", "seq", "id", "name", "attempt", "time", "fire_at")
        assert [{k: e.get(k) for k in skeleton} for e in after] == [
            {k: e.get(k) for k in skeleton} for e in before
        ]
        assert all(e["redacted"] is True for e in after)
        desc = await handle.describe()
        assert desc.redacted and desc.status == "completed" and desc.failure is None
        assert (await bad.describe()).redacted
        assert await handle.get_vars() == {}
        with pytest.raises(ostinato.HistoryCorruptError, match="redacted"):
            replay(customer, after)
        await handle.redact()  # again: nothing left to scrub, still fine
        with pytest.raises(ostinato.WorkflowNotFoundError):
            await client.get_handle("nope").redact()
    finally:
        await backend.close()


async def test_delete_leaves_no_byte_of_the_runs_and_their_hook_deliveries(
    backend_url: str,
) -> None:
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(
            backend, workflows=[failing, waits], hooks=[gives_up], poll_interval=0.05
        ):
            given_up = await client.start_workflow(failing, MARKER, id="d-1")
            with pytest.raises(ostinato.WorkflowFailedError):
                await given_up.result(timeout=30)
            waiting = await client.start_workflow(waits, id="d-2")
            await hooks_gave_up(client, 1)
        async with ostinato.Worker(backend, workflows=[failing, waits], poll_interval=0.05):
            pending = await client.start_workflow(failing, MARKER, id="d-3")
            with pytest.raises(ostinato.WorkflowFailedError):
                await pending.result(timeout=30)
            await pause_with_marker_and_finish(client, waiting)
        assert leftovers(backend_url, backend), "the test's marker is not where it should be"
        await client.delete("d-1")
        assert await client.list_hook_failures() == []
        assert await client.delete_closed(older_than=0) == 2
        assert leftovers(backend_url, backend) == []
    finally:
        await backend.close()


def redacted_event(event: dict[str, Any]) -> dict[str, Any]:
    from ostinato import _events

    decoded: dict[str, Any] = orjson.loads(_events.redact(orjson.dumps(event)))
    return decoded


def test_redacting_an_event_keeps_ids_and_drops_payloads_and_free_text() -> None:
    assert redacted_event(
        {"seq": 4, "kind": "child_scheduled", "id": 2, "name": "wf", "input": [MARKER],
         "options": {"instance_id": "child-1", "retry": {"x": MARKER}}}
    ) == {"seq": 4, "kind": "child_scheduled", "id": 2, "name": "wf", "input": None,
          "options": {"instance_id": "child-1"}, "redacted": True}  # fmt: skip
    assert redacted_event({"seq": 9, "kind": "workflow_terminated", "reason": MARKER}) == {
        "seq": 9, "kind": "workflow_terminated", "reason": None, "redacted": True,
    }  # fmt: skip


async def test_cli_redact_wants_yes(tmp_path: object) -> None:
    import asyncio
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/cli.db"
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    try:
        async with ostinato.Worker(backend, workflows=[failing], poll_interval=0.05):
            bad = await client.start_workflow(failing, MARKER, id="c-2")
            with pytest.raises(ostinato.WorkflowFailedError):
                await bad.result(timeout=30)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "ostinato", "redact", url, "c-2", *args]
            return subprocess.run(command, capture_output=True, text=True, check=False)

        said = await asyncio.to_thread(cli)
        assert said.returncode == 1 and "add --yes" in said.stdout
        assert not (await bad.describe()).redacted
        said = await asyncio.to_thread(cli, "--yes")
        assert (said.returncode, said.stdout) == (
            0,
            "redacted workflow 'c-2': its payloads are gone\n",
        )
        assert (await bad.describe()).redacted
        assert leftovers(url, backend) == []
    finally:
        await backend.close()
