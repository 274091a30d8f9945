"""``ostinato delete / delete-closed / redact``: remove closed workflows, or scrub the
payloads of one (see docs/retention.md).

Both are irreversible, so both want ``--yes``; without it they say what they would do and
change nothing."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from .._client import Client
from .._retention import check_statuses
from ._inspect import Output
from ._term import safe

__all__ = ["delete", "delete_closed", "parse_age", "redact"]

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a sum of them (``1d12h``)."""
    parts = _AGE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError
    return sum((timedelta(**{_UNITS[u]: float(n)}) for n, u in parts), timedelta())


parse_age.__name__ = "age like 30d, 12h, 90m"  # argparse names the type in its error


def _unconfirmed(out: Output, what: str) -> int:
    out.lines([f"this would {what}; it cannot be undone: add --yes to do it"])
    return 1


async def delete(client: Client, args: argparse.Namespace, out: Output) -> int:
    if not args.yes:
        return _unconfirmed(out, f"delete workflow {safe(args.id)!r} and all its runs")
    await client.delete(args.id)
    out.lines([f"deleted workflow {safe(args.id)!r} and all its runs"])
    return 0


async def delete_closed(client: Client, args: argparse.Namespace, out: Output) -> int:
    check_statuses(args.status or None)  # a bad status is an error even without --yes
    which = "" if not args.status else " or ".join(args.status) + " "
    what = f"delete every {which}workflow closed more than {args.older_than} ago"
    if args.limit is not None:
        what += f" (at most {args.limit})"
    if not args.yes:
        return _unconfirmed(out, what)
    count = await client.delete_closed(
        older_than=args.older_than, statuses=args.status or None, limit=args.limit
    )
    out.lines([f"deleted {count} closed workflow{'' if count == 1 else 's'}"])
    return 0


async def redact(client: Client, args: argparse.Namespace, out: Output) -> int:
    run = f" (run {safe(args.run_id)})" if args.run_id else ""
    what = f"scrub every payload of workflow {safe(args.id)!r}{run}"
    if not args.yes:
        return _unconfirmed(out, what)
    await client.get_handle(args.id, run_id=args.run_id).redact()
    out.lines([f"redacted workflow {safe(args.id)!r}{run}: its payloads are gone"])
    return 0
