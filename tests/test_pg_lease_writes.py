"""Writes of nothing but a lease commit on PostgreSQL without waiting for their WAL flush
(docs/backends.md, "Claims without a flush"); every other write still waits for it.

Made visible with synchronous replication to a standby that does not exist: a commit that
waits for its flush then waits for that standby forever, while a commit with
``synchronous_commit = off`` returns at once. (Server crashes with claims in flight are
test_pg_faults.py's.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import ostinato
import psycopg
import pytest
from _pg import ExternalServer, PgServer
from ostinato.backends import NewActivity
from ostinato.testing.conformance._support import full_commit

pytestmark = [pytest.mark.postgres]


def _admin(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def no_flushed_commits(pg_server: PgServer | ExternalServer) -> Iterator[None]:
    """Between ``enter()`` and the test's end, every commit that waits for its flush hangs."""
    if isinstance(pg_server, ExternalServer):
        pytest.skip("OSTINATO_TEST_PG_URL points at an external server: cannot reconfigure it")
    admin = pg_server.url("postgres")
    try:
        yield
    finally:
        _admin(
            admin,
            "ALTER SYSTEM RESET synchronous_standby_names",
            "SELECT pg_reload_conf()",
        )


def _hang_flushed_commits(pg_server: PgServer | ExternalServer) -> None:
    _admin(
        pg_server.url("postgres"),
        "ALTER SYSTEM SET synchronous_standby_names = 'nobody'",
        "SELECT pg_reload_conf()",
    )


def _flushed_insert_seconds(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        cancel = threading.Timer(0.5, conn.cancel)
        cancel.start()
        began = time.monotonic()
        conn.execute("INSERT INTO scratch VALUES (1)")
        cancel.cancel()
        return time.monotonic() - began


async def test_claims_and_lease_ticks_do_not_wait_for_the_wal_flush(
    postgres_url: str, pg_server: PgServer | ExternalServer, no_flushed_commits: None
) -> None:
    # The test server commits without flushing (synchronous_commit = off); not here.
    url = f"{postgres_url}?options=-csynchronous_commit%3Don"
    backend = ostinato.connect(url, listen=False)
    client = ostinato.Client(backend)
    try:
        await client.start_workflow("some.workflow", id="a")
        await client.start_workflow("some.workflow", id="b")
        [task_a] = await backend.claim_workflow_tasks(["default"], 60, 1)
        act = NewActivity(1, "charge", "default", b"[]", b"{}")
        await backend.commit_workflow_task(task_a, full_commit(task_a, activities=[act]))

        _admin(postgres_url, "CREATE TABLE scratch (x int)")
        await asyncio.to_thread(_hang_flushed_commits, pg_server)
        # The setting bites: a flushed commit waits until cancelled (it committed locally
        # then, and returns with a warning). The server takes the setting in a moment.
        for _ in range(20):
            if await asyncio.to_thread(_flushed_insert_seconds, url) >= 0.5:
                break
        else:
            raise AssertionError("synchronous_standby_names never made a commit wait")

        # Lease writes return at once all the same.
        async def lease_writes() -> None:
            [task_b] = await backend.claim_workflow_tasks(["default"], 60, 1)
            assert task_b.instance_id == "b"
            await backend.extend_workflow_lease(task_b, 60)
            [activity] = await backend.claim_activity_tasks(["default"], 60, 1)
            assert activity.instance_id == "a"
            assert await backend.heartbeat_activity(activity, None, 60) is False

        await asyncio.wait_for(lease_writes(), 10)
    finally:
        await backend.close()
