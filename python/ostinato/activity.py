"""The API available inside activity code.

Activities are where side effects belong: I/O, clocks, randomness. They may run more than
once (retries, a worker killed mid-attempt), so make them idempotent.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._definition import activity_defn

__all__ = ["ActivityInfo", "defn", "heartbeat", "info", "is_cancelled", "logger"]

defn = activity_defn

logger = logging.getLogger("ostinato.activity")
"""The activities' logger: its records carry the attempt's ids (``ostinato_instance_id``,
``ostinato_activity_name`` ..., see docs/logging.md)."""


@dataclass(frozen=True, slots=True)
class ActivityInfo:
    """What an activity attempt knows about itself (``activity.info()``)."""

    activity_id: int
    activity_name: str
    instance_id: str
    run_id: str
    workflow_name: str | None
    queue: str
    attempt: int  # starts at 1
    scheduled_time: datetime
    started_time: datetime
    deadline: datetime | None  # when this attempt times out (start-to-close / schedule-to-close)
    heartbeat_timeout: float | None
    heartbeat_details: Any


class _ActivityContext:
    __slots__ = ("_cancelled", "_heartbeat", "info")

    def __init__(self, info: ActivityInfo, heartbeat: Callable[[Any], None]) -> None:
        self.info = info
        self._heartbeat = heartbeat
        self._cancelled = threading.Event()


_context: contextvars.ContextVar[_ActivityContext] = contextvars.ContextVar("ostinato_activity")


def _current(api: str) -> _ActivityContext:
    try:
        return _context.get()
    except LookupError:
        raise RuntimeError(
            f"activity.{api}() can only be called from activity code run by a worker"
        ) from None


def info() -> ActivityInfo:
    return _current("info").info


def heartbeat(details: Any = None) -> None:
    """Tell the engine this attempt is alive (needed with ``heartbeat_timeout``) and record
    ``details`` (JSON), which the next attempt sees in ``info().heartbeat_details``.

    ``heartbeat()`` without details keeps the last ones. Details that cannot be written as JSON
    raise ``PayloadError`` here."""
    _current("heartbeat")._heartbeat(details)


def is_cancelled() -> bool:
    """True once the workflow cancelled this activity (learned through heartbeats)."""
    return _current("is_cancelled")._cancelled.is_set()
