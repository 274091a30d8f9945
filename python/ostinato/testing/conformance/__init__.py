"""The backend conformance suite: the tests every storage backend passes (ours run it against
memory, SQLite and PostgreSQL), shipped so that a backend of your own can run it too.

Subclass ``BackendConformance`` in a test module of yours (the class name must start with
``Test`` so pytest collects it) and give it a ``make_backend`` fixture that returns a
function building a new, unopened backend on an empty store, reading time from the clock it
is given::

    import pytest
    from ostinato.testing.conformance import BackendConformance

    from mypackage import MyBackend


    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def make_backend(self, tmp_path):
            return lambda clock: MyBackend(tmp_path / "store", clock=clock)

Run it with ``pytest``: no plugin is needed (the tests are ``async`` and run each on a fresh
event loop of their own). Time comes from a ``FakeClock`` that moves only when a test says
so, so your backend must read time only from its ``clock``. A backend that does not
implement ``ostinato.backends.TimeSkipping`` skips the one test of it.

The test groups are also importable alone (``RunTests``, ``WorkflowTaskTests``,
``ActivityTaskTests``, ``WakeUpTests``, ``ScheduleTests``, ``HookTests``, ``SearchTests``,
``PauseTests``, ``QueueLimitTests``, ``PriorityTests``, ``RetentionTests``,
``EagerDispatchTests``), as are the
building blocks in ``_support`` re-exported here (``FakeClock``, ``start``, ``claim_one``,
``full_commit`` ...) for tests of your own.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ._activity_tasks import ActivityTaskTests
from ._eager import EagerDispatchTests
from ._hooks import HookTests
from ._pausing import PauseTests
from ._priority import PriorityTests
from ._queue_limits import QueueLimitTests
from ._retention import RetentionTests
from ._runs import RunTests
from ._schedules import ScheduleTests
from ._search import SearchTests
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    activity,
    batch,
    child_run,
    claim_for,
    claim_one,
    ev,
    full_commit,
    inbox_kinds,
    kinds,
    new_run,
    opened,
    run_to_close,
    schedule_activity,
    seqs,
    signal_event,
    start,
    started_event,
)
from ._wakeups import WakeUpTests
from ._workflow_tasks import WorkflowTaskTests

__all__ = [
    "T0",
    "TEST_TIMEOUT",
    "ActivityTaskTests",
    "BackendConformance",
    "BackendFactory",
    "EagerDispatchTests",
    "FakeClock",
    "HookTests",
    "PauseTests",
    "PriorityTests",
    "QueueLimitTests",
    "RetentionTests",
    "RunTests",
    "ScheduleTests",
    "SearchTests",
    "WakeUpTests",
    "WorkflowTaskTests",
    "activity",
    "batch",
    "child_run",
    "claim_for",
    "claim_one",
    "ev",
    "full_commit",
    "inbox_kinds",
    "kinds",
    "new_run",
    "opened",
    "run_to_close",
    "schedule_activity",
    "seqs",
    "signal_event",
    "start",
    "started_event",
]

# Seconds one test may take before it fails (a backend that hangs must not hang the run).
TEST_TIMEOUT = 120.0

_AsyncTest = Callable[..., Coroutine[Any, Any, None]]


def _run_on_own_loop(test: _AsyncTest) -> Callable[..., None]:
    """A synchronous test running ``test`` on a fresh event loop: pytest runs it without an
    async plugin, and pytest-asyncio or anyio, if installed, leave it alone. pytest reads the
    fixtures it needs from the wrapped signature."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), timeout=TEST_TIMEOUT))

    return run


class BackendConformance(
    RunTests,
    WorkflowTaskTests,
    ActivityTaskTests,
    WakeUpTests,
    ScheduleTests,
    HookTests,
    SearchTests,
    PauseTests,
    QueueLimitTests,
    PriorityTests,
    RetentionTests,
    EagerDispatchTests,
):
    """Every conformance test; subclass it as ``Test...`` with a ``make_backend`` fixture."""

    @pytest.fixture
    def make_backend(self) -> BackendFactory:
        """Override: return ``clock -> Backend`` (new, unopened, on an empty store)."""
        pytest.fail(
            f"{type(self).__name__} needs a make_backend fixture returning a function that "
            "builds a new, unopened backend on an empty store from a clock: see "
            "ostinato.testing.conformance"
        )

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()


for _name, _test in inspect.getmembers(BackendConformance, inspect.iscoroutinefunction):
    if _name.startswith("test_"):
        setattr(BackendConformance, _name, _run_on_own_loop(_test))
