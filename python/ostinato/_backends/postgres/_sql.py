"""The SQL of the PostgreSQL backend: named query blocks of ``queries.sql`` and the numbered
migrations in ``sql/postgres/`` (read by the loader the SQL backends share, ``_sql_blocks``),
applied under an advisory lock (``migrate``)."""

from __future__ import annotations

import hashlib
import logging

import psycopg
from psycopg import sql

from .._sql_blocks import parse_named_blocks as parse_named_blocks
from .._sql_blocks import read_blocks, read_migrations
from ._pool import Conn
from ._url import DEFAULT_SCHEMA, _scrub, _secrets_of, mask_dsn, split_url_options

log = logging.getLogger("ostinato.postgres")


def load_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql text) of every ``NNNN_name.sql`` file, in version order."""
    return [(version, file[5:-4], text) for version, file, text in read_migrations("postgres")]


class Queries:
    """The named queries of ``queries.sql`` rendered for one schema (as bytes, ready to run)."""

    def __init__(self, schema: str) -> None:
        blocks = read_blocks("postgres")
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
