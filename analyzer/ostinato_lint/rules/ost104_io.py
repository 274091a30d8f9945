"""
## What it does
Flags file, network, database and process I/O in workflow code: `open()`, `pathlib.Path`
reads and writes, `os` file and process functions, `socket`, `subprocess`, HTTP clients
(`requests`, `httpx`, `aiohttp`, `urllib.request` ...), database drivers (`sqlite3`, `psycopg`,
`asyncpg`, `redis` ...) and similar.  Projects add their own client libraries with
`extra-banned` in `[tool.ostinato.lint]`.

## Why is this bad?
The result of I/O is not part of the workflow's history.  On replay the same call runs again: a
request is sent twice, a row is read with a different value, a file has changed or is missing on
the other worker.  Anything the workflow decides from it can then differ from what the history
says happened.  I/O also blocks or slows the loop that runs all workflows of the worker.
Activities are the place for I/O: their results are recorded once and handed back unchanged on
every replay, and they get retries and timeouts.

## Example
```python
import httpx

from ostinato import workflow


@workflow.defn
async def sync_customer(customer_id: str) -> None:
    profile = httpx.get(f"https://crm.example/customers/{customer_id}").json()
    with open("/var/log/sync.log", "a") as log:
        log.write(profile["email"])
```

## Use instead
```python
import httpx

from ostinato import activity, workflow


@activity.defn
async def fetch_profile(customer_id: str) -> dict:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"https://crm.example/customers/{customer_id}")
        return response.json()


@workflow.defn
async def sync_customer(customer_id: str) -> None:
    profile = await workflow.execute_activity(fetch_profile, customer_id)
    workflow.logger.info("synced %s", profile["email"])
```
"""

from ._rule import Rule

RULE = Rule(
    code="OST104",
    name="io",
    summary="File, network, database or process I/O in workflow code",
    problem="does I/O, whose result is not in the history",
    advice="move it into an activity and call it with workflow.execute_activity()",
    doc=__doc__ or "",
    module=__name__,
)
