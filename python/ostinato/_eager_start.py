"""Eager start: a workflow started in a process whose running worker serves it gets its first
workflow task leased to that worker in the start's own transaction, and handed to it
directly: no claim, no wake-up (docs/start-options.md, "Eager start").

The guarantees are those of any claimed task: the task is leased, so if the worker dies
before committing it, the lease expires and another worker takes the run over; if the worker
cannot take it after all (it began to shut down meanwhile), the lease is released at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from ._backends._contract import Backend
from ._backends._types import NewRun, WorkflowTask

log = logging.getLogger("ostinato.worker")


class EagerWorker(Protocol):
    """What a running ``Worker`` offers to starts made in its process."""

    backend: Backend
    workflow_lease: float

    def takes_start(self, workflow_name: str, queue: str) -> bool:
        """Whether it would run a new run's first task now (it serves the queue, knows the
        workflow, runs in this event loop and has a free workflow task slot)."""
        ...

    def accept_start(self, task: WorkflowTask) -> bool:
        """Run ``task`` (already leased); False if it cannot any more."""
        ...


_running: list[EagerWorker] = []


def register(worker: EagerWorker) -> None:
    _running.append(worker)


def unregister(worker: EagerWorker) -> None:
    with contextlib.suppress(ValueError):
        _running.remove(worker)


def find(backend: Backend, workflow_name: str, queue: str) -> EagerWorker | None:
    """A running worker of this process, on this very backend object, that takes a new run
    of ``workflow_name`` on ``queue`` now."""
    for worker in _running:
        if worker.backend is backend and worker.takes_start(workflow_name, queue):
            return worker
    return None


async def start(worker: EagerWorker, run: NewRun) -> None:
    """Create ``run`` with its first task leased and hand that task to ``worker``."""
    backend = worker.backend
    task = await backend.create_run_leased(run, worker.workflow_lease)
    if task is None or worker.accept_start(task):
        return
    try:  # the worker is going away: any other worker may take the run at once
        await asyncio.shield(backend.release_workflow_task(task))
    except Exception as exc:
        log.warning(
            "could not release the first task of workflow %s (%s); another worker takes "
            "it when its lease expires",
            run.instance_id,
            exc,
        )
