"""Retention (table ``sweeps``, migration 0011): the ``RetentionStore`` methods."""

from __future__ import annotations

from collections.abc import Sequence

from ..._errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from .._retention_store import RetentionStore, check_same_length, still_running
from .._types import RunStatus
from ._core import _Core, _Effects
from ._pool import Conn

__all__ = ["_RetentionSide"]


class _RetentionSide(_Core, RetentionStore):
    async def delete_closed_instances(
        self, closed_before: float, statuses: Sequence[RunStatus], limit: int
    ) -> int:
        params = {
            "closed_before": closed_before,
            "statuses": [RunStatus(s).value for s in statuses],
            "limit": limit,
        }

        async def body(conn: Conn, effects: _Effects) -> int:
            return len(await self._fetchall(conn, "delete_closed_instances", params))

        # Retrying after a connection lost during COMMIT is harmless: a batch that did
        # commit is gone, and the retry deletes the next one (the count is then an estimate).
        return await self._run("deleting closed workflows", body)

    async def redact_run(self, instance_id: str, run_id: str, history: Sequence[bytes]) -> None:
        run = {"instance_id": instance_id, "run_id": run_id}

        async def body(conn: Conn, effects: _Effects) -> None:
            row = await self._fetchone(conn, "redact_lock_run", run)
            if row is None:
                raise WorkflowNotFoundError(instance_id)
            if RunStatus(row[0]).is_open:
                raise WorkflowAlreadyStartedError(instance_id, still_running(instance_id))
            seqs = [int(r[0]) for r in await self._fetchall(conn, "redact_history_seqs", run)]
            check_same_length(seqs, history)
            events = [bytes(event) for event in history]
            params = run | {"seqs": seqs, "events": events, "now": self.clock()}
            await self._execute(conn, "redact_history", params)

        # Retrying after a connection lost during COMMIT writes the same rows again.
        await self._run(f"redacting workflow {instance_id!r}", body)

    async def closed_runs_to_redact(
        self, closed_before: float, limit: int
    ) -> list[tuple[str, str]]:
        async def body(conn: Conn, effects: _Effects) -> list[tuple[str, str]]:
            params = {"closed_before": closed_before, "limit": limit}
            rows = await self._fetchall(conn, "closed_runs_to_redact", params)
            return [(str(instance_id), str(run_id)) for instance_id, run_id in rows]

        return await self._run("listing runs to redact", body, transaction=False)

    async def claim_sweep(self, name: str, holder: str, lease_seconds: float) -> bool:
        async def body(conn: Conn, effects: _Effects) -> bool:
            now = self.clock()
            params = {
                "name": name,
                "holder": holder,
                "expires_at": now + lease_seconds,
                "now": now,
            }
            return await self._fetchone(conn, "claim_sweep", params) is not None

        return await self._run(f"claiming sweep {name!r}", body)

    async def release_sweep(self, name: str, holder: str) -> None:
        async def body(conn: Conn, effects: _Effects) -> None:
            await self._execute(conn, "release_sweep", {"name": name, "holder": holder})

        await self._run(f"releasing sweep {name!r}", body)
