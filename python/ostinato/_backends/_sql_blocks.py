"""SQL kept in files, shared by the SQL backends: ``sql/<dialect>/queries.sql`` holds one
named block per query (``-- name: NAME`` up to the next such line), and
``sql/<dialect>/NNNN_name.sql`` the numbered migrations.

The files ship in the wheel beside the Python sources (maturin's ``python-source`` takes the
whole package directory). Each backend renders the blocks its own way (PostgreSQL quotes its
schema into them, SQLite fills in its fragments and ``?`` lists).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SQL_DIR", "fill", "parse_named_blocks", "read_blocks", "read_migrations"]

SQL_DIR = Path(__file__).parent / "sql"

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")
_LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def parse_named_blocks(text: str) -> dict[str, str]:
    """Split a queries file into ``{name: sql}`` at its ``-- name: NAME`` lines."""
    blocks: dict[str, str] = {}
    matches = list(_NAME_LINE.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        name = match.group(1)
        if name in blocks:
            raise ValueError(f"query {name!r} is defined twice")
        lines = text[match.end() : end].strip().splitlines()
        # Section comments between blocks belong to no block: drop trailing comment lines.
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()
        blocks[name] = "\n".join(lines)
    return blocks


def read_blocks(dialect: str) -> dict[str, str]:
    """The named blocks of ``sql/<dialect>/queries.sql``."""
    return parse_named_blocks((SQL_DIR / dialect / "queries.sql").read_text(encoding="utf-8"))


def read_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL text) of every ``sql/<dialect>/NNNN_name.sql``, in version
    order; ``RuntimeError`` unless they are numbered 1..n."""
    found = []
    for path in (SQL_DIR / dialect).iterdir():
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path.name, path.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        label = _LABELS.get(dialect, dialect)
        raise RuntimeError(f"{label} migrations are not numbered 1..n: {versions}")
    return found


def fill(text: str, fragments: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` of ``fragments`` replaced by its text; other braces are
    left alone (SQL has none of its own in our files, but a fragment must not be mistaken)."""
    for name, fragment in fragments.items():
        text = text.replace("{" + name + "}", fragment)
    return text
