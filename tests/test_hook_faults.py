"""A worker SIGKILLed in the middle of a hook: the next worker delivers the same change
again (same event id, next attempt) once the dead worker's lease ran out, and only once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import ostinato

APP = Path(__file__).with_name("hook_app.py")


def spawn(db: Path, out: Path, seconds: float, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(APP), str(db), str(out), str(seconds), *extra])


async def test_a_worker_killed_mid_hook_has_the_change_delivered_again(tmp_path: Path) -> None:
    db, out = tmp_path / "h.db", tmp_path / "calls.txt"
    backend = ostinato.connect(f"sqlite:///{db}")
    await backend.open()
    # The worker subscribes the queue when it starts; the run is started after that.
    killed = spawn(db, out, 60, "kill")
    try:
        client = ostinato.Client(backend)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not subscribed(db):
            assert loop.time() < deadline, "the worker never subscribed"
            await asyncio.sleep(0.05)
        handle = await client.start_workflow("greet", "ada", id="greeted")
        assert await handle.result(timeout=30) == "hello ada"
        assert await asyncio.to_thread(killed.wait, 60) == -signal.SIGKILL
    finally:
        if killed.poll() is None:
            killed.kill()
    [first] = out.read_text().splitlines()
    info = await handle.describe()
    assert first == f"greeted:{info.run_id}:completed 1"

    survivor = spawn(db, out, 5)
    assert await asyncio.to_thread(survivor.wait, 60) == 0
    assert out.read_text().splitlines() == [first, f"greeted:{info.run_id}:completed 2"]
    assert await client.list_hook_failures() == []
    await backend.close()


def subscribed(db: Path) -> bool:
    """Whether a worker with hooks said so (nothing public tells: the table does)."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return bool(conn.execute("SELECT count(*) FROM hook_subscriptions").fetchone()[0])
    except sqlite3.Error:  # not migrated yet
        return False
