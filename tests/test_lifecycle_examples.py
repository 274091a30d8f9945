"""The lifecycle examples (saga, fan-out, approval, entity loop) run to the end against a
temporary SQLite file, and say what they are meant to show."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


async def run_example(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    await load(name).main(str(tmp_path / f"{name}.db"))
    return capsys.readouterr().out


async def test_saga(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = await run_example("saga", tmp_path, capsys)
    assert "cancelled flight for t-1" in out and "no rooms in Oslo" in out
    # Cancelled mid-way: compensations ran newest first, and the car rental learned it.
    assert out.index("cancelled hotel for t-2") < out.index("cancelled flight for t-2")
    assert "trip t-2: canceled" in out
    assert "car rental for t-2 stopped: is_cancelled()=True" in out
    assert "bookings held: {'t-3': ['car', 'flight', 'hotel']}" in out


async def test_fanout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = await run_example("fanout", tmp_path, capsys)
    assert "atlantis missing: " in out and "has no database" in out
    for region in ("north", "south", "east", "west", "centre"):
        assert f"  {region} " in out
    assert "/north: completed, parent " in out


async def test_approval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = await run_example("approval", tmp_path, capsys)
    assert "claim-c-1 waits for manager; timer due at " in out
    assert "claim-c-1: approved by manager: paid 42.00 to ada" in out
    assert "claim-c-2: rejected by manager" in out
    assert "claim-c-3: approved by director: paid 120.00 to cy" in out
    assert "claim-c-4: expired" in out


async def test_entity_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = await run_example("entity_loop", tmp_path, capsys)
    # 78.00 deposited in 12 operations; two withdrawals of 500.00 refused, one made.
    assert "final state: balance 280.00, 15 ops" in out
    assert "refused: ['withdraw 50000', 'withdraw 50000']" in out
    runs = out.split("runs, newest first:")[1].splitlines()
    statuses = [
        line.split()[1] for line in runs if line.strip().startswith(tuple("0123456789abcdef"))
    ]
    assert statuses[0] == "completed" and len(statuses) >= 3
    assert set(statuses[1:]) == {"continued_as_new"}
    assert "variables: {'balance_cents': 28000}" in out
