"""Workflows the UI tests run: one of each thing a run page shows."""

from __future__ import annotations

from datetime import timedelta

from ostinato import ApplicationError, RetryPolicy, activity, workflow

FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=10), max_attempts=5)


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@activity.defn
async def flaky(key: str) -> str:
    """Fails twice, then succeeds: the timeline shows three attempts."""
    attempt = activity.info().attempt
    if attempt < 3:
        raise ConnectionError(f"card service unreachable (attempt {attempt} for {key})")
    return "charged"


@activity.defn
async def refuse(order: str) -> None:
    raise ApplicationError(f"card declined for {order}", non_retryable=True)


@workflow.defn
async def order(name: str) -> str:
    greeting = await workflow.execute_activity(greet, name)
    charge = await workflow.execute_activity(flaky, name, retry=FAST_RETRY)
    await workflow.sleep(0.01)
    workflow.set_var("stage", "done")
    return f"{greeting}, {charge}"


@workflow.defn
async def approval(request: str) -> str:
    """Waits for an "approve" signal: stays open for the live and action tests."""
    workflow.set_var("waiting_for", "approve")
    decision = await workflow.signal_channel("approve").receive()
    return f"{request}: {decision}"


@workflow.defn
async def doomed(order_id: str) -> None:
    await workflow.execute_activity(refuse, order_id)


@workflow.defn
async def family(name: str) -> list[str]:
    first = await workflow.execute_child(order, f"{name}-a", id=f"{name}-child-a")
    second = await workflow.execute_child(order, f"{name}-b", id=f"{name}-child-b")
    return [first, second]


@activity.defn
async def unreachable(host: str) -> None:
    raise ConnectionError(f"{host} did not answer")


@workflow.defn
async def patient(host: str) -> None:
    """Waits on a timer and on an activity retrying for an hour: pending work to show."""
    slow = RetryPolicy(initial_interval=timedelta(hours=1), max_attempts=3)
    call = workflow.start_activity(unreachable, host, retry=slow)
    await workflow.sleep(timedelta(hours=2))
    await call


@workflow.defn
async def counter(n: int) -> int:
    """Continues as new once: a chain of two runs."""
    if n < 1:
        workflow.continue_as_new(n + 1)
    return n


@workflow.defn
async def looper(n: int, until: int) -> int:
    """Continues as new until ``n`` reaches ``until``: a chain of ``until + 1`` runs."""
    if n < until:
        workflow.continue_as_new(n + 1, until)
    return n


WORKFLOWS = [order, approval, doomed, family, patient, counter, looper]
ACTIVITIES = [greet, flaky, refuse, unreachable]
