"""Storage backends: memory, SQLite (stdlib ``sqlite3``) and PostgreSQL (psycopg 3).

Each implements ``ostinato._backend.Backend`` and passes the conformance suite in
``tests/backends``. Build one from a URL with ``ostinato.connect``.
"""

from __future__ import annotations

from .memory import MemoryBackend
from .sqlite import SqliteBackend

__all__ = ["MemoryBackend", "SqliteBackend"]
