"""Shared test setup: async tests without plugins, and one fixture per backend."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

pytest_plugins = ["_pg"]

BACKEND_KINDS = ["memory", "sqlite", "postgres"]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop (no pytest-asyncio needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        funcargs = pyfuncitem.funcargs
        names = pyfuncitem._fixtureinfo.argnames
        kwargs = {name: funcargs[name] for name in names}
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**kwargs), timeout=120))
        return True
    return None


@pytest.fixture(params=BACKEND_KINDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """A URL for ``ostinato.connect`` pointing at an empty store of each backend kind."""
    kind = request.param
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
    else:
        yield request.getfixturevalue("postgres_url")
