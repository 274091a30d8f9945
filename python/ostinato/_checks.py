"""Checks of names and ids given to workflow APIs, at the call.

A value the store cannot hold (a lone surrogate; a NUL character in an id or queue name,
which PostgreSQL refuses in text columns) must fail where workflow code passed it, with an
error naming the argument, not later when the workflow task is committed.
"""

from __future__ import annotations

__all__ = ["check_text"]


def check_text(value: object, what: str, *, empty: bool = False, allow_nul: bool = False) -> str:
    """``value`` if it is a string every backend can store, else a ``TypeError`` /
    ``ValueError`` naming ``what``: not empty (unless ``empty``), no NUL character (PostgreSQL
    text cannot hold one; ``allow_nul`` for names the backends store as bytes: variables,
    signals) and no lone surrogate (not encodable as UTF-8)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__} ({value!r:.80})")
    if not value and not empty:
        raise ValueError(f"{what} must not be empty")
    if not allow_nul and "\x00" in value:
        raise ValueError(f"{what} must not contain a NUL character (\\x00): {value!r:.80}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} is not valid text: it contains the lone surrogate "
            f"{value[exc.start]!r} at index {exc.start}, which UTF-8 cannot encode"
        ) from None
    return value
