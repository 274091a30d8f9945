"""``handle.resume()`` on a run blocked on its workflow task: retried at once by a real worker
instead of after its back-off; a no-op on a healthy run, an error on a closed one; the same
from the command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import ostinato
import pytest
from e2e_support import Harness, harness
from ostinato import workflow

HOUR = 3600.0


@workflow.defn
async def greet(name: str) -> str:
    return f"hello {name}"


async def _block(h: Harness, instance_id: str) -> None:
    """Fail the run's first workflow task with an hour of back-off, as a worker does when
    the deployed code does not match the history."""
    backend = h.backend
    tasks = await backend.claim_workflow_tasks(["default"], 30, 10)
    for task in tasks:
        if task.instance_id == instance_id:
            retry_at = backend.clock() + HOUR
            await backend.fail_workflow_task(task, "NonDeterminismError: at seq 2", retry_at)
        else:
            await backend.release_workflow_task(task)


async def test_resume_retries_a_blocked_run_now(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        handle = await h.client.start_workflow(greet, "ada", id="blocked-1")
        await _block(h, "blocked-1")
        assert (await handle.describe()).is_blocked
        async with h.worker([greet]):
            await asyncio.sleep(0.3)  # the worker leaves it alone: an hour of back-off
            assert (await handle.describe()).status == "running"
            started = time.monotonic()
            assert await handle.resume() is True
            assert await handle.result(timeout=20) == "hello ada"
            assert time.monotonic() - started < 10
        desc = await handle.describe()
        assert desc.status == "completed" and desc.blocked_reason is None
        with pytest.raises(ostinato.WorkflowNotRunningError):
            await handle.resume()
        with pytest.raises(ostinato.WorkflowNotFoundError):
            await h.client.get_handle("nobody").resume()


async def test_resume_of_a_healthy_run_does_nothing() -> None:
    async with harness("memory://", 1000) as h:
        handle = await h.client.start_workflow(greet, "bob", id="fine", start_delay=HOUR)
        assert await handle.resume() is False  # a delayed start stays delayed
        assert await h.backend.claim_workflow_tasks(["default"], 30, 10) == []


async def _fill(url: str) -> None:
    async with harness(url, 1000) as h:
        await h.client.start_workflow(greet, "cli", id="cli-blocked")
        await h.client.start_workflow(greet, "ok", id="cli-fine", start_delay=HOUR)
        await _block(h, "cli-blocked")


def test_cli_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    asyncio.run(_fill(url))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ostinato", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    out = cli("resume", url, "cli-blocked")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "resumed workflow 'cli-blocked': its pending work is handed out now"
    )
    out = cli("resume", url, "cli-fine")
    assert out.returncode == 0 and "neither paused nor blocked: nothing to do" in out.stdout
    out = cli("resume", url, "nope")
    assert out.returncode != 0 and "WorkflowNotFoundError" in out.stderr

    async def claimable() -> list[str]:
        backend = ostinato.connect(url)
        await backend.open()
        try:
            tasks = await backend.claim_workflow_tasks(["default"], 30, 10)
            return [t.instance_id for t in tasks]
        finally:
            await backend.close()

    assert asyncio.run(claimable()) == ["cli-blocked"]
