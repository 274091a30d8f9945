"""Credentials out of sight: a backend URL with its password masked, for reprs, logs and
errors."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["mask_url"]

# "user:password@" anywhere (also in mistyped URLs such as postgresql:/host or
# postgres//host that urlsplit does not read as having a password), and password=... of
# key=value connection strings and query strings.
_USERINFO = re.compile(r"(?P<user>[^\s:/@?#&=]*):(?P<password>[^\s/?#]*)@")
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)


def _mask_loose(text: str) -> str:
    text = _USERINFO.sub(r"\g<user>:***@", text)
    return _KV_PASSWORD.sub(r"\g<key>***", text)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for reprs, logs and errors)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return _mask_loose(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{user}:***@{host}" + (f":{port}" if port is not None else "")
    return _mask_loose(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))
