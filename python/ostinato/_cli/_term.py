"""Terminal output without dependencies: colour decided once per stream, aligned columns,
user text made safe to print (no control characters reach the terminal)."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from typing import TextIO

from .._view import status_style

__all__ = ["Painter", "safe", "table"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def wants_colour(stream: TextIO) -> bool:
    """Colour on a terminal; never with ``NO_COLOR`` set (https://no-color.org) or
    ``TERM=dumb``; ``FORCE_COLOR`` turns it on for pipes (pagers such as ``less -R``)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def safe(text: object) -> str:
    """Text from the store as one printable line: control characters (an id holding an
    escape sequence, a newline in a reason) are shown escaped instead of acting on the
    terminal."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(
        c if c.isprintable() or c == " " else c.encode("unicode_escape").decode() for c in value
    )


class Painter:
    """Applies SGR codes when colour is on, and nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def sgr(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def status(self, status: str, text: str | None = None) -> str:
        return self.sgr(text if text is not None else status, status_style(status).ansi)

    def bold(self, text: str) -> str:
        return self.sgr(text, "1")

    def dim(self, text: str) -> str:
        return self.sgr(text, "2")


def visible_width(text: str) -> int:
    plain = _ANSI.sub("", text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in plain)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    painter: Painter,
    *,
    right: Sequence[int] = (),
    indent: str = "",
) -> list[str]:
    """Rows under headers in aligned columns (two spaces apart; the last column is not
    padded). Cells may already hold colour codes; ``right`` lists right-aligned columns."""
    widths = [visible_width(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], visible_width(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - visible_width(cell))
            if i == len(cells) - 1 and i not in right:
                out.append(cell)
            else:
                out.append(pad + cell if i in right else cell + pad)
        return (indent + "  ".join(out)).rstrip()

    return [painter.bold(line(headers))] + [line(row) for row in rows]
