"""``@workflow.defn`` and ``@activity.defn``: mark functions and give them durable names.

The decorators return the function itself (its signature and type are untouched) with the
definition attached, so a decorated function stays directly callable in unit tests.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from ._errors import RegistrationError

__all__ = [
    "ActivityDefinition",
    "WorkflowDefinition",
    "activity_defn",
    "activity_name",
    "build_registry",
    "workflow_defn",
    "workflow_definition",
    "workflow_name",
]

F = TypeVar("F", bound=Callable[..., Any])

_WORKFLOW_ATTR = "__ostinato_workflow__"
_ACTIVITY_ATTR = "__ostinato_activity__"


@dataclass(frozen=True, slots=True)
class WorkflowDefinition:
    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ActivityDefinition:
    name: str
    fn: Callable[..., Any]
    is_async: bool


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RegistrationError(f"{what} name must be a non-empty string, got {name!r}")
    return name


def _check_params(fn: Callable[..., Any], what: str) -> None:
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.KEYWORD_ONLY, param.VAR_KEYWORD):
            raise RegistrationError(
                f"{what} {fn.__qualname__!r} has keyword-only parameter {param.name!r}: "
                "workflow and activity arguments are positional (they are stored as a JSON "
                "array); make it positional or pass a dataclass"
            )


@overload
def workflow_defn(fn: F, /) -> F: ...
@overload
def workflow_defn(*, name: str | None = None) -> Callable[[F], F]: ...
def workflow_defn(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark an ``async def`` function as a workflow: ``@workflow.defn`` or
    ``@workflow.defn(name="orders.process")``. The name is what history records; keep it
    stable across deploys."""

    def decorate(f: F) -> F:
        if not inspect.iscoroutinefunction(f):
            raise RegistrationError(
                f"workflow {getattr(f, '__qualname__', f)!r} must be an 'async def' function"
            )
        _check_params(f, "workflow")
        wf_name = _check_name(name if name is not None else f.__name__, "workflow")
        setattr(f, _WORKFLOW_ATTR, WorkflowDefinition(wf_name, f))
        return f

    return decorate(fn) if fn is not None else decorate


@overload
def activity_defn(fn: F, /) -> F: ...
@overload
def activity_defn(*, name: str | None = None) -> Callable[[F], F]: ...
def activity_defn(fn: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a function (``async def`` or plain ``def``, run in a thread pool) as an activity:
    ``@activity.defn`` or ``@activity.defn(name="charge")``. Methods work too: register the
    bound method of an object that holds shared state (a DB pool)."""

    def decorate(f: F) -> F:
        if not callable(f):
            raise RegistrationError(f"activity must be callable, got {f!r}")
        _check_params(f, "activity")
        act_name = _check_name(name if name is not None else f.__name__, "activity")
        setattr(f, _ACTIVITY_ATTR, ActivityDefinition(act_name, f, _is_async(f)))
        return f

    return decorate(fn) if fn is not None else decorate


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def workflow_definition(wf: object) -> WorkflowDefinition:
    defn = getattr(wf, _WORKFLOW_ATTR, None)
    if not isinstance(defn, WorkflowDefinition):
        raise RegistrationError(
            f"{wf!r} is not a workflow: decorate it with @workflow.defn (or pass its name)"
        )
    return defn


def workflow_name(wf: object) -> str:
    """The registered name of a workflow function, or the string itself."""
    if isinstance(wf, str):
        return _check_name(wf, "workflow")
    return workflow_definition(wf).name


def activity_definition(fn: object) -> ActivityDefinition:
    defn = getattr(fn, _ACTIVITY_ATTR, None)
    if not isinstance(defn, ActivityDefinition):
        raise RegistrationError(
            f"{fn!r} is not an activity: decorate it with @activity.defn (or pass its name)"
        )
    if inspect.ismethod(fn):
        # A bound method: call it bound, so it sees its object's shared state.
        return ActivityDefinition(defn.name, fn, defn.is_async)
    return defn


def activity_name(fn: object) -> str:
    if isinstance(fn, str):
        return _check_name(fn, "activity")
    return activity_definition(fn).name


def build_registry(items: Iterable[object], kind: str) -> dict[str, Any]:
    """Name -> definition, refusing duplicates (two different functions under one name)."""
    registry: dict[str, Any] = {}
    for item in items:
        defn: WorkflowDefinition | ActivityDefinition = (
            workflow_definition(item) if kind == "workflow" else activity_definition(item)
        )
        existing = registry.get(defn.name)
        if existing is not None and existing.fn != defn.fn:
            raise RegistrationError(
                f"two {kind}s are registered under the name {defn.name!r}: "
                f"{existing.fn!r} and {defn.fn!r}; give one a different name with "
                f"@{kind}.defn(name=...)"
            )
        registry[defn.name] = defn
    return registry
