"""The pytest plugin's fixtures (loaded through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import ostinato
import pytest
from ostinato import workflow
from ostinato.testing import WorkflowEnvironment

START = datetime(2030, 1, 1, tzinfo=timezone.utc)


@workflow.defn
async def nap(days: int) -> str:
    await workflow.sleep(timedelta(days=days))
    return workflow.now().isoformat()


def test_the_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("ostinato")


async def test_env_factory(ostinato_env: Callable[..., WorkflowEnvironment]) -> None:
    async with ostinato_env(workflows=[nap], start_time=START) as env:
        assert await env.execute_workflow(nap, 3, timeout=10) == (START + timedelta(3)).isoformat()


async def test_every_backend(
    ostinato_backend: ostinato.Backend, ostinato_env: Callable[..., WorkflowEnvironment]
) -> None:
    async with ostinato_env(
        workflows=[nap], backend=ostinato_backend, start_time=START, close_backend=True
    ) as env:
        handle = await env.client.start_workflow(nap, 30, id="nap")
        assert await handle.result(timeout=10) == (START + timedelta(30)).isoformat()
        assert len(await handle.history()) > 3


def test_sqlite_backend_is_a_temp_file(ostinato_sqlite_backend: ostinato.Backend) -> None:
    assert str(ostinato_sqlite_backend.path).endswith("ostinato-test.db")  # type: ignore[attr-defined]


@pytest.mark.postgres
async def test_postgres_backend_from_the_environment_variable(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSTINATO_TEST_PG_URL", request.getfixturevalue("postgres_url"))
    backend = request.getfixturevalue("ostinato_postgres_backend")
    async with WorkflowEnvironment(
        workflows=[nap], backend=backend, start_time=START, close_backend=True
    ) as env:
        assert await env.execute_workflow(nap, 2, timeout=20) == (START + timedelta(2)).isoformat()


def test_postgres_backend_skips_when_not_configured(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OSTINATO_TEST_PG_URL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="OSTINATO_TEST_PG_URL"):
        request.getfixturevalue("ostinato_postgres_backend")
