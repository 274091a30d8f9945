"""Every fixture's findings match its inline expectations, through the runner and through flake8."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from _expectations import FIXTURES, expected_findings, fixture_files
from ostinato_lint import RULES_BY_CODE, lint_file

FILES = fixture_files()
IDS = [str(path.relative_to(FIXTURES)) for path in FILES]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_runner_matches_inline_expectations(path: Path) -> None:
    found = {(finding.line, finding.code) for finding in lint_file(path)}
    assert found == expected_findings(path)


@pytest.fixture(scope="session")
def flake8_findings() -> dict[Path, set[tuple[int, str]]]:
    pytest.importorskip("flake8", reason="flake8 is not installed")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flake8",
            "--isolated",
            "--select",
            "OST",
            "--format",
            "%(path)s|%(row)d|%(col)d|%(code)s",
            str(FIXTURES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr
    by_file: dict[Path, set[tuple[int, str]]] = {path.resolve(): set() for path in FILES}
    for line in completed.stdout.splitlines():
        path, row, _col, code = line.split("|")
        by_file.setdefault(Path(path).resolve(), set()).add((int(row), code))
    return by_file


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_flake8_matches_inline_expectations(
    path: Path, flake8_findings: dict[Path, set[tuple[int, str]]]
) -> None:
    assert flake8_findings[path.resolve()] == expected_findings(path)


def test_every_rule_has_a_fixture_that_triggers_it() -> None:
    covered = {code for path in FILES for _, code in expected_findings(path)}
    assert covered == set(RULES_BY_CODE)


def test_every_rule_has_its_own_fixture_file() -> None:
    for code, rule in RULES_BY_CODE.items():
        name = f"{code.lower()}_{rule.name.replace('-', '_')}.py"
        assert (FIXTURES / name).exists(), f"missing fixture {name}"


@pytest.mark.parametrize(
    "name", ["negative_activities.py", "negative_unreachable_helpers.py", "negative_correct_use.py"]
)
def test_negative_fixtures_are_clean(name: str) -> None:
    path = FIXTURES / name
    assert not expected_findings(path)
    assert lint_file(path) == []


def test_columns_agree_with_flake8() -> None:
    pytest.importorskip("flake8", reason="flake8 is not installed")
    path = FIXTURES / "ost104_io.py"
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select", "OST", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    ours = [finding.format() for finding in lint_file(path)]
    theirs = completed.stdout.splitlines()
    assert [re.sub(r"^.*?:", "", line) for line in ours] == [
        re.sub(r"^.*?:", "", line) for line in theirs
    ]
