"""The stable JSON shapes of ``ostinato ... --json`` (and the web UI's API): plain JSON types,
times as ISO 8601 strings in UTC, durations as seconds (see docs/cli.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ._history import HistoryRow
from ._timeline import RunTimeline

if TYPE_CHECKING:
    from .._client import WorkflowDescription

__all__ = ["description_json", "history_row_json", "history_row_values", "timeline_json"]


def _plain(value: Any) -> Any:
    """Dataclasses, datetimes and tuples as JSON types (orjson's own encoding of them)."""
    return orjson.loads(orjson.dumps(value, default=repr))


def description_json(
    description: WorkflowDescription, vars: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every field of ``describe()``, ``duration_seconds`` (None while open) and ``vars``
    (``client.get_vars()``; None when not given: they exist for the latest run only)."""
    data: dict[str, Any] = _plain(description)
    data["duration_seconds"] = (
        (description.closed_at - description.created_at).total_seconds()
        if description.closed_at
        else None
    )
    data["vars"] = None if vars is None else _plain(dict(vars))
    return data


def timeline_json(timeline: RunTimeline) -> dict[str, Any]:
    """The timeline with ``duration_seconds`` on the run and on every item."""
    data: dict[str, Any] = _plain(timeline)
    data["duration_seconds"] = timeline.duration
    for item, shown in zip(timeline.items, data["items"], strict=True):
        shown["duration_seconds"] = item.duration
    return data


def history_row_json(row: HistoryRow) -> dict[str, Any]:
    """A history row's fields (seq, time, kind, summary, event) as plain JSON values."""
    return {f.name: _plain(getattr(row, f.name)) for f in dataclasses.fields(row)}


def history_row_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields of a ``history_row_json`` row, in ``HistoryRow`` order (seq, time as ISO
    text, kind, summary, event)."""
    return tuple(row[f.name] for f in dataclasses.fields(HistoryRow))
