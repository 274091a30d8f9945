"""The checker never crashes on valid Python, however odd (flake8 would report a crash as E902).

Sources come from a small grammar biased towards what the rules look at: decorated workflow and
activity functions, banned names through several import styles, sets, module state, handlers.
"""

from __future__ import annotations

import ast
import warnings

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ostinato_lint import RULES_BY_CODE, lint_source
from ostinato_lint.config import DEFAULT_CONFIG
from ostinato_lint.plugin import Plugin

NAMES = ["x", "s", "items", "CACHE", "G", "helper", "charge", "Pricing", "time", "random", "os"]
NAMES += ["datetime", "workflow", "asyncio", "self", "id", "open", "set", "ts", "t", "requests"]
ATTRS = ["time", "now", "sleep", "random", "environ", "get", "append", "add", "pop", "defn"]
ATTRS += ["run_in_executor", "execute_activity", "side_effect", "CancelledError", "union", "x"]
HEADER = [
    "import time",
    "import time as t",
    "from time import time as ts",
    "import random, os, asyncio, requests",
    "from datetime import datetime",
    "import ostinato",
    "from ostinato import workflow, activity",
    "from ostinato.workflow import defn",
    "from random import *",
    "CACHE = {}",
    "G = set()",
    "from temporalio import workflow as tw",
    "from dbos import DBOS",
]
DECORATORS = ["", "@workflow.defn", "@workflow.defn(name='n')", "@ostinato.workflow.defn"]
DECORATORS += ["@defn", "@activity.defn", "@staticmethod", "@tw.defn", "@DBOS.workflow()"]
DECORATORS += ["@DBOS.step()"]
EXCEPT = ["", " BaseException", " asyncio.CancelledError", " Exception as err", " (ValueError, G)"]

atoms = st.one_of(
    st.sampled_from(NAMES),
    st.integers(0, 9).map(str),
    st.sampled_from(['"a"', "{1, 2}", "set()", "[]", "{}", "None", "...", "{*items}"]),
)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(ATTRS)).map(lambda p: f"({p[0]}).{p[1]}"),
        st.tuples(inner, st.lists(inner, max_size=3)).map(lambda p: f"({p[0]})({', '.join(p[1])})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]})[{p[1]}]"),
        st.tuples(inner, st.sampled_from(["+", "|", "-", "&", " and ", " or ", "=="]), inner).map(
            lambda p: f"({p[0]}{p[1]}{p[2]})"
        ),
        inner.map(lambda e: f"[y for y in {e}]"),
        inner.map(lambda e: f"{{y: 1 for y in {e}}}"),
        inner.map(lambda e: f"(lambda q=1: {e})"),
        inner.map(lambda e: f"(not {e})"),
        inner.map(lambda e: f"[*{e}]"),
        inner.map(lambda e: f"f'{{{e}}}'"),
    )


expressions = st.recursive(atoms, _extend, max_leaves=8)


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _block(statements: list[list[str]]) -> list[str]:
    lines = [line for statement in statements for line in statement]
    return lines or ["pass"]


@st.composite
def statements(draw: st.DrawFn, depth: int = 0) -> list[str]:
    e = draw(expressions)
    simple = [
        [e],
        [f"x = {e}"],
        [f"s = {e}"],
        [f"CACHE[{e}] = {draw(expressions)}"],
        [f"x += {e}"],
        [f"x = await {e}"],
        [f"del x, CACHE[{e}]"],
        ["import time as t2"],
        ["from os import environ as env"],
        [f"return {e}"],
        [f"with {e} as w:", "    pass"],
        [f"for y in {e}:", "    pass"],
        [f"done, s = await asyncio.wait({e})"],
        [f"self.s = {e}"],
        [f"x = hash({e})"],
    ]
    if depth >= 2:
        return draw(st.sampled_from(simple))
    body = draw(st.lists(statements(depth + 1), min_size=1, max_size=3))
    other = draw(st.lists(statements(depth + 1), min_size=1, max_size=2))
    compound = [
        [f"if {e}:", *_indent(_block(body)), "else:", *_indent(_block(other))],
        [f"for y in {e}:", *_indent(_block(body))],
        [f"while {e}:", *_indent(_block(body))],
        [
            "try:",
            *_indent(_block(body)),
            f"except{draw(st.sampled_from(EXCEPT))}:",
            *_indent(_block(other)),
        ],
        [f"async def inner{depth}(a, *b, c={e}, **d):", *_indent(_block(body))],
    ]
    return draw(st.sampled_from(simple + compound))


@st.composite
def functions(draw: st.DrawFn) -> list[str]:
    decorator = draw(st.sampled_from(DECORATORS))
    name = draw(st.sampled_from(["wf", "helper", "charge", "other"]))
    body = draw(st.lists(statements(), min_size=1, max_size=4))
    prologue = ["global G"] if draw(st.booleans()) else []
    head = [decorator] if decorator else []
    return [
        *head,
        f"async def {name}(self, items: set[str], x=None):",
        *_indent(prologue),
        *_indent(_block(body)),
    ]


@st.composite
def modules(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.sampled_from(HEADER), max_size=len(HEADER), unique=True))
    for function in draw(st.lists(functions(), min_size=1, max_size=3)):
        if draw(st.booleans()):
            lines += ["", "class Pricing:", *_indent(function)]
        else:
            lines += ["", *function]
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules())
def test_never_crashes_on_valid_code(source: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # `1()` is valid, if silly
            tree = ast.parse(source)
            compile(source, "<generated>", "exec")
    except SyntaxError:
        assume(False)
        return
    findings = lint_source(source, "generated.py", DEFAULT_CONFIG)
    line_count = source.count("\n")
    for finding in findings:
        assert finding.code in RULES_BY_CODE
        assert 1 <= finding.line <= line_count
        assert finding.message
    flake8_results = list(Plugin(tree, "generated.py").run())
    assert [(line, message[:6]) for line, _, message, _ in flake8_results] == [
        (finding.line, finding.code) for finding in findings
    ]
