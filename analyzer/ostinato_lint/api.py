"""Lint sources, files and directories without flake8 (what ``ostinato lint`` runs)."""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import DEFAULT_CONFIG, LintConfig, config_for
from .finding import Finding, Note
from .visitor import analyze

# Same spelling flake8 accepts: a bare noqa comment silences everything on the line, a noqa
# comment followed by ": OST101,E501" only the listed codes (or code prefixes).
_NOQA = re.compile(
    r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
_SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", ".tox", ".nox", "__pycache__", "node_modules", "build", "dist"}
)


def _suppressed(finding: Finding, lines: Sequence[str]) -> bool:
    if not 0 < finding.line <= len(lines):
        return False
    match = _NOQA.search(lines[finding.line - 1])
    if match is None:
        return False
    codes = match.group("codes")
    if codes is None:
        return True
    return any(finding.code.startswith(code.upper()) for code in re.split(r"[,\s]+", codes))


def lint_source(
    source: str,
    path: str = "<string>",
    config: LintConfig | None = None,
    *,
    noqa: bool = True,
    notes: list[Note] | None = None,
) -> list[Finding]:
    """Findings for one module's source.  Raises ``SyntaxError`` for invalid code.

    Without ``config``, the ``[tool.ostinato.lint]`` table of the pyproject.toml nearest to
    ``path`` applies (none for ``<string>``).
    """
    tree = ast.parse(source, filename=path)
    if config is None:
        config = DEFAULT_CONFIG if path.startswith("<") else config_for(Path(path))
    findings = analyze(tree, path, config, notes, source)
    if noqa:
        lines = source.splitlines()
        findings = [finding for finding in findings if not _suppressed(finding, lines)]
    return findings


def lint_file(
    path: Path, config: LintConfig | None = None, *, notes: list[Note] | None = None
) -> list[Finding]:
    source = importlib.util.decode_source(path.read_bytes())  # honours PEP 263 coding lines
    return lint_source(source, str(path), config, notes=notes)


def iter_python_files(path: Path) -> Iterator[Path]:
    """``path`` itself if it is a file, else the .py files under it (skipping venvs, caches)."""
    if not path.is_dir():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.is_dir():
            if child.name not in _SKIPPED_DIRS and not child.name.startswith("."):
                yield from iter_python_files(child)
        elif child.suffix == ".py":
            yield child


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files that could not be read or parsed
    notes: list[str] = field(default_factory=list)  # how files were checked, each said once
    files: int = 0  # files linted


def _selected(code: str, select: Sequence[str], ignore: Sequence[str]) -> bool:
    if select and not code.startswith(tuple(select)):
        return False
    return not code.startswith(tuple(ignore))


def lint_paths(
    paths: Iterable[str | Path],
    *,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    config: LintConfig | None = None,
) -> LintResult:
    """Lint files and directories (recursively).  Unreadable or invalid files go to ``errors``."""
    result = LintResult()
    notes: list[Note] = []
    seen_notes: set[str] = set()
    for given in paths:
        root = Path(given)
        if not root.exists():
            result.errors.append(f"{root}: no such file or directory")
            continue
        for file in iter_python_files(root):
            result.files += 1
            try:
                findings = lint_file(file, config, notes=notes)
            except SyntaxError as error:
                where = f"{file}:{error.lineno or 1}:{(error.offset or 0) or 1}"
                result.errors.append(f"{where}: E999 SyntaxError: {error.msg}")
                continue
            except (OSError, UnicodeDecodeError) as error:
                result.errors.append(f"{file}: cannot read: {error}")
                continue
            finally:
                for note in notes:
                    if note.key not in seen_notes:
                        seen_notes.add(note.key)
                        result.notes.append(note.message)
                notes.clear()
            result.findings.extend(f for f in findings if _selected(f.code, select, ignore))
    return result
