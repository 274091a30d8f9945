"""Name resolution, reachability and messages, on small inline sources."""

from __future__ import annotations

import ast
import textwrap

import pytest
from ostinato_lint import RULES_BY_CODE, LintConfig, lint_source
from ostinato_lint.plugin import Plugin


def codes(source: str, config: LintConfig | None = None) -> list[tuple[int, str]]:
    findings = lint_source(textwrap.dedent(source), config=config)
    return [(finding.line, finding.code) for finding in findings]


def test_alias_of_banned_function() -> None:
    source = """
        from time import time as ts
        from ostinato import workflow

        @workflow.defn
        async def wf():
            return ts()
    """
    (finding,) = lint_source(textwrap.dedent(source))
    assert (finding.line, finding.col, finding.code) == (7, 12, "OST101")
    assert finding.message.startswith("time.time() reads the clock")
    assert finding.message.endswith("use workflow.now()")


def test_star_import_is_resolved() -> None:
    source = """
        from time import *
        from ostinato import workflow

        @workflow.defn
        async def wf():
            sleep(1)
    """
    assert codes(source) == [(7, "OST103")]


def test_local_variable_shadows_import() -> None:
    source = """
        import random
        from ostinato import workflow

        @workflow.defn
        async def wf():
            random = workflow.random()
            return random.random()
    """
    assert codes(source) == []


def test_module_level_function_shadows_builtin() -> None:
    source = """
        from ostinato import workflow

        def open(name):
            return name

        @workflow.defn
        async def wf():
            return open("x")
    """
    assert codes(source) == []


def test_without_ostinato_import_nothing_is_workflow_code() -> None:
    source = """
        import time
        from somewhere_else import workflow

        @workflow.defn
        async def wf():
            time.sleep(1)
    """
    assert codes(source) == []


def test_helper_findings_name_the_workflow() -> None:
    source = """
        import time
        from ostinato import workflow

        def stamp():
            return time.time()

        @workflow.defn
        async def wf():
            return stamp()
    """
    (finding,) = lint_source(textwrap.dedent(source))
    assert finding.workflow == "wf"
    assert finding.message.endswith("(in 'stamp', called from workflow 'wf')")


def test_cycles_between_helpers_terminate() -> None:
    source = """
        import time
        from ostinato import workflow

        def ping(n):
            return pong(n - 1) if n else time.time()

        def pong(n):
            return ping(n)

        @workflow.defn
        async def wf():
            return ping(3)
    """
    assert codes(source) == [(6, "OST101")]


def test_decorated_workflow_class_marks_its_methods() -> None:
    source = """
        import time
        from ostinato import workflow

        @workflow.defn
        class Orders:
            async def run(self):
                return self.helper()

            def helper(self):
                time.sleep(1)
    """
    assert codes(source) == [(11, "OST103")]


def test_inherited_method_is_reached() -> None:
    source = """
        import os
        from ostinato import workflow

        class Base:
            def region(self):
                return os.getenv("REGION")

        class Orders(Base):
            @workflow.defn
            async def run(self):
                return self.region()
    """
    assert codes(source) == [(7, "OST106")]


def test_side_effect_argument_is_not_workflow_code() -> None:
    source = """
        import random
        from ostinato import workflow

        def roll():
            return random.random()

        @workflow.defn
        async def wf():
            a = await workflow.side_effect(roll)
            b = await workflow.side_effect(lambda: random.random())
            return a + b
    """
    assert codes(source) == []


def test_default_argument_of_a_workflow_is_checked() -> None:
    source = """
        from datetime import datetime
        from ostinato import workflow

        @workflow.defn
        async def wf(started=datetime.now()):
            return started
    """
    assert codes(source) == [(6, "OST101")]


def test_nested_function_inside_workflow_is_checked() -> None:
    source = """
        import time
        from ostinato import workflow

        @workflow.defn
        async def wf():
            def inner():
                return time.time()
            return inner()
    """
    assert codes(source) == [(8, "OST101")]


def test_annotations_are_not_flagged() -> None:
    source = """
        import socket
        from ostinato import workflow

        @workflow.defn
        async def wf(sock: socket.socket | None = None) -> socket.socket | None:
            result: socket.socket | None = sock
            return result
    """
    assert codes(source) == []


def test_one_finding_per_chain() -> None:
    source = """
        import requests
        from ostinato import workflow

        @workflow.defn
        async def wf():
            return requests.Session().get("https://example.com").json()
    """
    (finding,) = lint_source(textwrap.dedent(source))
    assert finding.message.startswith("requests.Session() does I/O")


def test_environment_mutation_is_reported_once_as_environment() -> None:
    source = """
        import os
        from ostinato import workflow

        @workflow.defn
        async def wf():
            os.environ.update({"A": "1"})
    """
    assert codes(source) == [(7, "OST106")]


@pytest.mark.parametrize("code", sorted(RULES_BY_CODE))
def test_every_rule_names_a_replacement(code: str) -> None:
    rule = RULES_BY_CODE[code]
    assert rule.advice
    assert any(word in rule.advice for word in ("use", "move", "pass", "keep", "re-raise"))


def test_plugin_yields_flake8_tuples() -> None:
    source = textwrap.dedent(
        """
        import time
        from ostinato import workflow

        @workflow.defn
        async def wf():
            time.sleep(1)
        """
    )
    results = list(Plugin(ast.parse(source), "stdin").run())
    assert results == [
        (
            7,
            4,
            "OST103 time.sleep() blocks the worker and is not a durable timer; "
            "use await workflow.sleep(seconds) (a durable timer)",
            Plugin,
        )
    ]
    assert Plugin.name == "ostinato-lint"
    assert Plugin.version


def test_noqa_in_lint_source_can_be_disabled() -> None:
    source = textwrap.dedent(
        """
        import time
        from ostinato import workflow

        @workflow.defn
        async def wf():
            time.sleep(1)  # noqa: OST103
        """
    )
    assert lint_source(source) == []
    assert len(lint_source(source, noqa=False)) == 1
