"""[tool.ostinato.lint]: extending the table, exemptions, decorators, errors, 3.10 fallback."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
from ostinato_lint import ConfigError, config_for, lint_file, lint_source
from ostinato_lint import config as config_module
from ostinato_lint.config import DEFAULT_CONFIG, parse_config
from ostinato_lint.table import Ban

WORKFLOW = textwrap.dedent(
    """
    import mylib
    from ostinato import workflow

    @workflow.defn
    async def wf():
        return mylib.fetch()
    """
)


def write_project(root: Path, lint_table: str) -> Path:
    (root / "pyproject.toml").write_text(f"[tool.ostinato.lint]\n{lint_table}\n")
    package = root / "src" / "app"
    package.mkdir(parents=True)
    module = package / "flows.py"
    module.write_text(WORKFLOW)
    return module


def test_nearest_pyproject_applies(tmp_path: Path) -> None:
    module = write_project(tmp_path, 'extra-banned = { "mylib.fetch" = "OST104: use an activity" }')
    (finding,) = lint_file(module)
    assert finding.code == "OST104"
    assert finding.message == (
        "mylib.fetch() does I/O, whose result is not in the history; use an activity"
    )
    assert config_for(module).source == tmp_path / "pyproject.toml"


def test_wildcard_extension(tmp_path: Path) -> None:
    module = write_project(
        tmp_path, 'extra-banned = { "mylib.*" = "OST102: use workflow.random()" }'
    )
    assert [finding.code for finding in lint_file(module)] == ["OST102"]


def test_without_config_the_call_is_allowed(tmp_path: Path) -> None:
    module = tmp_path / "flows.py"
    module.write_text(WORKFLOW)
    assert config_for(module) is DEFAULT_CONFIG
    assert lint_file(module) == []


def test_allow_exempts_a_banned_name() -> None:
    source = textwrap.dedent(
        """
        import random
        from ostinato import workflow

        @workflow.defn
        async def wf(seed: int):
            return random.Random(seed).random()
        """
    )
    assert len(lint_source(source, config=DEFAULT_CONFIG)) == 1
    config = parse_config({"allow": ["random.Random"]}, Path("pyproject.toml"))
    assert lint_source(source, config=config) == []


def test_custom_decorators() -> None:
    config = parse_config(
        {"workflow-decorators": ["app.durable"], "activity-decorators": ["app.task"]},
        Path("pyproject.toml"),
    )
    source = textwrap.dedent(
        """
        import time
        from app import durable, task

        @task
        def step():
            time.sleep(1)

        @durable(name="x")
        async def flow():
            step()
            time.sleep(1)
        """
    )
    assert [(f.line, f.code) for f in lint_source(source, config=config)] == [
        (11, "OST110"),
        (12, "OST103"),
    ]


def test_parse_config_values() -> None:
    config = parse_config(
        {"extra-banned": {"a.b": "OST104:  talk to it from an activity  "}}, Path("p.toml")
    )
    assert config.extra_banned == {"a.b": Ban("OST104", "talk to it from an activity")}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"nope": 1}, "unknown key(s) in [tool.ostinato.lint]: nope"),
        ({"extra-banned": {"a.b": "use an activity"}}, 'must map to "OSTnnn: advice"'),
        ({"extra-banned": {"a.b": "OST999: x"}}, "unknown code OST999"),
        ({"extra-banned": ["a.b"]}, "extra-banned must be a table"),
        ({"allow": "random.Random"}, "allow must be a list of strings"),
    ],
)
def test_config_errors_say_what_is_wrong(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(table, Path("pyproject.toml"))


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ostinato.lint\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config_for(tmp_path / "x.py")


def test_missing_toml_parser_falls_back_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Python 3.10 without tomli the table is skipped with a warning, never a crash."""
    (tmp_path / "pyproject.toml").write_text('[tool.ostinato.lint]\nallow = ["x"]\n')
    monkeypatch.setattr(sys, "version_info", (3, 10, 0))
    monkeypatch.setitem(sys.modules, "tomli", None)  # makes `import tomli` raise ImportError
    config_module._config_from.cache_clear()
    try:
        with pytest.warns(UserWarning, match="needs the 'tomli' package"):
            config = config_for(tmp_path / "x.py")
    finally:
        config_module._config_from.cache_clear()
    assert config is DEFAULT_CONFIG
