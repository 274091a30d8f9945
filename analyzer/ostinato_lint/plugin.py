"""The flake8 entry point (registered as ``OST`` in the ``flake8.extension`` group)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from ._version import __version__
from .config import DEFAULT_CONFIG, config_for
from .finding import Note
from .visitor import analyze

_STDIN_NAMES = frozenset({"stdin", "-", "<stdin>", "(none)"})
_SAID: set[str] = set()  # note keys already printed by this process


class Plugin:
    """flake8 gives us each file's tree; flake8 itself handles ``# noqa`` and ``--select``."""

    name = "ostinato-lint"
    version = __version__

    def __init__(
        self, tree: ast.AST, filename: str = "stdin", lines: list[str] | None = None
    ) -> None:
        self._tree = tree
        self._filename = filename
        self._source = "".join(lines) if lines is not None else None

    def run(self) -> Iterator[tuple[int, int, str, type[Plugin]]]:
        if not isinstance(self._tree, ast.Module):
            return
        if self._filename in _STDIN_NAMES:
            config = DEFAULT_CONFIG
        else:
            config = config_for(Path(self._filename))
        notes: list[Note] = []
        findings = analyze(self._tree, self._filename, config, notes, self._source)
        for note in notes:
            if note.key not in _SAID:
                _SAID.add(note.key)
                print(note.message, file=sys.stderr)
        for finding in findings:
            yield finding.line, finding.col - 1, f"{finding.code} {finding.message}", type(self)
