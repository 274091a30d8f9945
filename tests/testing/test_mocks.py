"""Mocks: activities and child workflows replaced under their registered names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import ostinato
import pytest
from ostinato import ActivityError, ApplicationError, RetryPolicy, activity, workflow
from ostinato.testing import (
    Fail,
    Return,
    Timeout,
    WorkflowEnvironment,
    mock_activity,
    mock_workflow,
    replay,
)

START = datetime(2030, 1, 1, tzinfo=timezone.utc)
FAST = RetryPolicy(initial_interval=1, max_attempts=4)


@dataclass
class Charge:
    order_id: str
    cents: int


@dataclass
class Receipt:
    charge: Charge
    number: str


@activity.defn(name="charge")
async def charge(c: Charge) -> Receipt:
    raise AssertionError("the real charge must not run in these tests")


class Gateway:
    def __init__(self) -> None:
        self.calls = 0

    @activity.defn(name="gateway.refund")
    async def refund(self, order_id: str) -> str:
        self.calls += 1
        return f"refund-{order_id}"


@workflow.defn
async def pay(order_id: str, cents: int) -> Receipt:
    return await workflow.execute_activity(charge, Charge(order_id, cents), retry=FAST)


@workflow.defn
async def pay_twice() -> list[str]:
    a = await workflow.execute_activity(charge, Charge("a", 1), retry=FAST)
    b = await workflow.execute_activity(charge, Charge("b", 2), retry=FAST)
    return [a.number, b.number]


@workflow.defn
async def refund(order_id: str) -> str:
    return await workflow.execute_activity(Gateway.refund, order_id)


@workflow.defn(name="shipping.ship")
async def ship(order_id: str, express: bool) -> str:
    raise AssertionError("the real child must not run in these tests")


@workflow.defn
async def order(order_id: str) -> str:
    tracking = await workflow.execute_child(ship, order_id, True, id=f"ship-{order_id}")
    return f"{order_id}:{tracking}"


async def run(
    workflows: list[object], activities: list[object], wf: object, *args: object
) -> object:
    async with WorkflowEnvironment(
        workflows=workflows,  # type: ignore[arg-type]
        activities=activities,
        start_time=START,
    ) as env:
        handle = await env.client.start_workflow(wf, *args)  # type: ignore[call-overload]
        try:
            return await handle.result(timeout=10)
        finally:
            replay(workflows, await handle.history())  # type: ignore[arg-type]


# ---- activities -------------------------------------------------------------------------------


async def test_replace_by_registering_another_function_under_the_name() -> None:
    @activity.defn(name="charge")
    async def fake_charge(c: Charge) -> Receipt:
        return Receipt(c, f"fake-{c.order_id}")

    result = await run([pay], [fake_charge], pay, "o-1", 500)
    assert result == Receipt(Charge("o-1", 500), "fake-o-1")


async def test_fixed_result_and_recorded_calls_with_typed_arguments() -> None:
    mock = mock_activity(charge, returns=Receipt(Charge("x", 0), "r-1"))
    result = await run([pay], [mock], pay, "o-1", 500)
    assert result == Receipt(Charge("x", 0), "r-1")
    assert mock.name == "charge" and mock.call_count == 1
    assert mock.call_args == [(Charge("o-1", 500),)]  # decoded by the real annotations
    assert mock.calls[0].attempt == 1
    assert mock.calls[0].info.instance_id


async def test_sequence_of_results_and_exceptions_drives_retries() -> None:
    mock = mock_activity(
        "charge",
        sequence=[
            ConnectionError("down"),
            Timeout(),
            Fail("declined", type="Declined"),
            {"charge": {"order_id": "a", "cents": 1}, "number": "n-1"},
            Return({"charge": {"order_id": "b", "cents": 2}, "number": "n-2"}),
        ],
    )
    assert await run([pay_twice], [mock], pay_twice) == ["n-1", "n-2"]
    assert [c.attempt for c in mock.calls] == [1, 2, 3, 4, 1]
    # A mock made from a name does not know the annotations: arguments stay plain JSON.
    assert [c.args[0]["order_id"] for c in mock.calls] == ["a", "a", "a", "a", "b"]


async def test_non_retryable_failure_and_raises() -> None:
    mock = mock_activity(charge, sequence=[Fail("card stolen", non_retryable=True)])
    with pytest.raises(ostinato.WorkflowFailedError) as info:
        await run([pay], [mock], pay, "o-1", 1)
    assert isinstance(info.value.cause, ActivityError)
    assert info.value.cause.cause.type == "MockFailure"  # type: ignore[union-attr]
    assert mock.call_count == 1

    always = mock_activity(charge, raises=ApplicationError("nope", type="Nope"))
    with pytest.raises(ostinato.WorkflowFailedError) as info:
        await run([pay], [always], pay, "o-1", 1)
    assert always.call_count == FAST.max_attempts
    assert info.value.cause.retry_state == "maximum_attempts_reached"  # type: ignore[union-attr]


async def test_timeouts_exhaust_the_retries_as_timeout_errors() -> None:
    mock = mock_activity(charge, sequence=[Timeout()] * 4)
    with pytest.raises(ostinato.WorkflowFailedError) as info:
        await run([pay], [mock], pay, "o-1", 1)
    assert info.value.cause.cause.type == "TimeoutError"  # type: ignore[union-attr]


async def test_an_exhausted_sequence_fails_for_good_unless_a_side_effect_takes_over() -> None:
    mock = mock_activity(
        charge, sequence=[{"charge": {"order_id": "a", "cents": 1}, "number": "1"}]
    )
    with pytest.raises(ostinato.WorkflowFailedError) as info:
        await run([pay_twice], [mock], pay_twice)
    assert info.value.cause.cause.type == "MockExhaustedError"  # type: ignore[union-attr]
    assert mock.call_count == 2

    def rest(c: Charge) -> Receipt:
        return Receipt(c, f"late-{c.order_id}")

    mock = mock_activity(charge, sequence=[RuntimeError("first")], side_effect=rest)
    assert await run([pay_twice], [mock], pay_twice) == ["late-a", "late-b"]


async def test_side_effect_spies_on_the_real_method() -> None:
    gateway = Gateway()
    spy = mock_activity(gateway.refund, side_effect=gateway.refund)
    assert spy.name == "gateway.refund"
    assert await run([refund], [spy], refund, "o-9") == "refund-o-9"
    assert gateway.calls == 1 and spy.call_args == [("o-9",)]


async def test_mock_named_after_an_unbound_method() -> None:
    mock = mock_activity(Gateway.refund, returns="mocked")
    assert await run([refund], [mock], refund, "o-9") == "mocked"
    assert mock.call_args == [("o-9",)]


def test_conflicting_options_are_refused() -> None:
    with pytest.raises(ValueError, match="at most one"):
        mock_activity(charge, returns=1, raises=ValueError())


# ---- child workflows --------------------------------------------------------------------------


async def test_child_workflow_mocked_by_registering_its_name() -> None:
    @workflow.defn(name="shipping.ship")
    async def fake_ship(order_id: str, express: bool) -> str:
        return f"T-{order_id}-{'x' if express else 's'}"

    assert await run([order, fake_ship], [], order, "o-1") == "o-1:T-o-1-x"


async def test_mock_workflow_fixed_result_records_calls_once() -> None:
    mock = mock_workflow(ship, returns="TRACK")
    assert await run([order, mock], [], order, "o-1") == "o-1:TRACK"
    assert mock.call_args == [("o-1", True)]


async def test_mock_workflow_side_effect_and_raises() -> None:
    mock = mock_workflow(ship, side_effect=lambda order_id, express: order_id.upper())
    assert await run([order, mock], [], order, "o-1") == "o-1:O-1"

    failing = mock_workflow("shipping.ship", raises=ApplicationError("no carrier"))
    with pytest.raises(ostinato.WorkflowFailedError) as info:
        await run([order, failing], [], order, "o-1")
    assert isinstance(info.value.cause, ostinato.ChildWorkflowError)
    assert failing.call_count == 1
