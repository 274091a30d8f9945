"""``ostinato lint PATH...`` / ``python -m ostinato_lint PATH...``: flake8's output, no flake8."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import report
from ._version import __version__
from .api import lint_paths
from .config import ConfigError
from .rules import ALL_RULES, RULES_BY_CODE

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
_EPILOG = """\
exit status:
  0  no findings (or --exit-zero)
  1  findings
  2  usage error, invalid configuration, or a file that could not be read or parsed
     (the other files are still checked and reported)

Notes (detected presets, unconfigured frameworks) and errors go to stderr; with
--format json/sarif, stdout is only the document.
"""


def _codes(value: str) -> list[str]:
    codes = [code.strip().upper() for code in value.split(",") if code.strip()]
    for code in codes:
        if not any(known.startswith(code) for known in RULES_BY_CODE):
            raise argparse.ArgumentTypeError(
                f"unknown code {code!r} (known: {', '.join(RULES_BY_CODE)})"
            )
    return codes


def _parser(prog: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Flag nondeterminism (clocks, randomness, I/O, threads ...) in durable "
        "workflow code (ostinato, Temporal, DBOS).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    parser.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="text (path:line:col: CODE message), json, or sarif (SARIF 2.1.0, for GitHub code "
        "scanning); default text",
    )
    parser.add_argument(
        "--statistics",
        action="store_true",
        help="count the findings per code (after the text output; on stderr for json/sarif)",
    )
    parser.add_argument(
        "--output", metavar="FILE", help="write the report to FILE instead of stdout"
    )
    parser.add_argument(
        "--select", type=_codes, default=[], metavar="CODES", help="only these codes/prefixes"
    )
    parser.add_argument(
        "--ignore", type=_codes, default=[], metavar="CODES", help="skip these codes/prefixes"
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when there are findings"
    )
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    parser.add_argument("--version", action="version", version=f"ostinato-lint {__version__}")
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the linter; returns the exit status instead of exiting (for ``ostinato lint``)."""
    parser = _parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help/--version (0) and bad usage (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    if args.list_rules:
        for rule in ALL_RULES:
            print(f"{rule.code}  {rule.name:<24} {rule.summary}")
        return EXIT_CLEAN
    if not args.paths:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: give at least one PATH to lint", file=sys.stderr)
        return EXIT_ERROR
    try:
        result = lint_paths(args.paths, select=args.select, ignore=args.ignore)
    except ConfigError as error:
        print(f"{parser.prog}: configuration error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.format == "json":
        document = report.as_json(result.findings)
    elif args.format == "sarif":
        document = report.sarif(result)
    else:
        document = report.text(result.findings)
    if args.statistics and args.format == "text" and not args.output:
        document += report.statistics(result)
    elif args.statistics:
        sys.stderr.write(report.statistics(result))
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(document)
        except OSError as error:
            print(f"{parser.prog}: cannot write --output {args.output}: {error}", file=sys.stderr)
            return EXIT_ERROR
    else:
        sys.stdout.write(document)
    for message in result.notes:
        print(message, file=sys.stderr)
    for message in result.errors:
        print(message, file=sys.stderr)
    if result.errors:
        return EXIT_ERROR
    if result.findings and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN
