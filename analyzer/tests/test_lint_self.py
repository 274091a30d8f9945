"""The checker on real code: the project's examples must be clean, and so must the plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ostinato_lint
import pytest
from ostinato_lint import lint_paths

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PACKAGE = Path(ostinato_lint.__file__).parent


def test_examples_lint_clean() -> None:
    if not any(EXAMPLES.rglob("*.py")):
        pytest.skip("examples/ has no .py files yet")
    result = lint_paths([EXAMPLES])
    assert result.errors == []
    assert [finding.format() for finding in result.findings] == []


def test_the_plugin_lints_itself() -> None:
    result = lint_paths([PACKAGE])
    assert result.errors == []
    assert result.findings == []


def test_flake8_runs_the_plugin_on_itself() -> None:
    pytest.importorskip("flake8", reason="flake8 is not installed")
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select", "OST", str(PACKAGE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_flake8_registers_the_plugin() -> None:
    pytest.importorskip("flake8", reason="flake8 is not installed")
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--version"], capture_output=True, text=True, check=True
    )
    assert "ostinato-lint" in completed.stdout
