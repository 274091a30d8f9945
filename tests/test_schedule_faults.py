"""A worker SIGKILLed while it fires a schedule: the fire is started once, by the next
worker, and no fire is lost."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import ostinato
import pytest

APP = Path(__file__).with_name("schedule_app.py")


def spawn(db: Path, seconds: float, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(APP), str(db), str(seconds), *extra])


def runs_per_instance(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT instance_id, count(*) FROM runs GROUP BY instance_id")
        return dict(rows.fetchall())


@pytest.mark.parametrize("mode", ["kill-before-start", "kill-after-start"])
async def test_a_worker_killed_mid_fire_loses_and_doubles_nothing(
    tmp_path: Path, mode: str
) -> None:
    db = tmp_path / "s.db"
    backend = ostinato.connect(f"sqlite:///{db}")
    client = ostinato.Client(backend)
    schedule = await client.create_schedule(
        "tick",
        "tick",
        7,
        every=timedelta(seconds=1),
        overlap="allow_all",
        catchup_window=timedelta(hours=1),
    )
    try:
        killed = spawn(db, 60, mode, "2")
        assert await asyncio.to_thread(killed.wait, 60) == -signal.SIGKILL
        desc = await schedule.describe()
        assert desc.runs_started == 2  # the second fire was decided before the kill ...
        second = desc.recent_runs[1].instance_id
        exists = second in runs_per_instance(db)
        assert exists == (mode == "kill-after-start")  # ... and started or not, by the mode

        survivor = spawn(db, 4)
        assert await asyncio.to_thread(survivor.wait, 60) == 0
        desc = await schedule.describe()
        runs = runs_per_instance(db)
        assert set(runs.values()) == {1}, "a fire started twice"
        # Every fire from the first to the last has its run: none lost to the kill.
        stamps = sorted(datetime.fromisoformat(i.split("@")[1][:-1]) for i in runs)
        assert [b - a for a, b in itertools.pairwise(stamps)] == [timedelta(seconds=1)] * (
            len(stamps) - 1
        )
        assert second in runs
        assert desc.runs_started == len(runs) >= 4
        for instance_id in runs:
            assert await client.get_handle(instance_id).result(timeout=10) == 7
    finally:
        await backend.close()
