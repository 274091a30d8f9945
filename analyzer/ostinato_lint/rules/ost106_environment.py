"""
## What it does
Flags reads of the process environment in workflow code: `os.environ`, `os.getenv()`,
`os.getcwd()`, `os.getpid()`, `sys.argv`, `platform.node()`, `getpass.getuser()` and similar.

## Why is this bad?
A run is not tied to one process: after a restart or a deploy its replay may happen on another
worker, with other environment variables, another working directory, another host name.  A
workflow that branches on the environment can then take another path during replay than the one
its history records.  Configuration that matters to a run belongs in its arguments (so it is
recorded when the run starts), or in an activity (so the value read is recorded once).

## Example
```python
import os

from ostinato import workflow


@workflow.defn
async def nightly_report() -> None:
    if os.environ.get("REPORT_FORMAT") == "pdf":
        await workflow.execute_activity(render_pdf)
```

## Use instead
```python
from ostinato import workflow


@workflow.defn
async def nightly_report(report_format: str = "html") -> None:
    if report_format == "pdf":
        await workflow.execute_activity(render_pdf)
```
The caller reads the environment once and passes it in:
`await client.start_workflow(nightly_report, os.environ["REPORT_FORMAT"])`.
"""

from ._rule import Rule

RULE = Rule(
    code="OST106",
    name="environment",
    summary="Process environment read in workflow code",
    problem="reads the process environment, which can differ on replay",
    advice="pass it in as a workflow argument, or read it in an activity",
    doc=__doc__ or "",
    module=__name__,
)
