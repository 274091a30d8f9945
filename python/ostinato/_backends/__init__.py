"""Storage backends: memory, SQLite (stdlib ``sqlite3``) and PostgreSQL (psycopg 3).

Each implements ``ostinato.backends.Backend`` (``_contract``) and passes the conformance
suite, ``ostinato.testing.conformance``. Build one from a URL with ``ostinato.connect``, or
by class from ``ostinato.backends``. docs/backends.md has the map of this package.
"""

from __future__ import annotations

from .memory import MemoryBackend
from .sqlite import SqliteBackend

__all__ = ["MemoryBackend", "SqliteBackend"]
