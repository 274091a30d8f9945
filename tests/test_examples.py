"""The example apps' workflows, tested with ostinato.testing: a virtual clock, mocks,
generated scenarios (Hypothesis) and replay of every history they produce."""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import ostinato
import pytest
from hypothesis import strategies as st
from ostinato.testing import (
    Fail,
    Timeout,
    WorkflowEnvironment,
    mock_activity,
    replay,
    replay_directory,
    save_history,
)
from ostinato.testing.strategies import ScenarioRun, activity_outcomes, explore, scenarios

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
START = datetime(2030, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


orders = load("orders")
subscription = load("subscription")


def shop_activities(shop: Any) -> list[Any]:
    return [shop.reserve, shop.release, shop.charge, shop.ship, shop.send_feedback_request]


def order(order_id: str, sku: str = "book", quantity: int = 1, cents: int = 2_500) -> Any:
    return orders.Order(order_id, "ada", sku, quantity, cents)


BIG = 250_000  # above the approval limit


# ---- orders -----------------------------------------------------------------------------------


async def test_small_order_retries_the_gateway_and_follows_up() -> None:
    shop = orders.Shop()
    async with WorkflowEnvironment(
        workflows=[orders.process_order], activities=shop_activities(shop), start_time=START
    ) as env:
        result = await env.execute_workflow(orders.process_order, order("o-1"), timeout=10)
    assert result == orders.OrderResult("o-1", "completed", "rcpt-o-1", "TRACK-O-1")
    assert shop.gateway_calls == 2  # the first call is dropped, the retry succeeds
    assert shop.stock["book"] == 9
    # back-off 0.05 s, then the one-second follow-up timer, all in virtual time
    assert env.now() == START + timedelta(seconds=1.05)


async def test_big_order_approved_half_an_hour_later() -> None:
    shop = orders.Shop()
    async with WorkflowEnvironment(
        workflows=[orders.process_order], activities=shop_activities(shop), start_time=START
    ) as env:
        handle = await env.client.start_workflow(
            orders.process_order, order("o-2", "lamp", 2, BIG), 2 * 86400.0
        )
        env.at(timedelta(minutes=30), handle.signal, "approval", True)
        await env.sleep(timedelta(minutes=29))
        assert await handle.get_vars() == {"waiting_for": "approval"}
        result = await handle.result(timeout=10)
        assert result.status == "completed" and shop.stock["lamp"] == 0
        replay(orders.process_order, await handle.history())


async def test_big_order_without_approval_is_rejected_and_stock_released() -> None:
    shop = orders.Shop()
    async with WorkflowEnvironment(
        workflows=[orders.process_order], activities=shop_activities(shop), start_time=START
    ) as env:
        result = await env.execute_workflow(
            orders.process_order, order("o-3", "lamp", 2, BIG), 2 * 86400.0, timeout=10
        )
        assert result == orders.OrderResult("o-3", "rejected")
        assert env.now() == START + 2 * DAY
    assert shop.stock["lamp"] == 2 and shop.gateway_calls == 0


async def test_out_of_stock_fails_without_retrying() -> None:
    shop = orders.Shop()
    async with WorkflowEnvironment(
        workflows=[orders.process_order], activities=shop_activities(shop), start_time=START
    ) as env:
        with pytest.raises(ostinato.WorkflowFailedError) as info:
            await env.execute_workflow(orders.process_order, order("o-4", "lamp", 3), timeout=10)
    assert isinstance(info.value.cause, ostinato.ActivityError)
    assert info.value.cause.attempt == 1


async def test_declined_card_with_a_mocked_gateway() -> None:
    shop = orders.Shop()
    charge = mock_activity(
        "charge", sequence=[Timeout(), Fail("card declined", type="Declined", non_retryable=True)]
    )
    activities = [shop.reserve, shop.release, charge, shop.ship, shop.send_feedback_request]
    async with WorkflowEnvironment(
        workflows=[orders.process_order], activities=activities, start_time=START
    ) as env:
        with pytest.raises(ostinato.WorkflowFailedError) as info:
            await env.execute_workflow(orders.process_order, order("o-5"), timeout=10)
    assert info.value.cause.cause.type == "Declined"  # type: ignore[union-attr]
    assert charge.call_args == [("o-5", 2_500), ("o-5", 2_500)]
    assert [c.attempt for c in charge.calls] == [1, 2]


def order_invariant(run: ScenarioRun) -> None:
    shop = run.activities[0].__self__
    approvals = [e for e in run.scenario.events if e.name == "approval"]
    charges = run.scenario.outcomes.get("charge", [])
    if run.error is not None:
        # Only the gateway can fail the order for good; the reserved lamps stay reserved.
        assert isinstance(run.error.cause, ostinato.ActivityError)
        assert run.calls("charge") in (len(charges), 5)
        assert shop.stock["lamp"] == 0
        return
    if run.result.status == "rejected":
        assert not approvals or approvals[0].value is False or approvals[0] in run.undelivered
        assert shop.stock["lamp"] == 2
    else:
        assert approvals and approvals[0].value is True
        assert run.result.receipt == "rcpt-o-9" and shop.stock["lamp"] == 0


def test_big_orders_under_generated_gateway_failures_and_approvals() -> None:
    explore(
        orders.process_order,
        order("o-9", "lamp", 2, BIG),
        3600.0,
        workflows=[orders.process_order],
        activities=lambda: shop_activities(orders.Shop()),
        scenarios=scenarios(
            {"charge": activity_outcomes(st.just("rcpt-o-9"), max_failures=5, succeed=None)},
            {"approval": st.booleans()},
            max_signals=2,
            within=timedelta(hours=2),
        ),
        invariant=order_invariant,
        max_examples=30,
    )


async def test_saved_order_histories_replay(tmp_path: Path) -> None:
    shop = orders.Shop()
    async with WorkflowEnvironment(
        workflows=[orders.process_order], activities=shop_activities(shop), start_time=START
    ) as env:
        for n, (sku, qty, cents) in enumerate([("book", 1, 100), ("lamp", 1, BIG)]):
            handle = await env.client.start_workflow(
                orders.process_order, order(f"h{n}", sku, qty, cents)
            )
            env.at(DAY / 2, handle.signal, "approval", n % 2 == 0)
            await handle.result(timeout=10)
            await save_history(handle, tmp_path / f"order-{n}.json")
    assert len(replay_directory([orders.process_order], tmp_path)) == 2


# ---- subscription -----------------------------------------------------------------------------


def sub(cycles: int, cycle: timedelta = timedelta(days=30)) -> Any:
    return subscription.Subscription("ada", cycles, cycle.total_seconds(), 999)


async def test_a_year_of_monthly_billing_takes_well_under_a_second() -> None:
    async with WorkflowEnvironment(
        workflows=[subscription.subscription],
        activities=[subscription.charge, subscription.send_email],
        start_time=START,
    ) as env:
        began = time.perf_counter()
        handle = await env.client.start_workflow(subscription.subscription, sub(12))
        receipts = await handle.result(timeout=20)
        elapsed = time.perf_counter() - began
        assert receipts == [f"receipt-ada-{i}" for i in range(1, 13)]
        assert await handle.get_vars() == {
            "status": "completed",
            "cycles_billed": 12,
            "total_cents": 12 * 999,
        }
        # The last charge may have been retried (the real provider fails 70% of the time).
        assert START + timedelta(days=360) <= env.now() < START + timedelta(days=360, hours=1)
        replay(subscription.subscription, await handle.history())
    assert elapsed < 1.0, f"12 x 30 days took {elapsed:.3f}s"


async def test_progress_month_by_month() -> None:
    charge = mock_activity(subscription.charge, side_effect=lambda c, n, a: f"r{n}")
    async with WorkflowEnvironment(
        workflows=[subscription.subscription],
        activities=[charge, subscription.send_email],
        start_time=START,
    ) as env:
        handle = await env.client.start_workflow(subscription.subscription, sub(6))
        await env.idle()
        assert await handle.get_vars() == {"status": "trial"}
        for month in range(1, 4):
            await env.sleep(timedelta(days=30))
            assert (await handle.get_vars())["cycles_billed"] == month
        assert charge.call_args == [("ada", n, 999) for n in (1, 2, 3)]
        assert await handle.result(timeout=10) == [f"r{n}" for n in range(1, 7)]
        assert env.now() == START + timedelta(days=180)


def test_subscription_bills_every_cycle_once_whatever_the_provider_does() -> None:
    def invariant(run: ScenarioRun) -> None:
        assert run.ok, run.error
        assert run.result == [f"receipt-ada-{i}" for i in range(1, 5)]
        completed = [e for e in run.history if e["kind"] == "activity_completed"]
        assert len(completed) == 4 + 2  # one per cycle, plus the two emails
        assert run.duration >= timedelta(days=4 * 7)

    failures = st.lists(st.sampled_from([Fail("provider down"), Timeout()]), max_size=8)
    explore(
        subscription.subscription,
        sub(4, timedelta(days=7)),
        activities=[subscription.charge, subscription.send_email],
        scenarios=scenarios({"charge": failures}),
        invariant=invariant,
        max_examples=15,
    )


# ---- nightly report (a schedule) ---------------------------------------------------------------

nightly = load("nightly_report")


async def test_nightly_report_fires_every_night_at_0230_paris_time() -> None:
    async with WorkflowEnvironment(
        workflows=[nightly.nightly_report],
        activities=[nightly.gather_figures, nightly.send_report],
        start_time=START,
    ) as env:
        schedule = await nightly.ensure_schedule(env.client, None)
        assert (await nightly.ensure_schedule(env.client, None)).id == schedule.id  # found again
        await env.sleep(7 * DAY)
        desc = await schedule.describe()
        assert desc.runs_started == 7
        # 02:30 in Paris is 01:30 UTC in March until the change to summer time on the 30th.
        assert [r.fire_time.strftime("%d %H:%M") for r in desc.recent_runs] == [
            f"{d:02d} 01:30" for d in range(2, 9)
        ]
        first = await env.client.get_handle(desc.recent_runs[0].instance_id).result()
        assert first == "report eu 2030-03-02: 112 orders, 3 refunds"


chat_hook = load("chat_webhook_hook")


async def test_the_chat_hook_posts_each_failed_order_once_through_an_outage() -> None:
    chat = await chat_hook.main(fail_next=2)
    [(key, message)] = chat.messages.items()
    assert key.startswith("order-o-2:") and key.endswith(":failed")
    assert message["text"].startswith(":warning: charge_order order-o-2 failed: ")
    assert "nothing to charge" in message["text"]
    assert chat.posts == 3  # two refused during the outage, then delivered


# ---- a payment queue with limits ---------------------------------------------------------------

payments = load("payments_queue")


async def test_payments_queue_never_overloads_the_provider(tmp_path: Path) -> None:
    payments.provider = payments.Provider()
    figures = await payments.main(f"sqlite:///{tmp_path / 'payments.db'}", 60, express=5)
    assert figures["charges"] == 65
    # The 5 express orders were started after the 60 others, all before the workers: oldest
    # first they would be charged last (positions 60 to 64); their priority puts them ahead.
    assert len(figures["express_positions"]) == 5
    assert max(figures["express_positions"]) < 20, figures
    # A sixth call at once would have failed a checkout (the stub answers 429).
    assert figures["most_in_flight"] == 5
    # 60 charges at 50 per second: more than a second, and never more than 50 in one (seen
    # by the provider a little after the claim: 50 ms of tolerance, docs/queues.md).
    assert figures["seconds"] >= 1.0
    assert payments.provider.most_calls_within(0.95) <= 50
