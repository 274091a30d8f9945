"""Opaque tokens a backend hands out: lease tokens (which fence a worker's writes) and
``list_runs`` cursors."""

from __future__ import annotations

import secrets

__all__ = ["decode_cursor", "encode_cursor", "new_lease_token"]


def new_lease_token() -> str:
    return secrets.token_hex(16)


def encode_cursor(position: int) -> str:
    return f"r{position:x}"


def decode_cursor(cursor: str) -> int:
    invalid = f"invalid list cursor {cursor!r:.80}: pass the cursor list_runs returned"
    if not isinstance(cursor, str) or not cursor.startswith("r") or len(cursor) > 17:
        raise ValueError(invalid)
    try:
        position = int(cursor[1:], 16)
    except ValueError:
        raise ValueError(invalid) from None
    if not 0 <= position < 2**63:
        raise ValueError(invalid)
    return position
