"""``_commit.build_commit``: from a run's step output to the backend's commit, without a backend.

Each test drives a real ``WorkflowRun`` (the reducer and the deterministic loop) with inbox
events by hand, as a worker would, and checks the commit it would hand to a backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from ostinato import (
    ApplicationError,
    EngineBugError,
    HistoryCorruptError,
    _core,
    _definition,
    _events,
    activity,
    workflow,
)
from ostinato._commit import build_commit
from ostinato._payloads import default_converter
from ostinato._run import WorkflowRun
from ostinato.backends import RunStatus, WorkflowCommit

RUN_ID = "a" * 32
T0 = 1_700_000_000.0


@activity.defn
async def charge(amount: int) -> str:
    return f"receipt-{amount}"


@workflow.defn
async def child_wf() -> None:
    await workflow.sleep(10)


@workflow.defn
async def busy() -> str:
    receipt = workflow.start_activity(charge, 5, queue="payments", schedule_to_close_timeout=60)
    workflow.start_child(child_wf, id="kid", execution_timeout=30)
    await workflow.sleep(5)
    return await receipt


@workflow.defn
async def raises_timeout_typed_error() -> None:
    raise ApplicationError("not a real timeout", type="WorkflowTimedOutError")


@workflow.defn
async def waits_forever() -> None:
    await workflow.wait_condition(lambda: False)


@workflow.defn
async def continues(n: int) -> None:
    workflow.continue_as_new(n + 1)


@workflow.defn
async def prioritised() -> None:
    workflow.start_activity(charge, 1)
    workflow.start_activity(charge, 2, priority=9)
    workflow.start_child(child_wf, id="kid", priority=4)
    await workflow.sleep(5)


_runs: list[WorkflowRun] = []


@pytest.fixture(autouse=True)
def _dispose_runs() -> Iterator[None]:
    yield
    while _runs:
        _runs.pop().dispose()


def new_run(fn: Callable[..., Any]) -> WorkflowRun:
    definition = _definition.workflow_definition(fn)
    run = WorkflowRun(
        definition=definition,
        workflow_name=definition.name,
        instance_id="wf-1",
        run_id=RUN_ID,
        queue="default",
        converter=default_converter(),
        deadlock_timeout=None,
    )
    _runs.append(run)
    return run


def step(run: WorkflowRun, now: float, *events: bytes, sticky: str | None = None) -> WorkflowCommit:
    run.step(int(now * 1_000_000), list(events))
    ids = itertools.count(1)
    return build_commit(
        run.take_output(),
        consumed_inbox=list(range(len(events))),
        now=now,
        sticky_worker=sticky,
        new_run_id=lambda: f"run-{next(ids)}",
    )


def started(fn: Callable[..., Any], args: bytes = b"[]", deadline: float | None = None) -> bytes:
    return _events.workflow_started(
        _definition.workflow_definition(fn).name,
        args,
        instance_id="wf-1",
        run_id=RUN_ID,
        queue="default",
        start_time=T0,
        execution_deadline=deadline,
    )


def kinds(commit: WorkflowCommit) -> list[str]:
    return [orjson.loads(e)["kind"] for e in commit.new_events]


def test_commands_become_activity_tasks_timers_and_children() -> None:
    run = new_run(busy)
    commit = step(run, T0, started(busy), sticky="worker-a")
    assert commit.consumed_inbox == [0]
    assert commit.sticky_worker == "worker-a"
    assert commit.close is None
    [act] = commit.activities
    assert (act.name, act.queue, act.deadline) == ("charge", "payments", T0 + 60)
    assert orjson.loads(act.input) == [5]
    [timer] = commit.timers
    assert timer.fire_at == T0 + 5
    assert orjson.loads(timer.event) == {"kind": "timer_fired", "id": timer.timer_id}
    [kid] = commit.children
    assert (kid.instance_id, kid.run_id, kid.queue) == ("kid", "run-1", "default")
    assert kid.execution_deadline == T0 + 30
    assert kid.parent is not None and kid.parent.instance_id == "wf-1"
    info = orjson.loads(kid.started_event)["info"]
    assert info["parent_instance_id"] == "wf-1"
    assert info["execution_deadline"] == T0 + 30
    assert kinds(commit)[0] == "task_started"

    # The timer fires, then the activity completes: the run closes with its result.
    assert step(run, T0 + 5, _events.timer_fired(timer.timer_id)).close is None
    done = step(run, T0 + 6, _events.activity_completed(act.activity_id, b'"receipt-5"', 1))
    assert done.close is not None
    assert done.close.status == RunStatus.COMPLETED
    assert done.close.result == b'"receipt-5"'
    assert kinds(done)[-1] == "workflow_completed"


def test_a_failure_typed_like_a_timeout_is_a_failure() -> None:
    run = new_run(raises_timeout_typed_error)
    commit = step(run, T0, started(raises_timeout_typed_error))
    assert commit.close is not None
    assert commit.close.status == RunStatus.FAILED


def test_only_the_execution_deadline_times_a_run_out() -> None:
    run = new_run(waits_forever)
    assert step(run, T0, started(waits_forever, deadline=T0 + 1)).close is None
    commit = step(run, T0 + 1, orjson.dumps({"kind": "timed_out"}))
    assert commit.close is not None
    assert commit.close.status == RunStatus.TIMED_OUT


def test_continue_as_new_starts_the_next_run_with_the_deadline() -> None:
    run = new_run(continues)
    commit = step(run, T0, started(continues, b"[1]", deadline=T0 + 100))
    assert commit.close is not None
    assert commit.close.status == RunStatus.CONTINUED_AS_NEW
    nxt = commit.close.next_run
    assert nxt is not None
    assert (nxt.instance_id, nxt.run_id, nxt.execution_deadline) == ("wf-1", "run-1", T0 + 100)
    event = orjson.loads(nxt.started_event)
    assert event["input"] == [2]
    assert event["info"]["continued_from_run_id"] == RUN_ID


def test_a_failed_task_is_numbered_by_the_reducer_after_the_history() -> None:
    # The history a run wrote: one workflow task (task_started, workflow_started,
    # a condition that never holds: no command).
    history = step(new_run(waits_forever), T0, started(waits_forever)).new_events
    assert len(history) == 2
    failure = orjson.dumps({"type": "NonDeterminismError", "message": "no"})
    run = new_run(waits_forever)
    run.fail_task(history, int(T0 * 1_000_000), [_events.signal_received("go", b"1")], failure)
    commit = build_commit(run.take_output(), consumed_inbox=[7], now=T0, sticky_worker=None)
    events = [orjson.loads(e) for e in commit.new_events]
    assert [(e["seq"], e["kind"]) for e in events] == [
        (3, "task_started"),
        (4, "signal_received"),
        (5, "workflow_failed"),
    ]
    assert events[0]["time"] == int(T0 * 1_000_000)
    assert events[1]["payload"] == 1
    assert commit.consumed_inbox == [7]
    assert commit.close is not None
    assert commit.close.status == RunStatus.FAILED
    assert commit.close.result == failure
    # What it wrote is a valid history: the core loads it (and would refuse to fail it again).
    reducer = _core.Reducer()
    reducer.load_history(history + commit.new_events)
    with pytest.raises(_core.EngineBugError, match="already closes it"):
        reducer.fail_task(0, [], b"{}")


def test_a_failed_task_is_refused_for_a_closed_run() -> None:
    run = new_run(raises_timeout_typed_error)
    history = step(run, T0, started(raises_timeout_typed_error)).new_events
    with pytest.raises(EngineBugError, match="already closes it"):
        new_run(waits_forever).fail_task(history, 0, [], b"{}")


def test_core_errors_become_ostinato_errors_in_the_run() -> None:
    run = new_run(waits_forever)
    step(run, T0, started(waits_forever))
    with pytest.raises(EngineBugError, match="engine bug in workflow 'waits_forever'"):
        run._reducer_call(run.reducer.finish_activation)  # no activation is open
    corrupt = new_run(waits_forever)
    with pytest.raises(HistoryCorruptError, match="corrupt at event #1") as info:
        corrupt.replay([b"not json"])
    assert (info.value.seq, info.value.instance_id) == (1, "wf-1")


def test_priorities_reach_the_activity_tasks_and_children_absent_is_0() -> None:
    run = new_run(prioritised)
    commit = step(run, T0, started(prioritised))
    plain, urgent = commit.activities
    assert (plain.priority, urgent.priority) == (0, 9)
    # In the history's activity_scheduled options only when given (older histories: none).
    assert "priority" not in orjson.loads(plain.options)
    assert orjson.loads(urgent.options)["priority"] == 9
    [kid] = commit.children
    assert kid.priority == 4
