"""Hypothesis strategies for workflow tests, and a helper that explores a workflow under many
generated scenarios (activity outcomes, signal / cancel / terminate schedules), checks your
invariants, and replays every history produced to prove the code deterministic.

Needs ``hypothesis`` (``pip install hypothesis``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

try:
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ostinato.testing.strategies needs hypothesis: pip install hypothesis"
    ) from exc

from .._backends._contract import Backend
from .._definition import activity_name
from .._errors import WorkflowFailedError, WorkflowNotFoundError, WorkflowNotRunningError
from ._env import WorkflowEnvironment
from ._mocks import ActivityMock, Fail, Outcome, Return, Timeout, mock_activity
from ._replay import replay

__all__ = [
    "Scenario",
    "ScenarioRun",
    "ScheduledEvent",
    "activity_outcome",
    "activity_outcomes",
    "delays",
    "explore",
    "run_scenario",
    "scenarios",
    "signal_schedules",
]

T = TypeVar("T")
SearchStrategy = st.SearchStrategy

_DEFAULT_START = datetime(2030, 1, 1, tzinfo=timezone.utc)
_PERMANENT = Fail("generated permanent failure", type="GeneratedFailure", non_retryable=True)


# ---- plain strategies -------------------------------------------------------------------------


def delays(
    min_value: timedelta = timedelta(0),
    max_value: timedelta = timedelta(days=30),
    *,
    resolution: timedelta = timedelta(seconds=1),
) -> SearchStrategy[timedelta]:
    """Durations between ``min_value`` and ``max_value``, in steps of ``resolution``; they
    shrink towards ``min_value``."""
    step = resolution.total_seconds()
    if step <= 0:
        raise ValueError("resolution must be positive")
    low = int(min_value.total_seconds() // step)
    high = int(max_value.total_seconds() // step)
    if high < low:
        raise ValueError("max_value must not be below min_value")
    return st.integers(low, high).map(lambda n: timedelta(seconds=n * step))


def activity_outcome(
    results: SearchStrategy[Any] | None = None,
    *,
    failures: bool = True,
    timeouts: bool = True,
    non_retryable: bool = False,
) -> SearchStrategy[Outcome]:
    """One attempt's outcome: ``Return(value)`` (value from ``results``, default None),
    ``Fail(...)`` (retryable; non-retryable too with ``non_retryable=True``) or
    ``Timeout()``."""
    options: list[SearchStrategy[Outcome]] = [
        (results if results is not None else st.none()).map(Return)
    ]
    if failures:
        options.append(st.just(Fail("generated failure", type="GeneratedFailure")))
    if timeouts:
        options.append(st.just(Timeout()))
    if non_retryable:
        options.append(
            st.just(
                Fail("generated permanent failure", type="GeneratedFailure", non_retryable=True)
            )
        )
    return st.one_of(*options)


def activity_outcomes(
    results: SearchStrategy[Any] | None = None,
    *,
    max_failures: int = 3,
    timeouts: bool = True,
    succeed: bool | None = True,
    max_latency: float = 0.0,
) -> SearchStrategy[list[Outcome]]:
    """Outcomes of successive attempts: up to ``max_failures`` retryable failures and
    timeouts, then (``succeed=True``) a success, (``False``) a non-retryable failure, or
    (``None``) either. ``max_latency`` > 0 adds real delays (seconds) to each attempt, so
    concurrent activities finish in generated orders."""
    kinds: list[SearchStrategy[Outcome]] = [
        st.just(Fail("generated failure", type="GeneratedFailure"))
    ]
    if timeouts:
        kinds.append(st.just(Timeout()))
    success = (results if results is not None else st.none()).map(Return)
    permanent: SearchStrategy[Outcome] = st.just(_PERMANENT)
    last = {True: success, False: permanent, None: st.one_of(success, permanent)}[succeed]

    @st.composite
    def build(draw: st.DrawFn) -> list[Outcome]:
        outcomes = draw(st.lists(st.one_of(*kinds), max_size=max_failures))
        outcomes.append(draw(last))
        if max_latency > 0:
            outcomes = [
                _with_latency(o, draw(st.floats(0, max_latency, allow_nan=False))) for o in outcomes
            ]
        return outcomes

    return build()


def _with_latency(outcome: Outcome, latency: float) -> Outcome:
    if isinstance(outcome, Return):
        return Return(outcome.value, latency)
    if isinstance(outcome, Fail):
        return Fail(outcome.message, outcome.type, outcome.non_retryable, latency)
    return Timeout(latency)


@dataclass(frozen=True)
class ScheduledEvent:
    """Something done to the workflow from outside at ``delay`` after it started."""

    delay: timedelta
    kind: Literal["signal", "cancel", "terminate"]
    name: str = ""
    value: Any = None

    def __repr__(self) -> str:
        what = f"signal {self.name!r}={self.value!r}" if self.kind == "signal" else self.kind
        return f"<{what} at +{self.delay}>"


def signal_schedules(
    signals: Mapping[str, SearchStrategy[Any]],
    *,
    min_signals: int = 0,
    max_signals: int = 3,
    within: timedelta = timedelta(days=30),
    resolution: timedelta = timedelta(seconds=1),
) -> SearchStrategy[list[ScheduledEvent]]:
    """Lists of signals (name from ``signals``, value from its strategy) at delays up to
    ``within``, sorted by delay."""
    if not signals:
        raise ValueError("signal_schedules needs at least one signal name")
    names = sorted(signals)

    @st.composite
    def one(draw: st.DrawFn) -> ScheduledEvent:
        name = draw(st.sampled_from(names))
        return ScheduledEvent(
            draw(delays(max_value=within, resolution=resolution)),
            "signal",
            name,
            draw(signals[name]),
        )

    return st.lists(one(), min_size=min_signals, max_size=max_signals).map(
        lambda events: sorted(events, key=lambda e: e.delay)
    )


@dataclass(frozen=True)
class Scenario:
    """What happens around one run: per activity name, the outcomes of its attempts (in
    order, across all its calls; the real activity runs once they are used up), and events
    from outside at virtual times."""

    outcomes: Mapping[str, Sequence[Outcome]] = field(default_factory=dict)
    events: Sequence[ScheduledEvent] = ()


def scenarios(
    activities: Mapping[str, SearchStrategy[list[Outcome]]] | None = None,
    signals: Mapping[str, SearchStrategy[Any]] | None = None,
    *,
    max_signals: int = 3,
    within: timedelta = timedelta(days=30),
    cancel: bool = False,
    terminate: bool = False,
) -> SearchStrategy[Scenario]:
    """Scenarios: outcomes for the named activities (e.g. ``{"charge":
    activity_outcomes()}``), signals as ``signal_schedules``, and optionally a cancel or
    terminate at a generated time."""
    outcome_map = st.fixed_dictionaries(dict(activities or {}))
    signal_lists = (
        signal_schedules(signals, max_signals=max_signals, within=within)
        if signals
        else st.just([])
    )
    extra: list[SearchStrategy[ScheduledEvent | None]] = [st.none()]
    if cancel:
        extra.append(delays(max_value=within).map(lambda d: ScheduledEvent(d, "cancel")))
    if terminate:
        extra.append(delays(max_value=within).map(lambda d: ScheduledEvent(d, "terminate")))

    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        events = list(draw(signal_lists))
        stop = draw(st.one_of(*extra))
        if stop is not None:
            events.append(stop)
        return Scenario(draw(outcome_map), sorted(events, key=lambda e: e.delay))

    return build()


# ---- running scenarios ------------------------------------------------------------------------


@dataclass
class ScenarioRun:
    """The outcome of one scenario, handed to invariants."""

    scenario: Scenario
    result: Any = None
    error: BaseException | None = None
    # History of the run started, and of every run in the environment (children too).
    history: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mocks: dict[str, ActivityMock] = field(default_factory=dict)
    activities: list[Any] = field(default_factory=list)
    # Events not delivered because the run had finished before (or at) their time.
    undelivered: list[ScheduledEvent] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def duration(self) -> timedelta:
        """Virtual time from start to finish."""
        assert self.started_at is not None and self.finished_at is not None
        return self.finished_at - self.started_at

    def calls(self, activity: str) -> int:
        """Attempts made of a mocked activity."""
        mock = self.mocks.get(activity)
        return 0 if mock is None else mock.call_count


ActivitiesArg = Iterable[Any] | Callable[[], Iterable[Any]]


async def run_scenario(
    scenario: Scenario,
    workflow: Any,
    *args: Any,
    workflows: Iterable[Any] = (),
    activities: ActivitiesArg = (),
    invariant: Callable[[ScenarioRun], Any] | None = None,
    start_time: datetime | float = _DEFAULT_START,
    timeout: float = 30.0,
    backend: Backend | str | None = None,
) -> ScenarioRun:
    """Run ``workflow(*args)`` in a fresh ``WorkflowEnvironment`` under ``scenario``, replay
    every history it produced (``NonDeterminismError`` on a mismatch), then call
    ``invariant(run)`` (sync or async; raise or assert to fail).

    ``activities`` may be a zero-argument callable returning the list, to get fresh
    activity objects (and their state) for each scenario.
    """
    real = list(activities() if callable(activities) else activities)
    wf_list = list(workflows) or [workflow]
    if workflow not in wf_list:
        wf_list.append(workflow)
    mocks: dict[str, ActivityMock] = {}
    registered: list[Any] = []
    for act in real:
        name = activity_name(act)
        if name in scenario.outcomes:
            mocks[name] = mock_activity(act, sequence=scenario.outcomes[name], side_effect=act)
            registered.append(mocks[name])
        else:
            registered.append(act)
    for name, outcomes in scenario.outcomes.items():
        if name not in mocks:
            mocks[name] = mock_activity(name, sequence=outcomes)
            registered.append(mocks[name])
    run = ScenarioRun(scenario, mocks=mocks, activities=real)
    async with WorkflowEnvironment(
        workflows=wf_list, activities=registered, backend=backend, start_time=start_time
    ) as env:
        run.started_at = env.now()
        handle = await env.client.start_workflow(workflow, *args, id="scenario")
        calls = [
            (event, env.at(event.delay, _deliver, handle, event, run.undelivered))
            for event in scenario.events
        ]
        try:
            run.result = await handle.result(timeout=timeout)
        except WorkflowFailedError as exc:
            run.error = exc
        except TimeoutError:
            description = await handle.describe()
            raise AssertionError(
                f"the workflow did not finish within {timeout:g}s of real time under "
                f"{scenario!r}: {description}"
            ) from None
        run.finished_at = env.now()
        for event, call in calls:
            if call.cancel():  # not made: the run had finished before its time
                run.undelivered.append(event)
        run.undelivered.sort(key=lambda e: e.delay)
        cursor: str | None = None
        while True:
            page, cursor = await env.client.list_workflows(cursor=cursor)
            for description in page:
                events = await env.client.get_handle(description.instance_id).history()
                run.histories[description.instance_id] = events
            if cursor is None:
                break
        run.history = run.histories["scenario"]
        for instance_id, events in run.histories.items():
            try:
                replay(wf_list, events)
            except Exception as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(f"replaying the history of {instance_id!r} under {scenario!r}")
                raise
        if invariant is not None:
            checked = invariant(run)
            if inspect.isawaitable(checked):
                await checked
    return run


async def _deliver(handle: Any, event: ScheduledEvent, undelivered: list[ScheduledEvent]) -> None:
    try:
        if event.kind == "signal":
            await handle.signal(event.name, event.value)
        elif event.kind == "cancel":
            await handle.cancel()
        else:
            await handle.terminate("terminated by the scenario")
    except (WorkflowNotRunningError, WorkflowNotFoundError):
        undelivered.append(event)


def explore(
    workflow: Any,
    *args: Any,
    scenarios: SearchStrategy[Scenario],
    invariant: Callable[[ScenarioRun], Any] | None = None,
    workflows: Iterable[Any] = (),
    activities: ActivitiesArg = (),
    max_examples: int = 25,
    settings: hypothesis_settings | None = None,
    **options: Any,
) -> None:
    """Run ``workflow(*args)`` under ``max_examples`` generated scenarios with Hypothesis
    (which shrinks a failure to a minimal scenario): each one in a fresh environment, every
    history replayed, ``invariant`` checked. A plain function: call it from a test (sync or
    async). ``options`` go to ``run_scenario``."""
    wf_list = list(workflows)
    chosen = settings or hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        # No "explain" phase: it traces every line the engine runs for each example, which
        # turns a sub-second shrink into minutes.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )

    @chosen
    @given(scenario=scenarios)
    def check(scenario: Scenario) -> None:
        _run_sync(
            lambda: run_scenario(
                scenario,
                workflow,
                *args,
                workflows=wf_list,
                activities=activities,
                invariant=invariant,
                **options,
            )
        )

    check()


def _run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ostinato-explore") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
