"""``ostinato signal / cancel / terminate / pause / resume``: change a run, then say in one
line what was done."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from .._client import Client
from ._inspect import Output
from ._term import safe

__all__ = ["cancel", "parse_value", "pause", "resume", "signal", "terminate"]


def parse_value(text: str | None) -> Any:
    """A signal value given on the command line: JSON (``'{"ok": true}'``, ``42``,
    ``'"text"'``); nothing given is ``null``."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(
            f"the signal value must be JSON ({exc}); quote text twice: '\"yes\"'"
        ) from None


async def signal(client: Client, args: argparse.Namespace, out: Output) -> int:
    value = parse_value(args.value)
    await client.get_handle(args.id).signal(args.name, value)
    shown = orjson.dumps(value).decode()
    out.lines(
        [f"sent signal {safe(args.name)!r} to workflow {safe(args.id)!r} with value {safe(shown)}"]
    )
    return 0


async def cancel(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.get_handle(args.id).cancel(args.reason)
    out.lines([f"asked workflow {safe(args.id)!r} to cancel (reason: {safe(args.reason)})"])
    return 0


async def terminate(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.get_handle(args.id).terminate(args.reason)
    out.lines([f"terminated workflow {safe(args.id)!r} (reason: {safe(args.reason)})"])
    return 0


async def pause(client: Client, args: argparse.Namespace, out: Output) -> int:
    if await client.get_handle(args.id).pause(args.reason):
        why = f" (reason: {safe(args.reason)})" if args.reason else ""
        out.lines([f"paused workflow {safe(args.id)!r}{why}"])
    else:
        out.lines([f"workflow {safe(args.id)!r} was paused already"])
    return 0


async def resume(client: Client, args: argparse.Namespace, out: Output) -> int:
    if await client.get_handle(args.id).resume():
        out.lines([f"resumed workflow {safe(args.id)!r}: its pending work is handed out now"])
    else:
        out.lines([f"workflow {safe(args.id)!r} is neither paused nor blocked: nothing to do"])
    return 0
