"""pytest plugin (entry point ``pytest11``): fixtures for testing ostinato workflows.

Fixtures (all function-scoped):

- ``ostinato_memory_backend``, ``ostinato_sqlite_backend`` (a temp file): fresh backends,
  not yet opened.
- ``ostinato_postgres_backend``: a backend on ``OSTINATO_TEST_PG_URL``, in a schema of its
  own dropped after the test; the test is skipped when the variable is not set.
- ``ostinato_backend``: parametrized over memory, sqlite, and postgres when configured —
  a test using it runs once per backend.
- ``ostinato_env``: a factory, ``ostinato_env(workflows=[...], activities=[...], **options)``
  returning a ``WorkflowEnvironment`` (in-memory unless ``backend=`` is given) to enter with
  ``async with``. It makes no assumption about how async tests are run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .._backends._contract import Backend
from .._connect import connect
from ._env import WorkflowEnvironment

PG_URL_VARIABLE = "OSTINATO_TEST_PG_URL"


def _close_quietly(backend: Backend) -> None:
    """Close a backend a test left open (best effort: it may belong to a closed loop)."""
    with contextlib.suppress(Exception):
        asyncio.run(asyncio.wait_for(backend.close(), 5))


@pytest.fixture
def ostinato_memory_backend() -> Backend:
    return connect("memory://")


@pytest.fixture
def ostinato_sqlite_backend(tmp_path: Path) -> Iterator[Backend]:
    backend = connect(f"sqlite:///{tmp_path / 'ostinato-test.db'}")
    yield backend
    _close_quietly(backend)


@pytest.fixture
def ostinato_postgres_backend() -> Iterator[Backend]:
    url = os.environ.get(PG_URL_VARIABLE)
    if not url:
        pytest.skip(f"set {PG_URL_VARIABLE} to run tests against PostgreSQL")
    schema = f"ostinato_test_{uuid.uuid4().hex[:12]}"
    backend = connect(url, schema=schema)
    yield backend
    _close_quietly(backend)
    _drop_schema(url, schema)


def _drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    from .._backends.postgres import split_url_options

    dsn, _ = split_url_options(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _backend_kinds() -> list[str]:
    kinds = ["memory", "sqlite"]
    if os.environ.get(PG_URL_VARIABLE):
        kinds.append("postgres")
    return kinds


@pytest.fixture(params=_backend_kinds())
def ostinato_backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"ostinato_{request.param}_backend")
    return backend


@pytest.fixture
def ostinato_env() -> Callable[..., WorkflowEnvironment]:
    def make(
        workflows: Any = (),
        activities: Any = (),
        backend: Backend | str | None = None,
        **options: Any,
    ) -> WorkflowEnvironment:
        return WorkflowEnvironment(workflows, activities, backend, **options)

    return make
