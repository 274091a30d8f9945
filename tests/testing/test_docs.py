"""Run the code of docs/testing.md: its blocks in order in one namespace, and every test
function a block defines."""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ostinato.testing import WorkflowEnvironment

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks() -> list[str]:
    return BLOCK.findall(GUIDE.read_text())


def test_the_guide_has_examples_for_each_capability() -> None:
    code = "\n".join(blocks())
    for name in (
        "WorkflowEnvironment",
        "env.sleep",
        "env.at",
        "mock_activity",
        "mock_workflow",
        "Timeout()",
        "replay(",
        "save_history",
        "replay_directory",
        "explore(",
        "ostinato_env",
        "ostinato_backend",
    ):
        assert name in code, name


def run_guide(tmp_path: Path, backends: dict[str, Callable[[], Any]]) -> list[str]:
    module = types.ModuleType("testing_guide")
    sys.modules[module.__name__] = module
    ran: list[str] = []
    try:
        for index, code in enumerate(blocks()):
            before = set(vars(module))
            exec(compile(code, f"{GUIDE}:block{index + 1}", "exec"), vars(module))
            for name in [n for n in vars(module) if n not in before and n.startswith("test_")]:
                fn = vars(module)[name]
                kwargs: dict[str, Any] = {}
                for param in inspect.signature(fn).parameters:
                    if param == "tmp_path":
                        kwargs[param] = tmp_path / name
                        kwargs[param].mkdir()
                    elif param == "ostinato_env":
                        kwargs[param] = WorkflowEnvironment
                    else:
                        kwargs[param] = backends[param]()
                if inspect.iscoroutinefunction(fn):
                    asyncio.run(asyncio.wait_for(fn(**kwargs), 60))
                else:
                    fn(**kwargs)
                ran.append(name)
    finally:
        del sys.modules[module.__name__]
    return ran


def test_the_guide_runs(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    ran = run_guide(
        tmp_path,
        {"ostinato_backend": lambda: request.getfixturevalue("ostinato_sqlite_backend")},
    )
    assert len(ran) >= 12, ran
