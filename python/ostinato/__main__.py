"""``ostinato`` command line: lint workflow code, migrate a database, inspect workflows."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import orjson


def _lint(argv: Sequence[str]) -> int:
    try:
        from ostinato_lint import main as lint_main
    except ImportError:
        print(
            "ostinato lint needs the analyzer: pip install 'ostinato[lint]' "
            "(or pip install ./analyzer from a source checkout)",
            file=sys.stderr,
        )
        return 2
    return int(lint_main(list(argv)))


async def _migrate(url: str) -> int:
    from ._connect import connect

    backend = connect(url)
    await backend.open()  # opening applies pending migrations
    await backend.close()
    print("schema is up to date")
    return 0


async def _inspect(args: argparse.Namespace) -> int:
    from ._client import Client
    from ._connect import connect

    backend = connect(args.url)
    client = Client(backend)
    try:
        if args.command == "list":
            page, cursor = await client.list_workflows(status=args.status, limit=args.limit)
            for d in page:
                blocked = f"  BLOCKED: {d.blocked_reason}" if d.blocked_reason else ""
                print(
                    f"{d.instance_id}\t{d.workflow_name}\t{d.status}\t"
                    f"{d.created_at:%Y-%m-%d %H:%M:%S}{blocked}"
                )
            if cursor:
                print(f"(more: --cursor {cursor})")
        elif args.command == "describe":
            d = await client.get_handle(args.id).describe()
            out: dict[str, Any] = {
                k: (str(v) if not isinstance(v, (int, str, type(None), list)) else v)
                for k, v in d.__dict__.items()
            }
            out["vars"] = await client.get_vars(args.id)
            print(orjson.dumps(out, option=orjson.OPT_INDENT_2, default=str).decode())
        elif args.command == "history":
            for event in await client.get_handle(args.id, run_id=args.run_id).history():
                print(orjson.dumps(event).decode())
        elif args.command == "cancel":
            await client.get_handle(args.id).cancel(args.reason)
        elif args.command == "terminate":
            await client.get_handle(args.id).terminate(args.reason)
    finally:
        await backend.close()
    return 0


def _ui(args: argparse.Namespace) -> int:
    try:
        from .ui._serve import serve
    except ImportError:
        print(
            "ostinato ui needs the web UI's dependencies: pip install 'ostinato[ui]'",
            file=sys.stderr,
        )
        return 2
    return serve(args.url, host=args.host, port=args.port, allow_actions=args.allow_actions)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lint":
        return _lint(argv[1:])
    parser = argparse.ArgumentParser(prog="ostinato", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lint", help="check workflow code for nondeterminism (see docs/lint)")
    db = sub.add_parser("db", help="database operations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser("migrate", help="create or upgrade the schema")
    migrate.add_argument("url")
    lst = sub.add_parser("list", help="list workflows")
    lst.add_argument("url")
    lst.add_argument("--status")
    lst.add_argument("--limit", type=int, default=50)
    for name in ("describe", "history", "cancel", "terminate"):
        p = sub.add_parser(name, help=f"{name} one workflow")
        p.add_argument("url")
        p.add_argument("id")
        if name == "history":
            p.add_argument("--run-id")
        if name in ("cancel", "terminate"):
            p.add_argument("--reason", default=f"{name} from the command line")
    ui = sub.add_parser("ui", help="serve the web UI (needs: pip install 'ostinato[ui]')")
    ui.add_argument("url", help="the store, e.g. sqlite:///app.db or postgresql://...")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8233, help="port to listen on (default 8233)")
    ui.add_argument(
        "--allow-actions", action="store_true", help="offer signal/cancel/terminate buttons"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "ui":
            return _ui(args)
        if args.command == "db":
            return asyncio.run(_migrate(args.url))
        return asyncio.run(_inspect(args))
    except Exception as exc:  # a clear one-line error, not a traceback
        print(f"ostinato: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
