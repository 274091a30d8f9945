"""Claims by priority on PostgreSQL stay index walks among many ready tasks.

100,000 ready activity tasks and 20,000 runs with a visible inbox event, of mixed priorities,
are made with INSERT ... SELECT generate_series and analyzed; the backend's own claim
statements are explained with the values a worker sends. The planner must walk the rank
indexes of migration 13 in claim order (no sort of the backlog, no sequential scan of a big
table), and the claims themselves must take the highest-ranked work. (Before, the activity
claim sorted every ready task of the queue: about 270 ms here, against under 1 ms now.)
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import psycopg
import pytest
from ostinato._backends import postgres as pg
from ostinato._backends.postgres import PostgresBackend

pytestmark = pytest.mark.postgres

TASKS = 100_000
RUNS = 20_000
NOW = 1_000_000.0  # every row below is visible by then


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


async def _plan(conn: psycopg.AsyncConnection[Any], query: bytes, params: dict[str, Any]) -> Any:
    cur = await conn.execute(b"EXPLAIN (FORMAT JSON) " + query, params)
    row = await cur.fetchone()
    assert row is not None
    raw = row[0]
    return (orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw)[0]["Plan"]


async def test_claims_by_priority_walk_the_rank_indexes_among_many_ready_tasks(
    postgres_url: str,
) -> None:
    schema = "many_ready"
    b = PostgresBackend(postgres_url, schema=schema, clock=lambda: NOW)
    await b.open()
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            # Runs r1..r20000 (priority g % 5), each with one visible inbox event at g; tasks
            # t1..t100000 of those runs on queue "q", ready at g with priority g % 5.
            await conn.execute(
                f"INSERT INTO {schema}.instances (instance_id, latest_run_id) "
                "SELECT 'i' || g, 'r' || g FROM generate_series(1, %s) AS g",
                [RUNS],
            )
            await conn.execute(
                f"INSERT INTO {schema}.runs (instance_id, run_id, workflow_name, queue,"
                " created_at, updated_at, priority) "
                "SELECT 'i' || g, 'r' || g, 'wf', 'q', g, g, g %% 5 "
                "FROM generate_series(1, %s) AS g",
                [RUNS],
            )
            await conn.execute(
                f"INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event) "
                "SELECT 'i' || g, 'r' || g, g, '{}'::bytea FROM generate_series(1, %s) AS g",
                [RUNS],
            )
            await conn.execute(
                f"INSERT INTO {schema}.activity_tasks (instance_id, run_id, activity_id, name,"
                " queue, input, options, scheduled_at, visible_at, priority) "
                "SELECT 'i' || (1 + g %% %s), 'r' || (1 + g %% %s), g, 'act'::bytea, 'q',"
                " '[]'::bytea, '{}'::bytea, g, g, g %% 5 "
                "FROM generate_series(1, %s) AS g",
                [RUNS, RUNS, TASKS],
            )
            for table in ("runs", "inbox", "activity_tasks"):
                await conn.execute(f"ANALYZE {schema}.{table}")
            # The trigger gave each inbox row its run's priority.
            cur = await conn.execute(
                f"SELECT count(*) FROM {schema}.inbox AS i JOIN {schema}.runs AS r"
                " USING (instance_id, run_id) WHERE i.priority <> r.priority"
            )
            assert await cur.fetchone() == (0,)

            queries = pg.Queries(schema)
            activity_plan = await _plan(
                conn,
                queries["claim_activity_tasks"],
                {"queues": ["q"], "now": NOW, "lease_seconds": 30.0, "max_tasks": 10},
            )
            workflow_plan = await _plan(
                conn,
                queries["claim_workflow_tasks"],
                {
                    "queues": ["q"],
                    "now": NOW,
                    "lease_seconds": 30.0,
                    "max_tasks": 10,
                    "worker": "",
                    "sticky_wait": 5.0,
                },
            )
        for plan, index in (
            (activity_plan, "activity_tasks_ready_by_rank"),
            (workflow_plan, "inbox_by_rank"),
        ):
            nodes = _plan_nodes(plan)
            shown = orjson.dumps(plan, option=orjson.OPT_INDENT_2).decode()
            walks = [n for n in nodes if n.get("Index Name") == index]
            assert walks and all(n["Node Type"] == "Index Scan" for n in walks), shown
            # Nothing reads a whole table, and no sort is fed by the walk: the only sorts
            # are of the few tasks whose lease expired and of the 2 * max_tasks candidates.
            big = {"activity_tasks", "inbox", "runs"}
            assert not [n for n in nodes if n["Node Type"].endswith("Seq Scan")
                        and n.get("Relation Name") in big], shown  # fmt: skip
            for sort in (n for n in nodes if n["Node Type"] == "Sort"):
                assert index not in {n.get("Index Name") for n in _plan_nodes(sort)}, shown

        started = time.perf_counter()
        tasks = await b.claim_activity_tasks(["q"], 30, 3)
        activity_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        runs = await b.claim_workflow_tasks(["q"], 30, 3)
        workflow_ms = (time.perf_counter() - started) * 1000
        print(
            f"\nclaim among {TASKS} ready activity tasks: {activity_ms:.1f} ms; "
            f"among {RUNS} ready runs: {workflow_ms:.1f} ms"
        )
        # Rank g - (g % 5) * 60 is lowest for the smallest g of priority 4.
        assert sorted(t.activity_id for t in tasks) == [4, 9, 14]
        assert sorted(r.instance_id for r in runs) == ["i14", "i4", "i9"]
    finally:
        await b.close()
