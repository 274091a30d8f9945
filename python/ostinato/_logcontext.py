"""Which run a log record is about, for every record logged while a worker handles a task.

The worker binds the task's ids (``bind``) for as long as it handles a workflow task or an
activity attempt. Everything logged meanwhile in that asyncio task (the engine, workflow code,
activity code, a sync activity's thread: each inherits the context) can be stamped with them
by ``LogContextFilter``: the ``ostinato.*`` loggers carry the filter, and users add it to their
handler to stamp their own loggers' records too. A JSON formatter then shows them.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["FIELDS", "LogContextFilter", "bind", "install"]

# The record attributes, set together (None when they do not apply).
FIELDS = (
    "ostinato_instance_id",
    "ostinato_run_id",
    "ostinato_workflow_name",
    "ostinato_activity_name",
    "ostinato_activity_id",
    "ostinato_attempt",
)


@dataclass(frozen=True, slots=True)
class _Task:
    instance_id: str
    run_id: str
    workflow_name: str | None
    activity_name: str | None = None
    activity_id: int | None = None
    attempt: int | None = None


_bound: contextvars.ContextVar[_Task | None] = contextvars.ContextVar(
    "ostinato_log_context", default=None
)


@contextmanager
def bind(
    instance_id: str,
    run_id: str,
    workflow_name: str | None,
    activity_name: str | None = None,
    activity_id: int | None = None,
    attempt: int | None = None,
) -> Iterator[None]:
    token = _bound.set(
        _Task(instance_id, run_id, workflow_name, activity_name, activity_id, attempt)
    )
    try:
        yield
    finally:
        _bound.reset(token)


class LogContextFilter(logging.Filter):
    """Stamps a record logged while a worker handles a task with the task's ids:
    ``ostinato_instance_id``, ``ostinato_run_id``, ``ostinato_workflow_name``,
    ``ostinato_activity_name``, ``ostinato_activity_id`` and ``ostinato_attempt`` (the
    activity ones None in a workflow task). Ids passed in ``extra=`` are kept. Records
    logged outside a task pass unchanged. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = _bound.get()
        if task is not None and not hasattr(record, "ostinato_instance_id"):
            record.ostinato_instance_id = task.instance_id
            record.ostinato_run_id = task.run_id
            record.ostinato_workflow_name = task.workflow_name
            record.ostinato_activity_name = task.activity_name
            record.ostinato_activity_id = task.activity_id
            record.ostinato_attempt = task.attempt
        return True


_FILTER = LogContextFilter()


def install(*loggers: str) -> None:
    """Stamp the records of the named ``ostinato.*`` loggers (a logger's filters see only
    the records logged on it, so each is named)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
