"""The blocking facade over ``Client`` for scripts and WSGI apps: ``SyncClient`` and its
handles. It runs the async client on an event loop of its own, on a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._backends._hook_store import HookFailureRecord
from ._backends._queue_limits import QueueLimits
from ._client import Client, WorkflowDescription, WorkflowHandle
from ._retry import Duration
from ._schedules import ScheduleDescription, ScheduleHandle
from ._tracing import with_current_context

__all__ = ["SyncClient", "SyncScheduleHandle", "SyncWorkflowHandle"]

T = TypeVar("T")


class SyncClient:
    """A blocking facade over ``Client`` for scripts and WSGI apps.

    It owns an event loop on a background thread and its own backend connection:
    ``SyncClient("sqlite:///app.db")``. Handles are ``SyncWorkflowHandle``s.
    """

    def __init__(self, url: str, *, tracer_provider: Any = None, **backend_options: Any) -> None:
        from ._connect import connect

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ostinato-sync-client", daemon=True
        )
        self._thread.start()
        self._backend = connect(url, **backend_options)
        self.client = Client(self._backend, tracer_provider=tracer_provider)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def start_workflow(self, workflow: Any, *args: Any, **options: Any) -> SyncWorkflowHandle:
        # In the caller's trace context (the loop's thread has its own).
        start = self.client.start_workflow(workflow, *args, **options)
        handle = self._call(with_current_context(self.client._tracing, start))
        return SyncWorkflowHandle(self, handle)

    def get_handle(self, id: str, **options: Any) -> SyncWorkflowHandle:
        return SyncWorkflowHandle(self, self.client.get_handle(id, **options))

    def list_workflows(self, **options: Any) -> tuple[list[WorkflowDescription], str | None]:
        return self._call(self.client.list_workflows(**options))

    def get_vars(self, id: str) -> dict[str, Any]:
        return self._call(self.client.get_vars(id))

    def create_schedule(
        self, schedule_id: str, workflow: Any, *args: Any, **options: Any
    ) -> SyncScheduleHandle:
        """``Client.create_schedule`` without ``await``."""
        handle = self._call(self.client.create_schedule(schedule_id, workflow, *args, **options))
        return SyncScheduleHandle(self, handle)

    def delete(self, id: str) -> None:
        self._call(self.client.delete(id))

    def delete_closed(self, **options: Any) -> int:
        return self._call(self.client.delete_closed(**options))

    def get_schedule(self, schedule_id: str) -> SyncScheduleHandle:
        return SyncScheduleHandle(self, self._call(self.client.get_schedule(schedule_id)))

    def list_schedules(self) -> list[ScheduleDescription]:
        return self._call(self.client.list_schedules())

    def list_hook_failures(self, limit: int = 100) -> list[HookFailureRecord]:
        return self._call(self.client.list_hook_failures(limit))

    def set_queue_limits(
        self,
        queue: str,
        max_concurrent: int | None = None,
        rate_limit: tuple[int, Duration] | None = None,
        max_concurrent_per_key: int | None = None,
    ) -> None:
        """``Client.set_queue_limits`` without ``await`` (docs/queues.md)."""
        self._call(
            self.client.set_queue_limits(
                queue,
                max_concurrent=max_concurrent,
                rate_limit=rate_limit,
                max_concurrent_per_key=max_concurrent_per_key,
            )
        )

    def get_queue_limits(self, queue: str) -> QueueLimits | None:
        return self._call(self.client.get_queue_limits(queue))

    def clear_queue_limits(self, queue: str) -> None:
        self._call(self.client.clear_queue_limits(queue))

    def close(self) -> None:
        if self._loop.is_running():
            self._call(self._backend.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncWorkflowHandle:
    def __init__(self, sync: SyncClient, handle: WorkflowHandle[Any]) -> None:
        self._sync = sync
        self.handle = handle
        self.id = handle.id

    def result(self, timeout: Duration | None = None) -> Any:
        return self._sync._call(self.handle.result(timeout))

    def signal(self, name: str, value: Any = None) -> None:
        self._sync._call(self.handle.signal(name, value))

    def cancel(self, reason: str = "cancelled by client") -> None:
        self._sync._call(self.handle.cancel(reason))

    def terminate(self, reason: str = "terminated by client") -> None:
        self._sync._call(self.handle.terminate(reason))

    def pause(self, reason: str | None = None) -> bool:
        return self._sync._call(self.handle.pause(reason))

    def resume(self) -> bool:
        return self._sync._call(self.handle.resume())

    def describe(self) -> WorkflowDescription:
        return self._sync._call(self.handle.describe())

    def history(self) -> list[dict[str, Any]]:
        return self._sync._call(self.handle.history())

    def redact(self) -> None:
        self._sync._call(self.handle.redact())


class SyncScheduleHandle:
    """``ScheduleHandle`` without ``await`` (from ``SyncClient``)."""

    def __init__(self, sync: SyncClient, handle: ScheduleHandle) -> None:
        self._sync = sync
        self.handle = handle
        self.id = handle.id

    def describe(self) -> ScheduleDescription:
        return self._sync._call(self.handle.describe())

    def pause(self, reason: str | None = None) -> None:
        self._sync._call(self.handle.pause(reason))

    def unpause(self) -> None:
        self._sync._call(self.handle.unpause())

    def trigger(self) -> SyncWorkflowHandle | None:
        started = self._sync._call(self.handle.trigger())
        return None if started is None else SyncWorkflowHandle(self._sync, started)

    def update(self, **changes: Any) -> None:
        self._sync._call(self.handle.update(**changes))

    def delete(self) -> None:
        self._sync._call(self.handle.delete())
