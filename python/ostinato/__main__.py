"""``ostinato`` command line: lint workflow code, migrate a database, inspect and steer
workflows (see docs/cli.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

Handler = Callable[[Any, argparse.Namespace, Any], Awaitable[int]]


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


async def _with_client(args: argparse.Namespace) -> int:
    """Connect to ``args.url``, run the subcommand's handler, close."""
    from ._cli._inspect import Output
    from ._cli._term import Painter, wants_colour
    from ._client import Client
    from ._connect import connect

    backend = connect(args.url)
    out = Output(sys.stdout, Painter(wants_colour(sys.stdout)))
    try:
        handler: Handler = args.handler
        return await handler(Client(backend), args, out)
    finally:
        await backend.close()


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit code 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _handlers() -> dict[str, Handler]:
    from ._cli import _actions, _inspect, _retention

    return {
        "list": _inspect.list_runs,
        "describe": _inspect.describe,
        "history": _inspect.history,
        "show": _inspect.show,
        "stats": _inspect.stats,
        "diagram": _inspect.diagram,
        "signal": _actions.signal,
        "cancel": _actions.cancel,
        "terminate": _actions.terminate,
        "pause": _actions.pause,
        "resume": _actions.resume,
        "delete": _retention.delete,
        "delete-closed": _retention.delete_closed,
        "redact": _retention.redact,
    }


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError
    return value


_positive.__name__ = "positive integer"  # argparse names the type in its error


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError
    return key, value


_tag.__name__ = "KEY=VALUE tag"


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand is registered here."""
    parser = _Parser(prog="ostinato", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("lint", help="check workflow code for nondeterminism (see docs/lint)")
    db = sub.add_parser("db", help="database operations")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    migrate = db_sub.add_parser("migrate", help="create or upgrade the schema")
    migrate.add_argument("url")

    handlers = _handlers()

    def command(name: str, help: str, *, one_run: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("url", help="backend URL: sqlite:///app.db, postgresql://...")
        if one_run:
            p.add_argument("id", help="workflow id")
        p.set_defaults(handler=handlers[name])
        return p

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON (see docs/cli.md)")

    def run_id_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-id", help="an earlier run of the workflow (default: latest)")

    lst = command("list", "list workflows (latest run of each, newest first)", one_run=False)
    lst.add_argument("--status", help="running, completed, failed, canceled, blocked, ...")
    lst.add_argument("--workflow", help="only runs of this workflow name")
    lst.add_argument("--queue", help="only runs on this queue")
    lst.add_argument(
        "--tag",
        type=_tag,
        action="append",
        metavar="KEY=VALUE",
        help="only runs with this tag (repeat for several: all must match)",
    )
    lst.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    lst.add_argument("--cursor", help="the next page, as printed after the last row")
    json_flag(lst)
    for name, help in (
        ("describe", "status, pending work and variables of one workflow"),
        ("history", "the events of one run, one row each"),
        ("show", "the timeline of one run: activities, timers, signals, children"),
    ):
        p = command(name, help)
        run_id_flag(p)
        json_flag(p)
        if name == "history":
            p.add_argument("--payloads", action="store_true", help="each event in full, as JSON")
    st = command("stats", "runs by status and workflow, open runs per queue", one_run=False)
    st.add_argument(
        "--max-runs", type=_positive, default=100_000, help="stop counting after this many"
    )
    json_flag(st)
    dia = command("diagram", "a sequence diagram of one run (Mermaid, or SVG)")
    run_id_flag(dia)
    dia.add_argument("--format", choices=("mermaid", "svg"), default="mermaid")
    sig = command("signal", "send a signal to a workflow")
    sig.add_argument("name", help="signal name")
    sig.add_argument("value", nargs="?", help="JSON value (default null)")
    for name in ("cancel", "terminate"):
        p = command(name, f"{name} one workflow")
        p.add_argument("--reason", default=f"{name} from the command line")
    pause = command("pause", "pause one workflow: no new workflow task or activity attempt")
    pause.add_argument("--reason", help="why (shown by describe)")
    command("resume", "resume a paused workflow, or retry a blocked one's task now")
    # Retention (docs/retention.md): irreversible, so only with --yes.
    from ._cli._retention import parse_age

    confirm = "really do it (without it, only say what would be done)"
    dele = command("delete", "delete a closed workflow and all its runs")
    dele.add_argument("--yes", action="store_true", help=confirm)
    red = command("redact", "scrub every payload of a closed workflow run (PII deletion)")
    run_id_flag(red)
    red.add_argument("--yes", action="store_true", help=confirm)
    closed = command("delete-closed", "delete workflows closed long enough ago", one_run=False)
    closed.add_argument(
        "--older-than", type=parse_age, required=True, help="closed longer ago: 30d, 12h, 90m"
    )
    closed.add_argument(
        "--status", action="append", help="only this closed status (repeatable; default all)"
    )
    closed.add_argument("--limit", type=_positive, help="delete at most this many")
    closed.add_argument("--yes", action="store_true", help=confirm)
    # The web UI (docs/ui.md): its own server, not a client command.
    ui = sub.add_parser("ui", help="serve the web UI (needs: pip install 'ostinato[ui]')")
    ui.add_argument("url", help="backend URL: sqlite:///app.db, postgresql://...")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8233, help="port to listen on (default 8233)")
    ui.add_argument("--allow-actions", action="store_true", help="offer signal/cancel/terminate")
    return parser


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
    args = build_parser().parse_args(argv)
    try:
        if args.command == "db":
            return asyncio.run(_migrate(args.url))
        if args.command == "ui":
            return _ui(args)
        return asyncio.run(_with_client(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ostinato history ... | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a clear one-line error, not a traceback
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"ostinato: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
