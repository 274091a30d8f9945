"""A worker SIGKILLed mid-activity or mid-commit: the workflows complete, every activity
result is recorded exactly once, and histories have no gap or duplicate."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import ostinato
import pytest

APP = Path(__file__).with_name("crash_app.py")


def spawn(db: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    return subprocess.Popen([sys.executable, str(APP), str(db), str(log), *extra], env=env)


async def wait_for_line(log: Path, text: str, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.01)):
        if log.exists() and text in log.read_text():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{text!r} never appeared in {log}")


def check_history(history: list[dict[str, object]], activities: int) -> None:
    seqs = [e["seq"] for e in history]
    assert seqs == list(range(1, len(history) + 1)), "gap or duplicate in history"
    scheduled = [e["id"] for e in history if e["kind"] == "activity_scheduled"]
    completed = [e["id"] for e in history if e["kind"] == "activity_completed"]
    assert len(scheduled) == activities
    assert sorted(completed) == sorted(scheduled), "each activity result recorded once"


async def test_sigkill_mid_activity(tmp_path: Path) -> None:
    db, log = tmp_path / "crash.db", tmp_path / "log.txt"
    backend = ostinato.connect(f"sqlite:///{db}")
    client = ostinato.Client(backend)
    handle = await client.start_workflow("steps", "wf", 3, id="crash-activity")
    worker = spawn(db, log)
    try:
        await wait_for_line(log, "start wf 1")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert "end wf 1" not in log.read_text()  # killed inside the activity
        worker = spawn(db, log)
        result = await handle.result(timeout=30)
    finally:
        worker.terminate()
        worker.wait()
    assert result == ["wf:0", "wf:1", "wf:2"]
    lines = log.read_text().splitlines()
    assert lines.count("start wf 1") == 2  # the interrupted attempt ran again ...
    check_history(await handle.history(), 3)  # ... but its result is recorded once
    completed = [e for e in await handle.history() if e["kind"] == "activity_completed"]
    assert completed[1]["attempt"] == 2
    await backend.close()


async def test_sigkill_after_an_eager_lease(tmp_path: Path) -> None:
    """The worker dies inside an activity its commit leased to it (eager dispatch): the
    activity is claimed again when that lease runs out, and recorded once."""
    db, log = tmp_path / "crash.db", tmp_path / "log.txt"
    backend = ostinato.connect(f"sqlite:///{db}")
    client = ostinato.Client(backend)
    handle = await client.start_workflow("chain", "wf", 3, id="crash-eager")
    worker = spawn(db, log)
    try:
        await wait_for_line(log, "start wf 1")
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        before = log.read_text()
        assert "end wf 1" not in before  # killed inside the second activity ...
        assert "claimed activity" not in before  # ... which, like the first, no claim took
        worker = spawn(db, log)
        result = await handle.result(timeout=30)
    finally:
        worker.terminate()
        worker.wait()
    assert result == ["wf:0", "wf:1", "wf:2"]
    lines = log.read_text().splitlines()
    assert lines.count("start wf 1") == 2
    assert "claimed activity 2 attempt 2" in lines  # taken over once its lease ran out
    history = await handle.history()
    check_history(history, 3)
    completed = [e for e in history if e["kind"] == "activity_completed"]
    assert [e["attempt"] for e in completed] == [1, 2, 1]
    await backend.close()


@pytest.mark.parametrize("crash_at", [1, 2, 3, 5])
async def test_sigkill_mid_commit(tmp_path: Path, crash_at: int) -> None:
    db, log = tmp_path / "crash.db", tmp_path / "log.txt"
    backend = ostinato.connect(f"sqlite:///{db}")
    client = ostinato.Client(backend)
    handles = [
        await client.start_workflow("steps", f"w{i}", 2, id=f"crash-commit-{i}") for i in range(4)
    ]
    worker = spawn(db, log, "commit-crash", str(crash_at))
    try:
        code = await asyncio.to_thread(worker.wait, 30)
        assert code == -signal.SIGKILL
        worker = spawn(db, log)
        results = [await h.result(timeout=30) for h in handles]
    finally:
        if worker.poll() is None:
            worker.terminate()
        worker.wait()
    assert results == [[f"w{i}:0", f"w{i}:1"] for i in range(4)]
    for h in handles:
        check_history(await h.history(), 2)
    await backend.close()
