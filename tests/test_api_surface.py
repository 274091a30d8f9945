"""The public names DESIGN.md promises exist, are exported, and are typed."""

from __future__ import annotations

import inspect
from pathlib import Path

import ostinato
from ostinato import activity, backends, workflow

TOP_LEVEL = {
    "connect", "Worker", "Client", "SyncClient", "RetryPolicy", "workflow", "activity",
    "WorkflowFailedError", "WorkflowCancelledError", "WorkflowTerminatedError",
    "ActivityError", "ApplicationError", "NonDeterminismError",
    "WorkflowAlreadyStartedError", "WorkflowNotFoundError", "ChildWorkflowError", "hook",
    "RunStateChange",
}  # fmt: skip
WORKFLOW_API = {
    "defn", "execute_activity", "start_activity", "sleep", "wait_until", "now", "random",
    "uuid4", "info", "logger", "side_effect", "signal_channel", "wait_condition",
    "execute_child", "start_child", "signal_external", "continue_as_new", "patched",
    "deprecate_patch", "set_var", "disconnected",
}  # fmt: skip
ACTIVITY_API = {"defn", "info", "heartbeat", "is_cancelled"}
# What docs/backends.md tells a backend writer to implement, and the backends users build.
BACKENDS_API = {
    "Backend", "TimeSkipping", "Clock", "system_clock", "RunStatus", "ParentRef", "NewRun",
    "InboxEvent", "WorkflowTask", "NewActivity", "NewTimer", "OutgoingSignal", "RunClose",
    "WorkflowCommit", "ActivityTask", "ActivityState", "RunInfo",
    "MemoryBackend", "SqliteBackend", "PostgresBackend", "HookStore", "HookDelivery",
    "HookFailureRecord",
}  # fmt: skip


def test_exports_are_complete() -> None:
    assert set(ostinato.__all__) >= TOP_LEVEL
    assert set(workflow.__all__) >= WORKFLOW_API
    assert set(activity.__all__) >= ACTIVITY_API
    assert set(backends.__all__) >= BACKENDS_API
    for module in (ostinato, workflow, activity, backends):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} is exported but missing"


def test_package_is_typed() -> None:
    package = Path(ostinato.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_core.pyi").exists()


def test_errors_subclass_python_errors_where_they_fit() -> None:
    assert issubclass(ostinato.WorkflowCancelledError, ostinato.WorkflowFailedError)
    assert issubclass(ostinato.WorkflowTerminatedError, ostinato.WorkflowFailedError)
    assert issubclass(ostinato.WorkflowNotFoundError, LookupError)
    assert issubclass(ostinato.PayloadError, TypeError)


def test_decorators_keep_the_function() -> None:
    async def f(x: int) -> int:
        return x

    assert workflow.defn(f) is f
    assert inspect.signature(f).parameters["x"].annotation in (int, "int")


def test_backends_are_the_contract_users_and_writers_see() -> None:
    # One class each, whichever way it is reached.
    assert ostinato.Backend is backends.Backend
    assert ostinato.RunStatus is backends.RunStatus
    assert ostinato.backends is backends
    for cls in (backends.MemoryBackend, backends.SqliteBackend, backends.PostgresBackend):
        assert issubclass(cls, backends.Backend)
        assert issubclass(cls, backends.TimeSkipping), f"{cls.__name__} cannot skip time"
    # The protocol is structural: a backend of a third party need not inherit it.
    assert not isinstance(object(), backends.TimeSkipping)

    class Skipper:
        async def next_visible_time(self) -> float | None:
            return None

        def wake_waiters(self) -> None:
            pass

    assert isinstance(Skipper(), backends.TimeSkipping)
    for name in backends.__all__:
        value = getattr(backends, name)
        if isinstance(value, type):
            assert value.__doc__, f"ostinato.backends.{name} has no docstring"
    try:
        backends.NoSuchBackend  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchBackend" in str(exc)
    else:
        raise AssertionError("a missing name must raise AttributeError")
