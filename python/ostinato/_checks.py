"""Checks of names and ids given to workflow APIs, at the call.

A value the store cannot hold (a lone surrogate; a NUL character in an id or queue name,
which PostgreSQL refuses in text columns) must fail where workflow code passed it, with an
error naming the argument, not later when the workflow task is committed.
"""

from __future__ import annotations

__all__ = [
    "MAX_PRIORITY",
    "MAX_TAGS",
    "MAX_TAG_KEY",
    "MAX_TAG_VALUE",
    "MIN_PRIORITY",
    "check_priority",
    "check_tags",
    "check_text",
]


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


# Limits of a run's tags (docs/search.md): enough for ids and labels, small enough that
# every backend indexes them cheaply.
MAX_TAGS = 32
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256


def check_tags(value: object, what: str = "tags") -> dict[str, str]:
    """``value`` as a plain ``{str: str}`` dict of at most ``MAX_TAGS`` entries (keys 1 to
    ``MAX_TAG_KEY`` characters, values up to ``MAX_TAG_VALUE``), else a ``TypeError`` /
    ``ValueError`` naming ``what``."""
    if not isinstance(value, dict):
        raise TypeError(
            f"{what} must be a dict of str to str, not {type(value).__name__} ({value!r:.80})"
        )
    if len(value) > MAX_TAGS:
        raise ValueError(f"{what} may have at most {MAX_TAGS} entries, not {len(value)}")
    tags: dict[str, str] = {}
    for key, item in value.items():
        check_text(key, f"{what} key")
        if len(key) > MAX_TAG_KEY:
            raise ValueError(
                f"{what} key {key[:40]!r}... is {len(key)} characters long; "
                f"the limit is {MAX_TAG_KEY}"
            )
        check_text(item, f"{what}[{key!r}]", empty=True)
        if len(item) > MAX_TAG_VALUE:
            raise ValueError(
                f"{what}[{key!r}] is {len(item)} characters long; the limit is {MAX_TAG_VALUE}"
            )
        tags[key] = item
    return tags


# The range of ``priority=`` (docs/queues.md): with one level worth PRIORITY_AGING seconds of
# waiting (``_backends._queue_limits``), work is passed over by newer work for at most
# (MAX_PRIORITY - MIN_PRIORITY) levels: 100 minutes. Not below 0: a claim rank is then never
# later than the ready time, which keeps the SQL claims' index walks as short as before for
# unprioritised work (docs/queues.md).
MIN_PRIORITY = 0
MAX_PRIORITY = 100


def check_priority(value: object, what: str = "priority") -> int:
    """``value`` if it is an ``int`` from ``MIN_PRIORITY`` to ``MAX_PRIORITY``, else a
    ``TypeError`` / ``ValueError`` naming ``what``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} ({value!r:.80})")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(
            f"{what} must be between {MIN_PRIORITY} and {MAX_PRIORITY} (higher runs first), "
            f"not {value}"
        )
    return value
