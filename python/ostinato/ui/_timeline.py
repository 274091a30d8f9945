"""A run's timeline as HTML: one row per activity, timer, signal, child ... on a shared time
axis, with each activity's attempts. The folding of history into items is ``ostinato._view``'s
(shared with the CLI); this module only draws it.

Bars are SVG shapes placed by attributes, not inline styles, so the page keeps a strict
Content-Security-Policy.
"""

from __future__ import annotations

from datetime import datetime

from .. import _view
from ._html import Child, Markup, join, tag

__all__ = ["render"]

# Width of the axis in SVG user units (the SVG scales to the column).
_AXIS = 1000
# An instant (signal, side effect) or a zero-length item is drawn this wide.
_MIN_BAR = 4


def _position(moment: datetime | None, start: datetime, span: float, default: float) -> float:
    if moment is None:
        return default
    return min(max((moment - start).total_seconds() / span * _AXIS, 0.0), _AXIS)


def _attempts(item: _view.TimelineItem) -> Child:
    if item.kind != "activity" or not item.attempts:
        return None
    if len(item.attempts) == 1 and item.attempts[0].failure is None:
        return None
    return tag(
        "ol",
        [
            tag(
                "li",
                f"attempt {a.number}: {a.status}",
                f" at {_view.format_time(a.end)}" if a.end else None,
                tag("span", f" — {a.failure}", class_="failure-text") if a.failure else None,
            )
            for a in item.attempts
        ],
        class_="attempts",
    )


def render(timeline: _view.RunTimeline, now: datetime) -> Markup:
    """The timeline table; open items run to ``now`` (the page's time)."""
    items = timeline.items
    if not items:
        return tag("p", "Nothing happened yet beyond the start.", class_="empty")
    times = [t for item in items for t in (item.start, item.end) if t is not None]
    start = timeline.started_at or min(times, default=now)
    end = timeline.closed_at or max([now, *times])
    span = max((end - start).total_seconds(), 1e-3)
    rows = []
    for item in items:
        x0 = _position(item.start, start, span, 0.0)
        x1 = _position(item.end, start, span, _AXIS) if item.end or item.is_open else x0
        width = max(x1 - x0, _MIN_BAR)
        x0 = min(x0, _AXIS - width)
        status = item.status.replace(" ", "_")
        bar = tag(
            "svg",
            tag("title", f"{item.kind} {item.name}: {item.status}"),
            tag(
                "rect",
                x=f"{x0:.1f}",
                y="2",
                width=f"{width:.1f}",
                height="12",
                rx="2",
                class_=f"bar bar-{status}{' open' if item.is_open else ''}",
            ),
            viewBox=f"0 0 {_AXIS} 16",
            preserveAspectRatio="none",
            class_="bar",
            role="img",
        )
        target: Child = None
        if item.target:
            target = join(" → ", tag("a", item.target, href=f"run?id={_quote(item.target)}"))
        rows.append(
            tag(
                "tr",
                tag("td", item.kind.replace("_", " "), class_="kind"),
                tag(
                    "td",
                    tag("strong", item.name),
                    target,
                    tag("div", item.detail, class_="muted") if item.detail else None,
                    _attempts(item),
                ),
                tag("td", tag("span", item.status, class_=f"item-status item-{status}")),
                tag("td", _view.format_time(item.start), class_="time"),
                tag("td", _view.format_duration(item.duration) if item.end else "…", class_="num"),
                tag("td", bar, class_="axis"),
                class_=f"item item-{item.kind}",
            )
        )
    head = tag(
        "thead",
        tag(
            "tr",
            [tag("th", h) for h in ("", "What", "Status", "Started", "Took")],
            tag(
                "th",
                tag(
                    "div",
                    tag("span", _view.format_time(start)),
                    tag("span", _view.format_time(end)),
                    class_="axis-ends",
                ),
                class_="axis",
            ),
        ),
    )
    return tag("table", head, tag("tbody", rows), class_="timeline", id="timeline-table")


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
