"""The shape every rule module shares.

A rule is a code, a one-line summary, the *problem* phrase used in messages and the default advice
(what to use instead).  Rules driven by the banned-call table (``table.py``) need nothing else;
structural rules also provide ``check`` functions for the AST node types they care about.  The
module docstring of each rule file is its user documentation, in four sections (What it does / Why
is this bad? / Example / Use instead), rendered to ``docs/lint/OSTnnn.md`` by ``docs.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class Resolved(NamedTuple):
    """What a name or attribute chain refers to, as far as one module can tell.

    ``kind`` is one of:

    - ``"import"``: something imported; ``qualname`` is the dotted import path
      (``from time import time as ts`` makes ``ts`` resolve to ``time.time``);
    - ``"builtin"``: a builtin such as ``open`` (``qualname`` is ``builtins.open``);
    - ``"module"``: a module-level function, class or variable of the file being linted
      (``qualname`` is its dotted name inside the module, e.g. ``Order.run``);
    - ``"self"``: an attribute of ``self``/``cls`` inside a method (``qualname`` is
      ``Class.attr``);
    - ``"local"``: a function defined inside an enclosing function of the code being checked
      (``qualname`` is ``outer.<locals>.name``).
    """

    kind: str
    qualname: str


class CheckContext(Protocol):
    """What a structural check may ask the visitor about the code around a node."""

    def resolve(self, node: ast.expr) -> Resolved | None:
        """Resolve a name/attribute chain (calls in the chain are looked through)."""
        ...

    def is_set_valued(self, node: ast.expr) -> bool:
        """True when ``node`` evaluates to a ``set``/``frozenset`` as far as we can tell."""
        ...

    def is_str_valued(self, node: ast.expr) -> bool:
        """True when ``node`` evaluates to ``str``/``bytes`` (or a tuple holding one)."""
        ...

    def enclosing_handlers(self) -> list[ast.ExceptHandler]:
        """The ``except`` clauses the node is inside, outermost first."""
        ...

    def is_wait_set(self, node: ast.expr) -> bool:
        """True for the ``done``/``pending`` names bound from ``await asyncio.wait(...)``."""
        ...

    def scheduled_inputs(self, call: ast.Call) -> list[ast.expr] | None:
        """The input arguments when ``call`` schedules an activity or child workflow."""
        ...

    def activity_name(self, node: ast.expr) -> str | None:
        """The name of the same-module activity ``node`` refers to, if it refers to one."""
        ...

    def is_banned(self, node: ast.expr) -> bool:
        """True when the banned-call table already covers ``node`` (avoids double reports)."""
        ...


class Hit(NamedTuple):
    """One finding of a structural check: where, and the sentence describing the problem."""

    node: ast.AST
    detail: str
    advice: str | None = None


Check = Callable[[CheckContext, ast.AST], Iterator[Hit]]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    problem: str
    advice: str
    doc: str
    module: str  # the rule's module, whose docstring is ``doc``
    checks: Mapping[type[ast.AST], Check] = field(default_factory=dict)

    @property
    def table_driven(self) -> bool:
        return not self.checks
