"""Replay recorded histories against workflow code (no backend, no worker)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from .. import _events
from .._client import WorkflowHandle
from .._definition import WorkflowDefinition, build_registry
from .._errors import HistoryCorruptError, NonDeterminismError
from .._payloads import PayloadConverter, default_converter
from .._run import WorkflowRun, _Abort

__all__ = ["load_history", "replay", "replay_directory", "save_history"]

HistoryLike = Sequence[Mapping[str, Any] | bytes] | str | os.PathLike[str]


def load_history(source: HistoryLike) -> list[bytes]:
    """A history as event bytes, from ``handle.history()`` output, a list of event bytes,
    or the path of a JSON file holding such a list."""
    if isinstance(source, (str, os.PathLike)):
        data = orjson.loads(Path(source).read_bytes())
        if not isinstance(data, list):
            raise HistoryCorruptError(f"{source}: expected a JSON list of history events")
        source = data
    return [e if isinstance(e, bytes) else orjson.dumps(e) for e in source]


def replay(
    workflow: Callable[..., Any] | Iterable[Callable[..., Any]],
    history: HistoryLike,
    *,
    converter: PayloadConverter | None = None,
) -> None:
    """Replay ``history`` against the current code of ``workflow``.

    Raises ``NonDeterminismError`` naming the first event the code no longer matches, and
    ``HistoryCorruptError`` for a history that cannot be read. Returns None when the code
    reproduces the history exactly. ``workflow`` may be a list of workflows; the history's
    workflow name picks the one to use.
    """
    events = load_history(history)
    workflows = [workflow] if callable(workflow) else list(workflow)
    registry: dict[str, WorkflowDefinition] = build_registry(workflows, "workflow")
    try:
        name, info = _events.started_event(events)
    except ValueError as exc:
        raise HistoryCorruptError(str(exc)) from None
    definition = registry.get(name)
    if definition is None:
        raise NonDeterminismError(
            f"the history is of workflow {name!r}, but replay was given "
            f"{sorted(registry) or 'no workflows'}",
            expected=name,
        )
    run = WorkflowRun(
        definition=definition,
        workflow_name=name,
        instance_id=info.instance_id or "replay",
        run_id=info.run_id or "0" * 32,
        queue=info.queue or "default",
        converter=converter or default_converter(),
        deadlock_timeout=None,
    )
    try:
        run.replay(events)
    except _Abort:
        # The code stopped on a mismatch outside a workflow step (e.g. it completed while
        # history holds more decisions): the run recorded why.
        if isinstance(run.failure, Exception):
            raise run.failure from None
        raise
    finally:
        run.dispose()


def replay_directory(
    workflows: Iterable[Callable[..., Any]], directory: str | os.PathLike[str]
) -> list[Path]:
    """Replay every ``*.json`` history under ``directory``; raises on the first mismatch
    (the error names the file). Returns the files replayed."""
    files = sorted(Path(directory).rglob("*.json"))
    wf_list = list(workflows)
    for path in files:
        try:
            replay(wf_list, path)
        except NonDeterminismError as exc:
            raise NonDeterminismError(
                f"{path}: {exc}", seq=exc.seq, expected=exc.expected, got=exc.got
            ) from exc
    return files


async def save_history(handle: WorkflowHandle[Any], path: str | os.PathLike[str]) -> Path:
    """Write the history of ``handle``'s run to ``path`` as a JSON list of events (creating
    parent directories), for ``replay`` / ``replay_directory`` in later test runs."""
    data = orjson.dumps(await handle.history(), option=orjson.OPT_INDENT_2) + b"\n"
    return await asyncio.to_thread(_write, Path(path), data)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
