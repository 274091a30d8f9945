"""Pausing runs end to end with a real worker on every backend: nothing new is handed out
while paused (an activity under way finishes and is recorded), signals wait, resume delivers
them; cancel takes effect on a paused run; the history replays; the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import ostinato
import pytest
from e2e_support import harness
from ostinato import activity, workflow
from ostinato.testing import replay

RELEASE: dict[str, asyncio.Event] = {}
CALLS: list[str] = []


@activity.defn
async def gated(key: str) -> str:
    CALLS.append(key)
    await RELEASE[key].wait()
    return f"{key} done"


@activity.defn
async def quick(key: str) -> str:
    CALLS.append(key)
    return f"{key} done"


@workflow.defn
async def two_steps(key: str) -> list[str]:
    first = await workflow.execute_activity(gated, key)
    second = await workflow.execute_activity(quick, f"{key}-second")
    note = await workflow.signal_channel("note", str).receive()
    return [first, second, note]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_pause_holds_new_work_and_resume_delivers_it(backend_url: str) -> None:
    key = f"pause-{backend_url[:6]}"
    RELEASE[key] = asyncio.Event()
    async with harness(backend_url, 1000) as h:
        async with h.worker([two_steps], [gated, quick]):
            handle = await h.client.start_workflow(two_steps, key, id="p")

            async def first_running() -> bool:
                pending = (await handle.describe()).pending_activities
                return bool(pending) and pending[0].state == "running"

            await eventually(first_running)
            assert await handle.pause("checking the payment provider") is True
            desc = await handle.describe()
            assert desc.status == "paused" and desc.is_paused and desc.is_running
            assert desc.pause_reason == "checking the payment provider"
            assert desc.paused_at is not None
            paused, _ = await h.client.list_workflows(status="paused")
            assert [d.instance_id for d in paused] == ["p"]
            assert (await h.client.list_workflows(status="running"))[0] == []
            length = desc.history_length
            RELEASE[key].set()  # the attempt under way finishes and is recorded

            async def first_finished() -> bool:
                pending = (await handle.describe()).pending_activities
                return bool(pending) and pending[0].state == "finished"

            await eventually(first_finished)
            await handle.signal("note", "kept")
            await asyncio.sleep(0.5)  # a worker polling meanwhile hands out nothing
            desc = await handle.describe()
            assert desc.status == "paused" and desc.history_length == length
            assert f"{key}-second" not in CALLS
            assert await handle.resume() is True
            assert await handle.result(timeout=20) == [f"{key} done", f"{key}-second done", "kept"]
        replay(two_steps, await handle.history())
        with pytest.raises(ostinato.WorkflowNotRunningError):
            await handle.pause()


async def test_cancel_takes_effect_on_a_paused_run(backend_url: str) -> None:
    key = f"cancel-{backend_url[:6]}"
    RELEASE[key] = asyncio.Event()
    RELEASE[key].set()
    async with harness(backend_url, 1000) as h:
        handle = await h.client.start_workflow(two_steps, key, id="c")
        await handle.pause()
        await handle.cancel("not needed")
        assert (await handle.describe()).status == "running"  # resumed for the cancel
        async with h.worker([two_steps], [gated, quick]):
            with pytest.raises(ostinato.WorkflowCancelledError):
                await handle.result(timeout=20)


async def test_terminate_a_paused_run(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        handle = await h.client.start_workflow(two_steps, "t", id="t")
        await handle.pause("stuck")
        await handle.terminate("giving up")
        desc = await handle.describe()
        assert desc.status == "terminated" and desc.pause_reason is None


def test_cli_pause_resume_and_list_paused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"

    async def fill() -> None:
        async with harness(url, 1000) as h:
            await h.client.start_workflow(two_steps, "x", id="held")
            await h.client.start_workflow(two_steps, "y", id="free")

    asyncio.run(fill())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ostinato", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    out = cli("pause", url, "held", "--reason", "audit")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "paused workflow 'held' (reason: audit)"
    assert cli("pause", url, "held").stdout.strip() == "workflow 'held' was paused already"
    listed = cli("list", url, "--status", "paused")
    assert listed.returncode == 0 and "held" in listed.stdout and "free" not in listed.stdout
    assert "paused" in listed.stdout
    out = cli("resume", url, "held")
    assert out.stdout.strip() == "resumed workflow 'held': its pending work is handed out now"
    out = cli("resume", url, "held")
    assert "neither paused nor blocked" in out.stdout


FAILURES: dict[str, int] = {}
FIXED: set[str] = set()


@activity.defn
async def flaky_charge(key: str) -> str:
    FAILURES[key] = FAILURES.get(key, 0) + 1
    if key not in FIXED:
        raise RuntimeError(f"provider refused #{FAILURES[key]}")
    return f"charged {key}"


@workflow.defn
async def charge(key: str) -> str:
    policy = ostinato.RetryPolicy(initial_interval=0.01, max_attempts=0, pause_after=3)
    return await workflow.execute_activity(flaky_charge, key, retry=policy)


async def test_retry_policy_pause_after_pauses_the_run_and_resume_retries(
    backend_url: str,
) -> None:
    key = f"charge-{backend_url[:6]}"
    async with harness(backend_url, 1000) as h:
        async with h.worker([charge], [flaky_charge]):
            handle = await h.client.start_workflow(charge, key, id="charge")

            async def paused() -> bool:
                return (await handle.describe()).status == "paused"

            await eventually(paused)
            desc = await handle.describe()
            assert desc.pause_reason is not None
            assert "'flaky_charge'" in desc.pause_reason
            assert "failed 3 attempts in a row" in desc.pause_reason
            assert "RuntimeError: provider refused #3" in desc.pause_reason
            [pending] = desc.pending_activities
            assert pending.attempt == 3
            assert pending.last_failure == "RuntimeError: provider refused #3"
            await asyncio.sleep(0.5)  # no attempt while paused
            assert FAILURES[key] == 3
            FIXED.add(key)  # the provider is back
            await handle.resume()
            assert await handle.result(timeout=20) == f"charged {key}"
            assert FAILURES[key] == 4
        replay(charge, await handle.history())


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-2, ValueError), ("3", TypeError), (True, TypeError)]
)
def test_pause_after_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="pause_after"):
        ostinato.RetryPolicy(pause_after=value)  # type: ignore[arg-type]


@workflow.defn
async def kid(key: str) -> str:
    return await workflow.signal_channel("go", str).receive()


@workflow.defn
async def parent_of_kid(key: str) -> str:
    said = await workflow.execute_child(kid, key, id=f"{key}-kid")
    return f"kid said {said}"


async def test_pausing_a_parent_leaves_its_children_running(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h, h.worker([parent_of_kid, kid], []):
        parent = await h.client.start_workflow(parent_of_kid, "p", id="p")
        child = h.client.get_handle("p-kid")

        async def child_started() -> bool:
            try:
                return (await child.describe()).history_length > 0
            except ostinato.WorkflowNotFoundError:
                return False

        await eventually(child_started)
        assert await parent.pause("only the parent")
        assert (await child.describe()).status == "running"  # not paused with it
        length = (await parent.describe()).history_length
        await child.signal("go", "hi")
        assert await child.result(timeout=10) == "hi"  # the child runs on and closes

        await asyncio.sleep(0.3)
        # Its outcome waits in the paused parent's inbox: no step of the parent ran.
        assert (await parent.describe()).history_length == length
        assert await parent.resume()
        assert await parent.result(timeout=10) == "kid said hi"
