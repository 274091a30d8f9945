"""ostinato.testing.strategies: generated outcomes and schedules, explore(), run_scenario()."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ostinato import ActivityError, NonDeterminismError, RetryPolicy, activity, workflow
from ostinato.testing import Fail, Return, Timeout
from ostinato.testing.strategies import (
    Scenario,
    ScenarioRun,
    ScheduledEvent,
    activity_outcome,
    activity_outcomes,
    delays,
    explore,
    run_scenario,
    scenarios,
    signal_schedules,
)

RETRY = RetryPolicy(initial_interval=timedelta(minutes=1), max_attempts=3)


@activity.defn
async def charge(amount: int) -> str:
    return f"paid-{amount}"


@activity.defn
def refund(amount: int) -> str:
    return f"refunded-{amount}"


@workflow.defn
async def checkout(amount: int) -> str:
    """Charge; wait up to a day for "confirm"; refund unless confirmed."""
    try:
        receipt = await workflow.execute_activity(charge, amount, retry=RETRY)
    except ActivityError:
        return "charge failed"
    confirm = workflow.signal_channel("confirm", bool)
    try:
        confirmed = await confirm.receive(timeout=timedelta(days=1).total_seconds())
    except asyncio.TimeoutError:
        confirmed = False
    if not confirmed:
        await workflow.execute_activity(refund, amount, retry=RETRY)
        return "refunded"
    return receipt


_runs = [0]


@workflow.defn(name="flip")
async def flip() -> str:
    # A bug on purpose: the decision depends on state kept in the process, which differs
    # when the history is replayed.
    _runs[0] += 1
    if _runs[0] % 2:
        return await workflow.execute_activity(charge, 1)
    return await workflow.execute_activity(refund, 1)


# ---- the strategies ---------------------------------------------------------------------------


@given(delays(timedelta(hours=1), timedelta(days=2), resolution=timedelta(minutes=30)))
def test_delays_stay_in_range_and_on_the_grid(d: timedelta) -> None:
    assert timedelta(hours=1) <= d <= timedelta(days=2)
    assert d.total_seconds() % 1800 == 0


@given(activity_outcomes(st.integers(), max_failures=2))
def test_outcome_sequences_end_in_success(outcomes: list[object]) -> None:
    assert 1 <= len(outcomes) <= 3
    assert isinstance(outcomes[-1], Return) and isinstance(outcomes[-1].value, int)
    assert all(isinstance(o, (Fail, Timeout)) for o in outcomes[:-1])


@given(activity_outcomes(succeed=False, timeouts=False, max_latency=0.01))
def test_outcome_sequences_can_end_in_a_permanent_failure(outcomes: list[object]) -> None:
    last = outcomes[-1]
    assert isinstance(last, Fail) and last.non_retryable
    assert all(isinstance(o, Fail) and 0 <= o.latency <= 0.01 for o in outcomes)


@given(activity_outcome(st.just("ok"), non_retryable=True))
def test_single_outcomes(outcome: object) -> None:
    assert isinstance(outcome, (Return, Fail, Timeout))


@given(signal_schedules({"confirm": st.booleans(), "note": st.text()}, max_signals=4))
def test_signal_schedules_are_sorted(events: list[ScheduledEvent]) -> None:
    assert len(events) <= 4
    assert [e.delay for e in events] == sorted(e.delay for e in events)
    for event in events:
        assert event.kind == "signal" and event.name in ("confirm", "note")
        assert isinstance(event.value, bool if event.name == "confirm" else str)


@settings(max_examples=30)
@given(scenarios({"charge": activity_outcomes()}, {"confirm": st.booleans()}, cancel=True))
def test_scenarios(scenario: Scenario) -> None:
    assert set(scenario.outcomes) == {"charge"}
    assert sum(e.kind == "cancel" for e in scenario.events) <= 1
    assert list(scenario.events) == sorted(scenario.events, key=lambda e: e.delay)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        signal_schedules({})
    with pytest.raises(ValueError):
        delays(timedelta(days=2), timedelta(days=1)).example()


# ---- running scenarios ------------------------------------------------------------------------


def checkout_invariant(run: ScenarioRun) -> None:
    assert run.ok, run.error
    charges = run.scenario.outcomes["charge"]
    attempts = run.calls("charge")
    if run.result == "charge failed":
        last = charges[attempts - 1]
        assert attempts == RETRY.max_attempts or (isinstance(last, Fail) and last.non_retryable)
        return
    assert attempts == len(charges)  # every failure retried, then the success
    # The first "confirm" (signals wait in order even before anyone listens) decides, if it
    # came within the day the workflow waits.
    first = run.scenario.events[0] if run.scenario.events else None
    in_time = first is not None and first not in run.undelivered
    if in_time and first is not None and first.value is True:
        assert run.result == "paid-100"
        assert run.duration == first.delay or first.delay < timedelta(minutes=5)
    else:
        assert run.result == "refunded"
        assert timedelta(days=1) <= run.duration < timedelta(days=1, minutes=5) or in_time
    assert run.history[-1]["kind"] == "workflow_completed"


def test_explore_checkout_under_generated_scenarios() -> None:
    explore(
        checkout,
        100,
        scenarios=scenarios(
            {"charge": activity_outcomes(st.just("paid-100"), max_failures=3, succeed=None)},
            {"confirm": st.booleans()},
            max_signals=2,
            within=timedelta(days=2),
        ),
        activities=[charge, refund],
        invariant=checkout_invariant,
        max_examples=25,
    )


async def test_explore_works_from_an_async_test() -> None:
    explore(
        checkout,
        100,
        scenarios=scenarios({"charge": activity_outcomes(st.just("paid-100"))}),
        activities=[charge, refund],
        max_examples=5,
    )


async def test_run_scenario_reports_everything() -> None:
    scenario = Scenario(
        outcomes={"charge": [Fail(), Timeout(), Return("paid-7")]},
        events=[
            ScheduledEvent(timedelta(hours=3), "signal", "confirm", True),
            ScheduledEvent(timedelta(days=5), "signal", "confirm", False),
        ],
    )
    run = await run_scenario(scenario, checkout, 7, activities=[charge, refund])
    assert run.ok and run.result == "paid-7"
    assert run.duration == timedelta(hours=3)
    assert run.calls("charge") == 3 and [c.attempt for c in run.mocks["charge"].calls] == [1, 2, 3]
    assert run.undelivered == [scenario.events[1]]
    assert list(run.histories) == ["scenario"] and run.history == run.histories["scenario"]


async def test_run_scenario_cancel_and_fresh_activities() -> None:
    made: list[object] = []

    def fresh() -> list[object]:
        made.append(object())
        return [charge, refund]

    scenario = Scenario(events=[ScheduledEvent(timedelta(hours=1), "cancel")])
    run = await run_scenario(scenario, checkout, 5, activities=fresh)
    assert type(run.error).__name__ == "WorkflowCancelledError"
    assert len(made) == 1 and run.duration == timedelta(hours=1)


def test_explore_finds_nondeterminism() -> None:
    with pytest.raises(NonDeterminismError):
        explore(
            flip,
            scenarios=scenarios(),
            activities=[charge, refund],
            max_examples=30,
            start_time=0,
        )


def test_explore_reports_a_broken_invariant() -> None:
    def never_refunds(run: ScenarioRun) -> None:
        assert run.result != "refunded", "refunded"

    with pytest.raises(AssertionError, match="refunded"):
        explore(
            checkout,
            100,
            scenarios=scenarios({"charge": activity_outcomes(st.just("paid-100"))}),
            activities=[charge, refund],
            invariant=never_refunds,
            max_examples=10,
        )
