"""The rule pages are generated from the rule modules, and kept up to date."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from ostinato_lint import ALL_RULES, lint_source
from ostinato_lint.config import parse_config
from ostinato_lint.docs import INDEX_END, INDEX_START, expected_docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lint"
SECTIONS = ["## What it does", "## Why is this bad?", "## Example", "## Use instead"]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.code)
def test_rule_doc_has_every_section_in_order(rule: object) -> None:
    doc = inspect.cleandoc(getattr(rule, "doc", ""))
    positions = [doc.find(section) for section in SECTIONS]
    assert -1 not in positions, f"missing one of {SECTIONS}"
    assert positions == sorted(positions)


def test_generated_docs_are_up_to_date() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    assert INDEX_START in index and INDEX_END in index
    for path, content in expected_docs(DOCS).items():
        assert path.exists(), f"{path} missing: run python analyzer/scripts/gen_docs.py"
        assert path.read_text(encoding="utf-8") == content, (
            f"{path} is stale: run python analyzer/scripts/gen_docs.py"
        )


def test_rule_examples_are_valid_python() -> None:
    for rule in ALL_RULES:
        doc = inspect.cleandoc(rule.doc)
        for block in doc.split("```python")[1:]:
            compile(block.split("```")[0], f"{rule.code} docs", "exec")


@pytest.mark.parametrize("preset", ["ostinato", "temporal", "dbos"])
def test_preset_page_examples_report_what_they_mark(preset: str) -> None:
    """Each worked example on docs/lint/preset-*.md finds exactly the `# OSTnnn` lines."""
    text = (DOCS / f"preset-{preset}.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks
    config = parse_config({"preset": preset}, Path("pyproject.toml"))
    for block in blocks:
        found = sorted((f.line, f.code) for f in lint_source(block, "example.py", config))
        marked = sorted(
            (number, code)
            for number, line in enumerate(block.splitlines(), start=1)
            for code in re.findall(r"# (OST\d{3})", line)
        )
        assert found == marked
