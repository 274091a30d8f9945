"""Options in PostgreSQL URLs (ostinato's own ``?schema=...&listen=...``, which libpq would
refuse), the connection parameters we add, and masking credentials in DSNs and messages."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict

from .._mask import mask_url

T = TypeVar("T")

DEFAULT_SCHEMA = "ostinato"


# ---- options in URLs ---------------------------------------------------------------------

_OPTION_DEFAULTS: dict[str, object] = {
    "min_pool_size": 1,
    "max_pool_size": 10,
    "schema": DEFAULT_SCHEMA,
    "listen": True,
    "poll_interval": 1.0,
    "connect_timeout": 10.0,
    "auto_migrate": True,
    "prepare_threshold": 5,
}
_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def split_url_options(dsn: str) -> tuple[str, dict[str, object]]:
    """Take ostinato's own options out of a URL's query string (libpq would refuse them):
    (the URL for libpq, {option: value})."""
    if "://" not in dsn or "?" not in dsn:
        return dsn, {}
    parts = urlsplit(dsn)
    kept: list[tuple[str, str]] = []
    options: dict[str, object] = {}
    for name, raw in parse_qsl(parts.query, keep_blank_values=True):
        default = _OPTION_DEFAULTS.get(name, _MISSING)
        if default is _MISSING:
            kept.append((name, raw))
            continue
        try:
            if name == "schema":
                value: object = raw
            elif name == "prepare_threshold" and raw.lower() in ("", "none", "off"):
                value = None
            elif isinstance(default, bool):
                value = _BOOLEANS[raw.lower()]
            elif isinstance(default, int):
                value = int(raw)
            else:
                value = float(raw)
        except (KeyError, ValueError):
            raise ValueError(
                f"invalid value {raw!r} for option {name!r} in the PostgreSQL URL"
            ) from None
        options[name] = value
    query = urlencode(kept)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment)), options


_MISSING = object()


def _pick(from_url: dict[str, object], name: str, value: T) -> T:
    """The keyword argument, unless it was left at its default and the URL sets the option."""
    if name in from_url and value == _OPTION_DEFAULTS[name]:
        return cast(T, from_url[name])
    return value


# ---- credentials ----------------------------------------------------------------------------

_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_dsn(dsn: str) -> str:
    """The connection string with any password replaced by ``***``."""
    masked = mask_url(dsn) if "://" in dsn else dsn
    # key=value strings, and ?password=... in URLs
    masked = _KV_PASSWORD.sub(r"\1***", masked)
    return _scrub(masked, _secrets_of(dsn))


def _secrets_of(dsn: str) -> list[str]:
    found: set[str] = set()
    with contextlib.suppress(Exception):
        password = conninfo_to_dict(dsn).get("password")
        if password:
            found.add(str(password))
    if "://" in dsn:
        with contextlib.suppress(Exception):
            password = urlsplit(dsn).password
            if password:
                found.add(password)
    for secret in list(found):
        found.add(quote(secret, safe=""))
    # Longest first, so a secret that contains another is replaced whole.
    return sorted((s for s in found if len(s) >= 2), key=len, reverse=True)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _connection_options(dsn: str, connect_timeout: float) -> dict[str, Any]:
    """Connection parameters we add unless the DSN sets them: autocommit (transactions are
    explicit), a connect timeout, and TCP keepalives so a dead server or a broken network
    path is noticed within about a minute instead of the system's default of hours."""
    given = conninfo_to_dict(dsn)
    options: dict[str, Any] = {"autocommit": True}
    defaults = {
        "connect_timeout": max(1, int(connect_timeout)),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "application_name": "ostinato",
    }
    for name, value in defaults.items():
        if name not in given:
            options[name] = value
    return options
