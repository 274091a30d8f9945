"""Building blocks for backend tests: those of the conformance suite, and ``open_backend``
for a backend URL of tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ostinato._connect import connect
from ostinato.backends import Backend
from ostinato.testing.conformance import (
    T0,
    FakeClock,
    batch,
    child_run,
    claim_for,
    claim_one,
    ev,
    full_commit,
    inbox_kinds,
    kinds,
    new_run,
    run_to_close,
    seqs,
    signal_event,
    start,
    started_event,
)

__all__ = [
    "T0",
    "FakeClock",
    "batch",
    "child_run",
    "claim_for",
    "claim_one",
    "ev",
    "full_commit",
    "inbox_kinds",
    "kinds",
    "new_run",
    "open_backend",
    "run_to_close",
    "seqs",
    "signal_event",
    "start",
    "started_event",
]


@asynccontextmanager
async def open_backend(url: str, clock: Any) -> AsyncIterator[Backend]:
    backend = connect(url, clock=clock)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
