"""The run-view model shared by the CLI and the web UI: pure functions from what the client
returns (``describe()``, ``history()``, ``list_workflows()``, ``get_vars()``) to timelines,
history tables, human times and durations, status styles, JSON shapes and diagrams.

Nothing here does I/O: callers fetch, these functions shape.
"""

from ._diagram import Sequence, Step, mermaid, sequence, svg
from ._format import (
    StatusStyle,
    format_duration,
    format_time,
    pretty_json,
    short_json,
    status_style,
    to_datetime,
)
from ._history import HistoryRow, event_summary, history_rows
from ._json import description_json, history_row_json, history_row_values, timeline_json
from ._timeline import ITEM_KINDS, Attempt, RunTimeline, TimelineItem, build_timeline, failure_text

__all__ = [
    "ITEM_KINDS",
    "Attempt",
    "HistoryRow",
    "RunTimeline",
    "Sequence",
    "StatusStyle",
    "Step",
    "TimelineItem",
    "build_timeline",
    "description_json",
    "event_summary",
    "failure_text",
    "format_duration",
    "format_time",
    "history_row_json",
    "history_row_values",
    "history_rows",
    "mermaid",
    "pretty_json",
    "sequence",
    "short_json",
    "status_style",
    "svg",
    "timeline_json",
    "to_datetime",
]
