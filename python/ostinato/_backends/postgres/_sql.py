"""The SQL of the PostgreSQL backend: named query blocks of ``queries.sql`` and the numbered
migrations in ``sql/postgres/``, applied under an advisory lock (``migrate``)."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import psycopg
from psycopg import sql

from ._pool import Conn
from ._url import DEFAULT_SCHEMA, _scrub, _secrets_of, mask_dsn, split_url_options

log = logging.getLogger("ostinato.postgres")

SQL_DIR = Path(__file__).parent.parent / "sql" / "postgres"


# ---- SQL files ------------------------------------------------------------------------------

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


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


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql text) of every ``NNNN_name.sql`` file, in version order."""
    migrations = []
    for path in sorted(SQL_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:4])
        migrations.append((version, path.stem[5:], path.read_text(encoding="utf-8")))
    versions = [m[0] for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"PostgreSQL migrations are not numbered 1..n: {versions}")
    return migrations


class Queries:
    """The named queries of ``queries.sql`` rendered for one schema (as bytes, ready to run)."""

    def __init__(self, schema: str) -> None:
        blocks = parse_named_blocks((SQL_DIR / "queries.sql").read_text(encoding="utf-8"))
        columns = sql.SQL(blocks.pop("run_columns"))
        self._rendered = {
            name: sql.SQL(text)  # our own file, never user input
            .format(schema=sql.Identifier(schema), run_columns=columns)
            .as_bytes(None)
            for name, text in blocks.items()
        }

    def __getitem__(self, name: str) -> bytes:
        return self._rendered[name]

    def __contains__(self, name: object) -> bool:
        return name in self._rendered


def _schema_sql(text: str, schema: str) -> bytes:
    return sql.SQL(text).format(schema=sql.Identifier(schema)).as_bytes(None)


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"ostinato.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _schema_version(conn: Conn, schema: str) -> int | None:
    """The highest applied migration, or None when the schema has never been migrated."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
        " WHERE schemaname = %s AND tablename = 'schema_version')",
        [schema],
    )
    row = await cur.fetchone()
    if row is None or not row[0]:
        return None
    cur = await conn.execute(
        _schema_sql("SELECT max(version) FROM {schema}.schema_version", schema)
    )
    row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def _apply_migrations(conn: Conn, schema: str) -> list[int]:
    """Apply the missing migrations in one transaction; returns the versions applied.

    The transaction-scoped advisory lock makes concurrent callers (workers starting together)
    wait for each other: the first applies, the others then find nothing left to do.
    """
    migrations = load_migrations()
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(schema)])
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s)", [schema]
        )
        row = await cur.fetchone()
        if row is None or not row[0]:
            await conn.execute(_schema_sql("CREATE SCHEMA {schema}", schema))
        await conn.execute(
            _schema_sql(
                "CREATE TABLE IF NOT EXISTS {schema}.schema_version ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                schema,
            )
        )
        cur = await conn.execute(_schema_sql("SELECT version FROM {schema}.schema_version", schema))
        done = {int(r[0]) for r in await cur.fetchall()}
        for version, name, text in migrations:
            if version in done:
                continue
            # No parameters: psycopg sends the file as one multi-statement query.
            await conn.execute(_schema_sql(text, schema))
            await conn.execute(
                _schema_sql(
                    "INSERT INTO {schema}.schema_version (version, name) VALUES (%s, %s)",
                    schema,
                ),
                [version, name],
            )
            applied.append(version)
        newest = max(done, default=0)
        if newest > len(migrations):
            log.warning(
                "the database schema %r is at version %d, newer than this ostinato knows "
                "(%d): upgrade ostinato on every host",
                schema,
                newest,
                len(migrations),
            )
    if applied:
        log.info("applied PostgreSQL migrations %s to schema %r", applied, schema)
    return applied


async def migrate(dsn: str, *, schema: str | None = None) -> list[int]:
    """Create or upgrade the ostinato schema (``ostinato db migrate``); returns the versions
    applied, ``[]`` when the schema was already current. Safe to run from several hosts at
    once. ``schema`` defaults to the URL's ``?schema=``, else ``ostinato``."""
    secrets = _secrets_of(dsn)
    dsn, from_url = split_url_options(dsn)
    if schema is None:
        schema = str(from_url.get("schema", DEFAULT_SCHEMA))
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise psycopg.OperationalError(
            f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {_scrub(str(exc), secrets)}"
        ) from None
    async with conn:
        return await _apply_migrations(conn, schema)
