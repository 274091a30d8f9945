"""A run as a sequence diagram: the workflow, its activities (with attempts), timers, signals
and children as participants exchanging messages in history order; rendered as Mermaid text
(``mermaid``) or as a self-contained SVG (``svg``, for pages that cannot load mermaid.js)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ._format import format_duration, format_time, status_style
from ._timeline import RunTimeline, TimelineItem

__all__ = ["Sequence", "Step", "mermaid", "sequence", "svg"]

_MAX_TEXT = 80
# Characters Mermaid reads as syntax inside a statement, as its entity codes.
_MERMAID_CODES = str.maketrans({"#": "#35;", ";": "#59;", "<": "#60;", ">": "#62;"})


@dataclass(frozen=True, slots=True)
class Step:
    """A message from ``source`` to ``target`` (``dashed`` for a reply), or a note over
    ``source`` when ``note`` is true. ``status`` picks the colour."""

    source: str
    target: str
    text: str
    dashed: bool = False
    note: bool = False
    status: str = ""


@dataclass(frozen=True, slots=True)
class Sequence:
    """Participants as (alias, label) in order of appearance, and the steps between them."""

    participants: tuple[tuple[str, str], ...]
    steps: tuple[Step, ...]


class _Participants:
    def __init__(self) -> None:
        self.order: list[tuple[str, str]] = []
        self.by_label: dict[tuple[str, str], str] = {}

    def get(self, prefix: str, label: str) -> str:
        key = (prefix, label)
        if key not in self.by_label:
            alias = f"{prefix}{sum(1 for p, _ in self.by_label if p == prefix) + 1}"
            self.by_label[key] = alias
            self.order.append((alias, label))
        return self.by_label[key]


def _attempt_text(item: TimelineItem) -> str:
    last = item.attempts[-1].number if item.attempts else 1
    return f" on attempt {last}" if last > 1 else ""


def _outcome(item: TimelineItem) -> str:
    took = f" after {format_duration(item.duration)}" if item.duration is not None else ""
    if item.failure and item.status in ("failed", "canceled"):
        return f"{item.status}{_attempt_text(item)}{took}: {item.failure}"
    # A timer's and an external signal's or cancel's detail belongs to the request, not here.
    shown = item.kind not in ("timer", "signal_external", "cancel_external")
    detail = f" {item.detail}" if item.detail and shown else ""
    return f"{item.status}{_attempt_text(item)}{took}{detail}"


def sequence(timeline: RunTimeline) -> Sequence:
    """The diagram's participants and steps, shared by ``mermaid`` and ``svg``."""
    parts = _Participants()
    wf = parts.get("W", f"{timeline.workflow_name} ({timeline.instance_id})")
    outside = "Outside"
    events: list[tuple[int, int, Step]] = []  # (seq, order, step): starts before ends
    for item in timeline.items:
        if item.kind == "activity":
            other = parts.get("A", item.name)
            events.append((item.first_seq, 0, Step(wf, other, item.name)))
            if item.is_open:
                text = f"{item.status}{_attempt_text(item)}"
                if item.failure:
                    text += f", last failure: {item.failure}"
                if item.next_attempt_at:
                    text += f", next attempt {format_time(item.next_attempt_at)}"
                events.append(
                    (item.last_seq, 1, Step(other, other, text, note=True, status=item.status))
                )
            else:
                events.append(
                    (item.last_seq, 1, Step(other, wf, _outcome(item), True, status=item.status))
                )
        elif item.kind == "timer":
            other = parts.get("T", "timers")
            events.append((item.first_seq, 0, Step(wf, other, item.name)))
            if not item.is_open:
                events.append(
                    (item.last_seq, 1, Step(other, wf, _outcome(item), True, status=item.status))
                )
        elif item.kind in ("signal", "cancel_request"):
            other = parts.get("O", outside)
            label = (
                f"signal {item.name} {item.detail}"
                if item.kind == "signal"
                else f"cancel: {item.detail}"
            )
            events.append((item.first_seq, 0, Step(other, wf, label, status=item.status)))
        elif item.kind in ("child", "signal_external", "cancel_external"):
            other = parts.get("C", item.target or item.name)
            request = {
                "child": f"start child {item.name}",
                "signal_external": f"signal {item.name} {item.detail}",
                "cancel_external": f"cancel: {item.detail}" if item.detail else "cancel",
            }[item.kind]
            events.append((item.first_seq, 0, Step(wf, other, request.strip())))
            if not item.is_open:
                events.append(
                    (item.last_seq, 1, Step(other, wf, _outcome(item), True, status=item.status))
                )
        else:  # side effects, patches, timeouts, continue-as-new, terminate: on the workflow
            name = f"patched {item.name}" if item.kind == "patch" else item.name
            text = f"{name} {item.detail}".strip()
            events.append((item.first_seq, 0, Step(wf, wf, text, note=True, status=item.status)))
    events.sort(key=lambda e: (e[0], e[1]))
    start = Step(wf, wf, f"started {format_time(timeline.started_at)}", note=True)
    took = f" after {format_duration(timeline.duration)}" if timeline.duration is not None else ""
    ending = timeline.failure or timeline.blocked_reason or ""
    end = Step(
        wf,
        wf,
        f"{timeline.status}{took}" + (f": {ending}" if ending else ""),
        note=True,
        status=timeline.status,
    )
    return Sequence(tuple(parts.order), (start, *(step for _, _, step in events), end))


def _mm(text: str) -> str:
    """Text safe inside a Mermaid statement: one line, entity codes for the few characters
    Mermaid reads as syntax."""
    text = " ".join(text.split())
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 1] + "…"
    return text.translate(_MERMAID_CODES)


def mermaid(timeline: RunTimeline) -> str:
    """A Mermaid ``sequenceDiagram`` of the run (paste into any Mermaid renderer)."""
    diagram = sequence(timeline)
    lines = ["sequenceDiagram"]
    lines += [f"    participant {alias} as {_mm(label)}" for alias, label in diagram.participants]
    for step in diagram.steps:
        if step.note:
            lines.append(f"    Note over {step.source}: {_mm(step.text)}")
        else:
            arrow = "-->>" if step.dashed else "->>"
            if step.status in ("failed", "canceled", "timed_out"):
                arrow = "--x" if step.dashed else "-x"
            lines.append(f"    {step.source}{arrow}{step.target}: {_mm(step.text)}")
    return "\n".join(lines) + "\n"


# ---- SVG: columns for participants, one row per step ----------------------------------------
_COL, _ROW, _TOP, _FONT = 190, 30, 50, 12


def _cut(text: str, width: int) -> str:
    room = max(4, width // 7)
    return text if len(text) <= room else text[: room - 1] + "…"


def svg(timeline: RunTimeline) -> str:
    """The same diagram as a standalone SVG document (no scripts, text escaped)."""
    diagram = sequence(timeline)
    x = {alias: _COL // 2 + i * _COL for i, (alias, _) in enumerate(diagram.participants)}
    width = max(_COL, _COL * len(diagram.participants))
    height = _TOP + _ROW * (len(diagram.steps) + 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{_FONT}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
    ]
    for alias, label in diagram.participants:
        cx = x[alias]
        out.append(f'<line x1="{cx}" y1="{_TOP - 14}" x2="{cx}" y2="{height - 6}" stroke="#bbb"/>')
        out.append(
            f'<rect x="{cx - _COL // 2 + 6}" y="6" width="{_COL - 12}" height="26" rx="4" '
            'fill="#f6f8fa" stroke="#888"/>'
        )
        out.append(
            f'<text x="{cx}" y="24" text-anchor="middle">{escape(_cut(label, _COL - 16))}</text>'
        )
    for row, step in enumerate(diagram.steps):
        y = _TOP + _ROW * row + _ROW // 2
        color = status_style(step.status).color if step.status else "#444"
        a, b = x[step.source], x[step.target]
        if step.note or a == b:
            text = escape(_cut(step.text, width - 20))
            out.append(
                f'<text x="{a + 8}" y="{y + 4}" fill="{color}"><tspan font-weight="bold">'
                f"&#9632;</tspan> {text}</text>"
            )
            continue
        dash = ' stroke-dasharray="5,4"' if step.dashed else ""
        end = b - 4 if b > a else b + 4
        out.append(
            f'<line x1="{a}" y1="{y + 6}" x2="{end}" y2="{y + 6}" stroke="{color}"{dash} '
            'marker-end="url(#arrow)"/>'
        )
        text = escape(_cut(step.text, abs(b - a) + _COL - 20))
        out.append(f'<text x="{min(a, b) + 6}" y="{y}" fill="{color}">{text}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
