"""Output formats for the standalone runner: text (flake8's), JSON, SARIF 2.1.0, statistics."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .api import LintResult
from .finding import Finding
from .rules import ALL_RULES, RULES_BY_CODE

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DOCS_PATH = "docs/lint"


def text(findings: Sequence[Finding]) -> str:
    return "".join(f"{finding.format()}\n" for finding in findings)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps([finding.as_dict() for finding in findings], indent=2) + "\n"


def _uri(path: str) -> tuple[str, bool]:
    """A forward-slash URI relative to the working directory when possible (what GitHub code
    scanning resolves against the checkout), else an absolute file URI."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix(), True
    except ValueError:
        return resolved.as_uri(), False


def sarif(result: LintResult) -> str:
    """One SARIF run: every rule in ``tool.driver.rules``, one result per finding."""
    index = {rule.code: position for position, rule in enumerate(ALL_RULES)}
    rules = [
        {
            "id": rule.code,
            "name": "".join(part.capitalize() for part in rule.name.split("-")),
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": f"{rule.summary}: it {rule.problem}."},
            "help": {
                "text": f"{rule.advice}. See {DOCS_PATH}/{rule.code}.md",
                "markdown": f"{rule.advice}. See [{rule.code}]({DOCS_PATH}/{rule.code}.md).",
            },
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["determinism", "durable-workflows"]},
        }
        for rule in ALL_RULES
    ]
    results: list[dict[str, Any]] = []
    for finding in result.findings:
        uri, relative = _uri(finding.path)
        location: dict[str, Any] = {"uri": uri}
        if relative:
            location["uriBaseId"] = "%SRCROOT%"
        results.append(
            {
                "ruleId": finding.code,
                "ruleIndex": index[finding.code],
                "level": "error",
                "message": {"text": f"{finding.code} {finding.message}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": location,
                            "region": {"startLine": finding.line, "startColumn": finding.col},
                        },
                        "logicalLocations": [
                            {"fullyQualifiedName": finding.workflow, "kind": "function"}
                        ],
                    }
                ],
            }
        )
    notifications = [
        {"level": "error", "message": {"text": message}} for message in result.errors
    ] + [{"level": "note", "message": {"text": message}} for message in result.notes]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "ostinato-lint",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": rules,
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().resolve().as_uri() + "/"}},
        "invocations": [
            {
                "executionSuccessful": not result.errors,
                "toolExecutionNotifications": notifications,
            }
        ],
        "results": results,
    }
    document = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(document, indent=2) + "\n"


def statistics(result: LintResult) -> str:
    """flake8's ``--statistics``: how many findings of each code, then the totals."""
    counts = Counter(finding.code for finding in result.findings)
    lines = [f"{counts[code]:<5} {code} {RULES_BY_CODE[code].summary}" for code in sorted(counts)]
    files = len({finding.path for finding in result.findings})
    lines.append(
        f"{sum(counts.values())} finding(s) in {files} of {result.files} file(s) checked"
        + (f"; {len(result.errors)} file(s) could not be checked" if result.errors else "")
    )
    return "\n".join(lines) + "\n"
