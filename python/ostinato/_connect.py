"""``connect(url)``: build a storage backend from a URL.

Accepted URLs (see docs/backends.md):

- ``memory://`` — in this process's memory; gone when it exits.
- ``sqlite:///relative/path.db`` — a file relative to the working directory.
- ``sqlite:////absolute/path.db`` — an absolute path (``sqlite:///`` followed by the path).
- ``sqlite://:memory:`` — a private in-memory SQLite database.
- ``postgresql://user:password@host:port/dbname`` (or ``postgres://``) — needs
  ``pip install 'ostinato[postgres]'``.

SQLite URLs take options as a query string too: ``sqlite:///app.db?durable=false``.
Keyword options (``clock=``, and backend-specific ones) are passed to the backend.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from ._backends._contract import Backend
from ._backends._mask import mask_url

__all__ = ["connect"]

_SCHEMES = "memory://, sqlite:///PATH, sqlite://:memory:, postgresql://..."

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def connect(url: str, **options: Any) -> Backend:
    """Return the backend named by ``url``, not yet opened (``await backend.open()``, or let
    the worker / client open it).

    Raises ``ValueError`` for an unknown scheme or a malformed URL, and ``ImportError`` for
    PostgreSQL when psycopg is not installed.
    """
    if not isinstance(url, str):
        raise TypeError(f"connect() takes a URL string, not {type(url).__name__}")
    # Checked here rather than by check_text, whose error would show the URL unmasked.
    if "\x00" in url:
        raise ValueError(f"url must not contain a NUL character (\\x00): {mask_url(url)!r}")
    if not url.isascii() and url.encode("utf-8", "surrogatepass") != url.encode("utf-8", "replace"):
        raise ValueError(f"url is not valid text (it contains a lone surrogate): {mask_url(url)!r}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        hint = ""
        for known in ("postgresql", "postgres", "sqlite", "memory"):
            if url.lower().startswith(known) and not url.lower().startswith(known + "ql"):
                hint = f" (a URL starts with {known}://)"
                break
        raise ValueError(f"not a backend URL: {mask_url(url)!r}{hint}; supported: {_SCHEMES}")
    if scheme == "memory":
        if rest:
            raise ValueError(f"memory:// takes no path or options, got {url!r}")
        from ._backends.memory import MemoryBackend

        return MemoryBackend(**options)
    if scheme == "sqlite":
        return _connect_sqlite(url, rest, options)
    if scheme in ("postgresql", "postgres"):
        return _connect_postgres(url, options)
    raise ValueError(
        f"unsupported backend URL scheme {scheme!r} in {mask_url(url)!r}; supported: {_SCHEMES}"
    )


def _connect_sqlite(url: str, rest: str, options: dict[str, Any]) -> Backend:
    from ._backends.sqlite import SqliteBackend

    location, _, query = rest.partition("?")
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        options.setdefault(name, _option_value(url, name, value))
    if location == ":memory:":
        return SqliteBackend(":memory:", **options)
    if not location.startswith("/") or location == "/":
        raise ValueError(
            f"expected sqlite:///PATH (relative) or sqlite:////ABSOLUTE/PATH, got {url!r}"
        )
    # "sqlite:///x.db" -> "x.db"; "sqlite:////tmp/x.db" -> "/tmp/x.db".
    path = unquote(location[1:])
    return SqliteBackend(path, **options)


def _option_value(url: str, name: str, value: str) -> object:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"option {name}={value!r} in {url!r} is not a boolean or number") from None


def _connect_postgres(url: str, options: dict[str, Any]) -> Backend:
    try:
        # Written alongside this module; the ignore keeps mypy quiet until it lands.
        from ._backends.postgres import (  # type: ignore[import-not-found,unused-ignore]
            PostgresBackend,
        )
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] in ("psycopg", "psycopg_pool"):
            raise ImportError(
                "the PostgreSQL backend needs psycopg: pip install 'ostinato[postgres]'"
            ) from None
        raise
    backend: Backend = PostgresBackend(url, **options)
    return backend
