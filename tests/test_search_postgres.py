"""Listing by tag among many runs on PostgreSQL: the plan walks the GIN index of tags.

100,000 runs are made with one INSERT ... SELECT generate_series (seconds, not minutes), the
table analyzed, and the backend's own ``list_runs`` statement explained with the values a
``list_workflows(tags=...)`` call sends: with that many rows a sequential scan would cost far
more, so the planner choosing the index is what makes the listing fast, not a setting.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import psycopg
import pytest
from ostinato._backends import postgres as pg
from ostinato._backends.postgres import PostgresBackend
from ostinato._backends.postgres._client import list_params

pytestmark = pytest.mark.postgres

RUNS = 100_000
CUSTOMERS = 20_000  # five runs each


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


async def test_listing_by_tag_uses_the_index_among_many_runs(postgres_url: str) -> None:
    b = PostgresBackend(postgres_url, schema="many_tags")
    await b.open()
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO many_tags.instances (instance_id, latest_run_id) "
                "SELECT 'i' || g, 'r' || g FROM generate_series(1, %s) AS g",
                [RUNS],
            )
            await conn.execute(
                "INSERT INTO many_tags.runs (instance_id, run_id, workflow_name, queue, status,"
                " created_at, updated_at, closed_at, history_length, tags) "
                "SELECT 'i' || g, 'r' || g, 'report', 'default', 'completed', g, g, g + 1, 0,"
                " jsonb_build_object('customer', 'c' || (g %% %s), 'plan', 'pro') "
                "FROM generate_series(1, %s) AS g",
                [CUSTOMERS, RUNS],
            )
            await conn.execute("ANALYZE many_tags.runs")
            params = list_params(
                status=None,
                workflow_name=None,
                limit=100,
                cursor=None,
                queue=None,
                tags={"customer": "c42"},
                started_after=None,
                started_before=None,
                closed_after=None,
                blocked=None,
            )
            query = pg.Queries("many_tags")["list_runs"]
            cur = await conn.execute(b"EXPLAIN (FORMAT JSON) " + query, params)
            row = await cur.fetchone()
            assert row is not None
            raw = row[0]
            plan = (orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw)[0]["Plan"]
        nodes = _plan_nodes(plan)
        used = {n.get("Index Name") for n in nodes}
        assert "runs_latest_by_tags" in used, orjson.dumps(plan, option=orjson.OPT_INDENT_2)
        assert not any(n["Node Type"] == "Seq Scan" for n in nodes)

        started = time.perf_counter()
        page, cursor = await b.list_runs(tags={"customer": "c42"})
        elapsed = time.perf_counter() - started
        print(f"\nlist_runs(tags=...) among {RUNS} runs: {elapsed * 1000:.1f} ms")
        assert cursor is None
        assert [r.instance_id for r in page] == [f"i{g}" for g in (80042, 60042, 40042, 20042, 42)]
        assert all(r.tags == {"customer": "c42", "plan": "pro"} for r in page)
    finally:
        await b.close()
