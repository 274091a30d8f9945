"""A few lines of HTML building that escape everything by default.

Text is escaped when it becomes markup; only ``Markup`` (built here, from escaped parts) passes
through as it is. So a workflow input of ``<script>`` can only ever render as text: there is no
template language in which one forgotten filter lets it through.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TypeAlias

__all__ = ["Child", "Markup", "escape", "join", "tag"]


class Markup(str):
    """A string that is already HTML (every piece of text in it was escaped)."""

    __slots__ = ()


Child: TypeAlias = "Markup | str | int | float | Iterable[Child] | None"

# Elements that have no closing tag.
_VOID = frozenset({"br", "hr", "img", "input", "link", "meta"})


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def _render(child: Child, out: list[str]) -> None:
    if child is None or child is False:
        return
    if isinstance(child, (str, int, float)):
        out.append(escape(child))
    else:
        for item in child:
            _render(item, out)


def join(*children: Child) -> Markup:
    out: list[str] = []
    _render(list(children), out)
    return Markup("".join(out))


def tag(element: str, /, *children: Child, **attrs: str | int | bool | None) -> Markup:
    """``tag("a", "text", href=url, class_="x")``: attribute names lose a trailing ``_`` and
    turn ``_`` into ``-`` (``data_id`` -> ``data-id``); True is a bare attribute, None and
    False leave it out."""
    parts = [element]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        if value is True:
            parts.append(attr)
        else:
            parts.append(f'{attr}="{escape(value)}"')
    opening = f"<{' '.join(parts)}>"
    if element in _VOID:
        return Markup(opening)
    return Markup(f"{opening}{join(*children)}</{element}>")
