"""Human renderings shared by the CLI and the web UI: times, durations, short values, statuses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

__all__ = [
    "StatusStyle",
    "format_duration",
    "format_time",
    "pretty_json",
    "short_json",
    "status_style",
    "to_datetime",
]


def to_datetime(value: datetime | float | None) -> datetime | None:
    """A tz-aware UTC datetime from a datetime or Unix seconds (None stays None)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(value, tz=timezone.utc)


def format_time(value: datetime | float | None) -> str:
    """``2026-12-01 03:04:05.123`` in UTC (milliseconds), ``-`` for no time."""
    moment = to_datetime(value)
    if moment is None:
        return "-"
    moment = moment.astimezone(timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"


# (unit length in seconds, name); a duration shows its two largest units from 1 minute up.
_UNITS = ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s"))


def format_duration(seconds: float | None) -> str:
    """``0.4 ms``, ``35 ms``, ``1.2 s``, ``4 min 5 s``, ``3 h 4 min``, ``3 d 4 h``; ``-`` for
    none. Negative durations (clocks of two machines disagreeing) keep their sign."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if math.isinf(seconds):
        return "forever"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    parts: list[str] = []
    for length, name in _UNITS:
        count, whole = divmod(whole, length)
        if count or parts:
            parts.append(f"{count} {name}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0 "):
        parts.pop()
    return " ".join(parts)


def short_json(value: Any, limit: int = 60) -> str:
    """A value as compact JSON on one line, cut to ``limit`` characters with ``…``."""
    text = orjson.dumps(value, default=repr).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pretty_json(value: Any) -> str:
    """A value as indented JSON (keys in their stored order)."""
    return orjson.dumps(value, default=repr, option=orjson.OPT_INDENT_2).decode()


@dataclass(frozen=True, slots=True)
class StatusStyle:
    """How to show a status: ``tone`` names its meaning (``ok``, ``bad``, ``warn``,
    ``active``, ``muted``), ``ansi`` is the SGR colour code for terminals and ``color`` a hex
    colour for pages and SVG."""

    tone: str
    ansi: str
    color: str


_TONES = {
    "ok": StatusStyle("ok", "32", "#1a7f37"),
    "bad": StatusStyle("bad", "31", "#cf222e"),
    "warn": StatusStyle("warn", "33", "#9a6700"),
    "active": StatusStyle("active", "36", "#0969da"),
    "muted": StatusStyle("muted", "90", "#6e7781"),
}

# Run statuses (``RunStatus`` values, plus ``blocked`` for a running run that cannot progress)
# and timeline item statuses.
_STATUS_TONES = {
    "completed": "ok",
    "fired": "ok",
    "received": "ok",
    "recorded": "ok",
    "sent": "ok",
    "failed": "bad",
    "timed_out": "bad",
    "terminated": "bad",
    "blocked": "bad",
    "canceled": "warn",
    "cancel_requested": "warn",
    "retrying": "warn",
    "paused": "warn",
    "running": "active",
    "scheduled": "active",
    "waiting": "active",
    "continued_as_new": "muted",
}


def status_style(status: str) -> StatusStyle:
    """The style of a run or timeline item status (unknown statuses are muted)."""
    return _TONES[_STATUS_TONES.get(status, "muted")]
