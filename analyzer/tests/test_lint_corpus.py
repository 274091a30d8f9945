"""A corpus of workflows in each framework's idiom (written for this suite), with the findings
each line must produce marked inline, checked under every preset."""

from __future__ import annotations

from pathlib import Path

import pytest
from _expectations import expected_findings
from ostinato_lint import lint_file, lint_paths
from ostinato_lint.config import parse_config
from ostinato_lint.finding import Note
from ostinato_lint.presets import PRESETS

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.rglob("*.py"))
IDS = [str(path.relative_to(CORPUS)) for path in FILES]


def _framework(path: Path) -> str:
    return path.relative_to(CORPUS).parts[0]


def test_every_preset_has_a_corpus() -> None:
    assert {_framework(path) for path in FILES} == set(PRESETS)
    assert all(expected_findings(path) for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_detected_preset_finds_what_is_marked(path: Path) -> None:
    notes: list[Note] = []
    found = {(finding.line, finding.code) for finding in lint_file(path, notes=notes)}
    assert found == expected_findings(path)
    if _framework(path) != "ostinato":
        assert [note.key for note in notes] == [f"detected:{_framework(path)}"]


@pytest.mark.parametrize("path", FILES, ids=IDS)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_under_each_preset(path: Path, preset: str) -> None:
    """Its own preset finds exactly what is marked; another one checks nothing there and warns
    that the file's framework is not configured."""
    config = parse_config({"preset": preset}, CORPUS / "pyproject.toml")
    notes: list[Note] = []
    found = {(finding.line, finding.code) for finding in lint_file(path, config, notes=notes)}
    framework = _framework(path)
    if preset == framework:
        assert found == expected_findings(path)
        assert notes == []
    else:
        assert found == set()
        assert [note.key for note in notes] == [f"unconfigured:{framework}"]


def test_all_presets_together_find_the_union() -> None:
    """Configured together, the presets check every framework's files; OST112/OST113 apply to
    ostinato files then too, because the other presets keep them on."""
    config = parse_config({"preset": sorted(PRESETS)}, CORPUS / "pyproject.toml")
    for path in FILES:
        found = {(f.line, f.code) for f in lint_file(path, config)}
        expected = expected_findings(path)
        assert expected <= found
        assert {code for _, code in found - expected} <= {"OST112", "OST113"}


def test_corpus_through_the_runner() -> None:
    result = lint_paths([CORPUS])
    assert result.errors == []
    assert len(result.findings) == sum(len(expected_findings(path)) for path in FILES)
    assert sorted(result.notes) == sorted(
        note for note in result.notes if "no preset configured" in note
    )
    assert len(result.notes) == 2  # temporal and dbos, each said once
