"""The in-memory backend's retention methods (the reference for the SQL versions)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from ._memory_hooks import HookTables
from ._retention_store import RetentionStore, check_same_length, still_running
from ._types import Clock, RunStatus

if TYPE_CHECKING:
    from ._memory_store import _ActivityTask, _Run

__all__ = ["MemoryRetention"]


class MemoryRetention(RetentionStore):
    """Sweep leases in a dict, guarded by the backend's lock; deletes through ``delete``'s
    own removal of an instance."""

    clock: Clock
    _lock: threading.RLock
    _sweeps: dict[str, tuple[str, float]]
    _runs: dict[tuple[str, str], _Run]
    _activities: dict[int, _ActivityTask]

    @property
    def _hooks(self) -> HookTables:
        raise NotImplementedError  # provided by MemoryBackend

    def _remove_instance(self, instance_id: str) -> None:
        raise NotImplementedError  # provided by MemoryBackend

    def _closed_instances(self) -> list[tuple[float, str, RunStatus]]:
        raise NotImplementedError  # provided by MemoryBackend

    async def delete_closed_instances(
        self, closed_before: float, statuses: Sequence[RunStatus], limit: int
    ) -> int:
        wanted = set(statuses)
        with self._lock:
            doomed = sorted(
                (closed_at, instance_id)
                for closed_at, instance_id, status in self._closed_instances()
                if status in wanted and closed_at < closed_before
            )[:limit]
            for _, instance_id in doomed:
                self._remove_instance(instance_id)
            return len(doomed)

    async def redact_run(self, instance_id: str, run_id: str, history: Sequence[bytes]) -> None:
        with self._lock:
            run = self._runs.get((instance_id, run_id))
            if run is None:
                raise WorkflowNotFoundError(instance_id)
            if run.status.is_open:
                raise WorkflowAlreadyStartedError(instance_id, still_running(instance_id))
            check_same_length(run.history, history)
            run.history = [bytes(event) for event in history]
            run.result = None
            run.blocked_reason = None
            run.vars.clear()
            run.inbox.clear()
            run.redacted_at = self.clock()
            self._hooks.redact_run(instance_id, run_id)
            for task in [t for t in self._activities.values() if t.run is run]:
                del self._activities[task.task_id]

    async def closed_runs_to_redact(
        self, closed_before: float, limit: int
    ) -> list[tuple[str, str]]:
        with self._lock:
            found = sorted(
                (run.closed_at, run.pk, run.instance_id, run.run_id)
                for run in self._runs.values()
                if run.closed_at is not None
                and run.closed_at < closed_before
                and run.redacted_at is None
                and not run.status.is_open
            )
            return [(instance_id, run_id) for _, _, instance_id, run_id in found[:limit]]

    async def claim_sweep(self, name: str, holder: str, lease_seconds: float) -> bool:
        with self._lock:
            now = self.clock()
            current = self._sweeps.get(name)
            if current is not None and current[0] != holder and current[1] > now:
                return False
            self._sweeps[name] = (holder, now + lease_seconds)
            return True

    async def release_sweep(self, name: str, holder: str) -> None:
        with self._lock:
            current = self._sweeps.get(name)
            if current is not None and current[0] == holder:
                del self._sweeps[name]
