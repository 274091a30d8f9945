"""The in-memory backend's retention methods (the reference for the SQL versions)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ._retention_store import RetentionStore
from ._types import Clock, RunStatus

__all__ = ["MemoryRetention"]


class MemoryRetention(RetentionStore):
    """Sweep leases in a dict, guarded by the backend's lock; deletes through ``delete``'s
    own removal of an instance."""

    clock: Clock
    _lock: threading.RLock
    _sweeps: dict[str, tuple[str, float]]

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
