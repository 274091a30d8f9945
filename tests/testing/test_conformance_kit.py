"""The conformance suite as a third party runs it: a test module of their own subclassing
``BackendConformance``, run by plain pytest outside our tests (no conftest, no async plugin)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import ostinato.testing.conformance as conformance

THIRD_PARTY = textwrap.dedent(
    """
    import pytest
    from ostinato.backends import MemoryBackend
    from ostinato.testing.conformance import BackendConformance


    class TheirBackend(MemoryBackend):
        '''Stands for a backend written elsewhere.'''


    class TestTheirBackend(BackendConformance):
        @pytest.fixture
        def make_backend(self):
            return lambda clock: TheirBackend(clock=clock)


    class TestForgotTheFixture(BackendConformance):
        pass
    """
)


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_third_party_backend_runs_the_whole_suite(tmp_path: Path) -> None:
    (tmp_path / "test_their_backend.py").write_text(THIRD_PARTY)
    ours = len([name for name in dir(conformance.BackendConformance) if name.startswith("test_")])
    assert ours >= 60
    # Every test of the suite is collected (parametrized ones more than once), and all pass.
    collected = _pytest(tmp_path, "-k", "TestTheirBackend", "--collect-only")
    items = [line for line in collected.stdout.splitlines() if "::TestTheirBackend::" in line]
    assert len({item.split("::")[-1].split("[")[0] for item in items}) == ours, collected.stdout
    result = _pytest(tmp_path, "-k", "TestTheirBackend")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(items)} passed" in result.stdout, result.stdout
    # Without the fixture every test fails at setup, saying what to write.
    result = _pytest(tmp_path, "-k", "TestForgotTheFixture and test_create_and_describe")
    assert result.returncode == 1
    assert "needs a make_backend fixture" in result.stdout, result.stdout
