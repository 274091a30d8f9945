"""The SQL of the SQLite backend: the named blocks of ``sql/sqlite/queries.sql`` and the
numbered migrations beside them, read by the loader the SQL backends share (``_sql_blocks``).
"""

from __future__ import annotations

import sqlite3

from ._sql_blocks import fill, read_blocks, read_migrations

__all__ = ["QUERIES", "SqliteQueries", "load_migrations", "split_statements"]

# Blocks that are pieces of other blocks, not queries. The first two are filled in when the
# file is loaded; the filter_* ones by ``list_runs`` per call.
_STATIC_FRAGMENTS = ("run_columns", "claimable")
_FILTERS = (
    "filter_before",
    "filter_status",
    "filter_workflow",
    "filter_queue",
    "filter_tag",
    "filter_started_after",
    "filter_started_before",
    "filter_closed_after",
    "filter_blocked",
    "filter_not_blocked",
    "filter_paused",
    "filter_not_paused",
)


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped with the package, in order."""
    return read_migrations("sqlite")


def split_statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit mid-transaction)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    statements: list[str] = []
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {pending[:80]!r}")
    return statements


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


class SqliteQueries:
    """The named queries, ready to execute. ``q[name]`` for a query with fixed text;
    ``q.for_queues(name, n)`` for one with an ``IN ({queues})`` list of ``n`` parameters;
    ``q.list_runs(filters)`` for the listing with the given ``filter_*`` fragments."""

    def __init__(self) -> None:
        blocks = {name: _without_comments(text) for name, text in read_blocks("sqlite").items()}
        static = {name: blocks.pop(name) for name in _STATIC_FRAGMENTS}
        self._filters = {name: blocks.pop(name) for name in _FILTERS}
        self._sql = {name: fill(text, static) for name, text in blocks.items()}
        # (name, number of queues) -> text: the same string each time, so the connection's
        # statement cache keeps it prepared.
        self._sized: dict[tuple[str, int], str] = {}

    def __getitem__(self, name: str) -> str:
        return self._sql[name]

    def __contains__(self, name: object) -> bool:
        return name in self._sql or name in self._filters

    def for_queues(self, name: str, count: int) -> str:
        key = (name, count)
        text = self._sized.get(key)
        if text is None:
            text = fill(self._sql[name], {"queues": ",".join("?" * count)})
            self._sized[key] = text
        return text

    def list_runs(self, filters: list[str]) -> str:
        where = " AND ".join(self._filters[name] for name in filters) or "1"
        return fill(self._sql["list_runs"], {"filters": where})


QUERIES = SqliteQueries()
