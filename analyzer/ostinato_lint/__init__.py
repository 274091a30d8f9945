"""ostinato-lint: static checks for nondeterminism in ostinato workflow code.

Use it as a flake8 plugin (``flake8 --select OST``), as ``ostinato lint PATH...`` /
``python -m ostinato_lint PATH...``, or from Python::

    from ostinato_lint import lint_source
    for finding in lint_source(code, "wf.py"):
        print(finding.format())
"""

from __future__ import annotations

from ._version import __version__
from .api import LintResult, lint_file, lint_paths, lint_source
from .cli import main
from .config import ConfigError, LintConfig, config_for
from .finding import Finding
from .rules import ALL_RULES, RULES_BY_CODE, Rule

__all__ = [
    "ALL_RULES",
    "RULES_BY_CODE",
    "ConfigError",
    "Finding",
    "LintConfig",
    "LintResult",
    "Rule",
    "__version__",
    "config_for",
    "lint_file",
    "lint_paths",
    "lint_source",
    "main",
]
