"""Inline expectations: a trailing ``# OST101`` comment (codes separated by spaces or commas)
says which findings that line must produce.  ``# noqa: ...`` comments are not expectations."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
_MARKER = re.compile(r"#\s*(OST\d{3}(?:[\s,]+OST\d{3})*)\s*$")


def expected_findings(path: Path) -> set[tuple[int, str]]:
    expected: set[tuple[int, str]] = set()
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        match = _MARKER.search(token.string)
        if match:
            for code in re.split(r"[\s,]+", match.group(1)):
                expected.add((token.start[0], code))
    return expected


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.rglob("*.py"))
