"""The PostgreSQL backend, a package of one concern per module:

- ``_sql``: named SQL blocks and migrations (the files stay in ``_backends/sql/postgres/``);
- ``_url``: ostinato's options in URLs, connection parameters, credential masking;
- ``_pool``: the pool's connections and its log filter;
- ``_batch``: the group-commit batcher;
- ``_core``: the class's state and plumbing (open/close, retries, LISTEN/NOTIFY, shared pieces);
- ``_client``, ``_workflows``, ``_activities``: the operations of each side, as mixins;
- ``_backend``: ``PostgresBackend``, the three sides put together.
"""

from __future__ import annotations

# First, so that a missing psycopg is reported as such even when our modules were imported.
import psycopg  # noqa: F401

from ._backend import PostgresBackend
from ._sql import Queries as Queries
from ._sql import load_migrations as load_migrations
from ._sql import migrate
from ._sql import parse_named_blocks as parse_named_blocks
from ._url import DEFAULT_SCHEMA, mask_dsn
from ._url import split_url_options as split_url_options

__all__ = ["DEFAULT_SCHEMA", "PostgresBackend", "mask_dsn", "migrate"]
