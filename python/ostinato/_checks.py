"""Checks of names and ids given to workflow APIs, at the call.

A value the store cannot hold (a lone surrogate; a NUL character in an id or queue name,
which PostgreSQL refuses in text columns) must fail where workflow code passed it, with an
error naming the argument, not later when the workflow task is committed.
"""

from __future__ import annotations

__all__ = ["check_text"]


def check_text(value: object, what: str, *, allow_nul: bool = False) -> str:
    """``value`` as a str that every backend can store; else TypeError/ValueError naming
    ``what``. ``allow_nul`` for names the backends store as bytes (variables, signals)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    if not allow_nul and "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters ('\\x00'), got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} must be valid Unicode text, but it contains a lone surrogate "
            f"({value[exc.start]!r} at index {exc.start}): {value!r}"
        ) from None
    return value
