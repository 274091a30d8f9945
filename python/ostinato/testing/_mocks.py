"""Stand-ins for activities and child workflows, registered under the real names.

Any function registered under an activity's name replaces it (``@activity.defn(name=
"charge")``); these helpers build such functions for the common cases and record how they
were called.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .. import activity as _activity
from .._definition import (
    _ACTIVITY_ATTR,
    _WORKFLOW_ATTR,
    ActivityDefinition,
    WorkflowDefinition,
    _is_async,
    activity_name,
    workflow_name,
)
from .._errors import ApplicationError
from .._run import current_run

__all__ = [
    "ActivityMock",
    "Fail",
    "MockCall",
    "MockExhaustedError",
    "Return",
    "Timeout",
    "WorkflowMock",
    "mock_activity",
    "mock_workflow",
]

_UNSET: Any = object()


# ---- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Return:
    """An outcome: return ``value`` (after ``latency`` real seconds)."""

    value: Any = None
    latency: float = 0.0


@dataclass(frozen=True)
class Fail:
    """An outcome: fail this attempt with ``ApplicationError(message, type=type,
    non_retryable=non_retryable)``; the activity's retry policy decides what follows."""

    message: str = "mock failure"
    type: str = "MockFailure"
    non_retryable: bool = False
    latency: float = 0.0

    def error(self) -> ApplicationError:
        return ApplicationError(self.message, type=self.type, non_retryable=self.non_retryable)


@dataclass(frozen=True)
class Timeout:
    """An outcome: the attempt times out, as if it ran past its ``start_to_close_timeout``
    (the same ``TimeoutError`` failure the worker records, retried by the policy), without
    waiting for it in real time."""

    latency: float = 0.0

    def error(self) -> ApplicationError:
        return ApplicationError("activity attempt timed out (mock)", type="TimeoutError")


Outcome = Return | Fail | Timeout


@dataclass(frozen=True)
class MockCall:
    """One call of a mock: its arguments and, for activities, the attempt's info."""

    args: tuple[Any, ...]
    info: Any = None

    @property
    def attempt(self) -> int:
        return int(getattr(self.info, "attempt", 1))


class MockExhaustedError(ApplicationError):
    pass


def _as_outcome(item: Any) -> Outcome | BaseException:
    if isinstance(item, (Return, Fail, Timeout, BaseException)):
        return item
    if isinstance(item, type) and issubclass(item, BaseException):
        return item()
    return Return(item)


def _target_fn(target: Any) -> Callable[..., Any] | None:
    """The function whose signature describes the mock's parameters, if ``target`` is one."""
    if isinstance(target, str):
        return None
    fn: Callable[..., Any] = target
    if inspect.isfunction(fn) and "." in fn.__qualname__:
        params = list(inspect.signature(fn).parameters)
        if params and params[0] == "self":
            # ``Shop.charge``: the worker calls it bound, so drop ``self``.
            return functools.partial(fn, None)
    return fn


class _Mock:
    kind = "mock"

    def __init__(
        self,
        returns: Any,
        raises: BaseException | type[BaseException] | None,
        sequence: Iterable[Any] | None,
        side_effect: Callable[..., Any] | None,
    ) -> None:
        given = [returns is not _UNSET, raises is not None, sequence is not None]
        if sum(given) > 1:
            raise ValueError("give at most one of returns=, raises= and sequence=")
        self._returns = None if returns is _UNSET else returns
        self._raises = raises
        self._sequence = None if sequence is None else [_as_outcome(i) for i in sequence]
        self._side_effect = side_effect
        self.calls: list[MockCall] = []

    @property
    def call_count(self) -> int:
        return len(self.calls)

    @property
    def call_args(self) -> list[tuple[Any, ...]]:
        """The arguments of every call, in order."""
        return [call.args for call in self.calls]

    def reset(self) -> None:
        self.calls.clear()

    async def _respond(self, args: tuple[Any, ...], index: int) -> Any:
        if self._sequence is not None:
            if index < len(self._sequence):
                return await _play(self._sequence[index])
            if self._side_effect is None:
                raise MockExhaustedError(
                    f"{self!r} was called {index + 1} times but its sequence has only "
                    f"{len(self._sequence)} outcomes",
                    non_retryable=True,
                )
        if self._raises is not None:
            raise self._raises
        if self._side_effect is not None:
            fn = self._side_effect
            if self.kind == "activity" and not _is_async(fn):
                # A plain function, maybe the real sync activity: a thread, as the worker
                # would (the activity context goes along).
                return await asyncio.to_thread(fn, *args)
            value = fn(*args)
            if inspect.isawaitable(value):
                value = await value
            return value
        return self._returns


async def _play(outcome: Outcome | BaseException) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    if outcome.latency > 0:
        await asyncio.sleep(outcome.latency)
    if isinstance(outcome, Return):
        return outcome.value
    raise outcome.error()


class ActivityMock(_Mock):
    """An activity stand-in; register it in ``activities=`` in place of the real one.

    ``calls`` records every attempt (``MockCall.args``, ``MockCall.info`` is the
    ``activity.info()`` of the attempt, so ``.attempt`` counts retries).
    """

    kind = "activity"

    def __init__(
        self,
        target: Callable[..., Any] | str,
        *,
        returns: Any = _UNSET,
        raises: BaseException | type[BaseException] | None = None,
        sequence: Iterable[Any] | None = None,
        side_effect: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(returns, raises, sequence, side_effect)
        self.name = activity_name(target)
        described = _target_fn(target)

        async def mock(*args: Any) -> Any:
            index = len(self.calls)
            self.calls.append(MockCall(tuple(args), _activity.info()))
            return await self._respond(tuple(args), index)

        if described is not None:
            mock.__wrapped__ = described  # type: ignore[attr-defined]
        mock.__qualname__ = mock.__name__ = f"mock<{self.name}>"
        self.fn = mock
        setattr(self, _ACTIVITY_ATTR, ActivityDefinition(self.name, mock, True))

    def __repr__(self) -> str:
        return f"ActivityMock({self.name!r}, calls={self.call_count})"


class WorkflowMock(_Mock):
    """A workflow stand-in (for child workflows); register it in ``workflows=``.

    It must stay deterministic: a fixed result, an error, or a ``side_effect`` that only
    computes from its arguments. ``calls`` records each run once (not its replays).
    """

    kind = "workflow"

    def __init__(
        self,
        target: Callable[..., Any] | str,
        *,
        returns: Any = _UNSET,
        raises: BaseException | type[BaseException] | None = None,
        side_effect: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(returns, raises, None, side_effect)
        self.name = workflow_name(target)
        described = _target_fn(target)

        async def mock(*args: Any) -> Any:
            if not current_run("mock").replaying:
                self.calls.append(MockCall(tuple(args)))
            return await self._respond(tuple(args), 0)

        if described is not None:
            mock.__wrapped__ = described  # type: ignore[attr-defined]
        mock.__qualname__ = mock.__name__ = f"mock<{self.name}>"
        self.fn = mock
        setattr(self, _WORKFLOW_ATTR, WorkflowDefinition(self.name, mock))

    def __repr__(self) -> str:
        return f"WorkflowMock({self.name!r}, calls={self.call_count})"


def mock_activity(
    target: Callable[..., Any] | str,
    *,
    returns: Any = _UNSET,
    raises: BaseException | type[BaseException] | None = None,
    sequence: Iterable[Any] | None = None,
    side_effect: Callable[..., Any] | None = None,
) -> ActivityMock:
    """A stand-in for the activity ``target`` (the function, or its registered name).

    - ``returns=value``: every attempt returns ``value`` (default None).
    - ``raises=exc``: every attempt raises ``exc`` (retried by the policy, unless it is an
      ``ApplicationError(non_retryable=True)``).
    - ``sequence=[...]``: one item per attempt, across all calls: a value (returned),
      an exception instance or class (raised), or ``Return`` / ``Fail`` / ``Timeout``.
      When it runs out, ``side_effect`` is called if given, otherwise the attempt fails
      for good with ``MockExhaustedError``.
    - ``side_effect=fn``: ``fn(*args)`` computes the result (it may be async, may raise);
      pass the real function to record calls and still run it.

    Arguments are decoded by the target's annotations, results by the caller's, as for
    the real activity.
    """
    return ActivityMock(
        target, returns=returns, raises=raises, sequence=sequence, side_effect=side_effect
    )


def mock_workflow(
    target: Callable[..., Any] | str,
    *,
    returns: Any = _UNSET,
    raises: BaseException | type[BaseException] | None = None,
    side_effect: Callable[..., Any] | None = None,
) -> WorkflowMock:
    """A stand-in for the (child) workflow ``target``: ``returns=``, ``raises=`` or
    ``side_effect=`` as for ``mock_activity``. Register it in ``workflows=`` instead of the
    real child workflow."""
    return WorkflowMock(target, returns=returns, raises=raises, side_effect=side_effect)
