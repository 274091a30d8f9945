"""Framework presets: configured, detected from imports, announced, and nested configuration."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from ostinato_lint import ConfigError, config_for, lint_file, lint_paths, lint_source, main
from ostinato_lint.config import parse_config
from ostinato_lint.finding import Note

TEMPORAL = textwrap.dedent(
    """
    import time
    from temporalio import workflow

    @workflow.defn
    class Greeter:
        @workflow.run
        async def run(self, name: str) -> str:
            return f"{name} {time.time()}"
    """
)
DBOS_APP = textwrap.dedent(
    """
    import time
    from dbos import DBOS

    @DBOS.step()
    def stamp() -> float:
        return time.time()

    @DBOS.workflow()
    def flow() -> float:
        return stamp() + time.monotonic()
    """
)


def test_preset_accepts_a_name_or_a_list() -> None:
    path = Path("pyproject.toml")
    assert parse_config({"preset": "temporal"}, path).presets == ("temporal",)
    assert parse_config({"preset": ["dbos", "ostinato"]}, path).presets == ("dbos", "ostinato")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("flask", "preset 'flask' is not known (known: ostinato, temporal, dbos)"),
        (["temporal", 3], "preset must be a string or a list of strings"),
        ({"name": "dbos"}, "preset must be a string or a list of strings"),
    ],
)
def test_bad_preset_names_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"preset": value}, Path("pyproject.toml"))


def test_temporal_is_detected_from_imports_and_said_once(tmp_path: Path) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(TEMPORAL)
    result = lint_paths([tmp_path])
    assert [(f.path.rpartition("/")[2], f.line, f.code) for f in result.findings] == [
        ("a.py", 9, "OST101"),
        ("b.py", 9, "OST101"),
    ]
    (note,) = result.notes
    assert "no preset configured" in note and "checked as temporal code" in note


def test_dbos_steps_are_called_directly_and_workflows_checked() -> None:
    notes: list[Note] = []
    findings = lint_source(DBOS_APP, "app.py", parse_config({}, Path("p.toml")), notes=notes)
    assert [(f.line, f.code) for f in findings] == [(11, "OST101")]
    assert [note.key for note in notes] == ["detected:dbos"]
    # the advice speaks DBOS: there is no workflow.now() there
    assert findings[0].message.endswith("read the clock in a @DBOS.step() (its result is recorded)")
    (temporal,) = lint_source(TEMPORAL, "greeter.py", parse_config({}, Path("p.toml")))
    assert temporal.message.endswith("use workflow.now()")


def test_a_configured_preset_replaces_detection_and_warns_about_the_rest() -> None:
    notes: list[Note] = []
    ostinato_only = parse_config({"preset": ["ostinato"]}, Path("pyproject.toml"))
    assert lint_source(TEMPORAL, "greeter.py", ostinato_only, notes=notes) == []
    (note,) = notes
    assert note.key == "unconfigured:temporal"
    assert "defines temporal workflows but the 'temporal' preset is not configured" in (
        note.message
    )
    temporal = parse_config({"preset": "temporal"}, Path("pyproject.toml"))
    notes.clear()
    assert [f.code for f in lint_source(TEMPORAL, "greeter.py", temporal, notes=notes)] == [
        "OST101"
    ]
    assert notes == []


def test_cli_prints_notes_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "greeter.py").write_text(TEMPORAL)
    assert main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "OST101" in captured.out and "OST101" not in captured.err
    assert captured.err.count("checked as temporal code") == 1


def _project(root: Path, table: str | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = '[project]\nname = "x"\n'
    if table is not None:
        text += f"[tool.ostinato.lint]\n{table}\n"
    (root / "pyproject.toml").write_text(text)


WORKFLOW = textwrap.dedent(
    """
    import random
    import mylib
    from ostinato import workflow

    @workflow.defn
    async def wf():
        return mylib.fetch(), random.Random(7).random(), random.random()
    """
)


def test_nested_pyproject_without_a_table_inherits(tmp_path: Path) -> None:
    _project(tmp_path, 'extra-banned = { "mylib.fetch" = "OST104: use an activity" }')
    _project(tmp_path / "services" / "billing", None)
    module = tmp_path / "services" / "billing" / "flows.py"
    module.write_text(WORKFLOW)
    assert [f.code for f in lint_file(module)] == ["OST104", "OST102"]


def test_nested_tables_merge_with_their_parents(tmp_path: Path) -> None:
    _project(tmp_path, 'extra-banned = { "mylib.fetch" = "OST104: use an activity" }')
    _project(tmp_path / "sub", 'allow = ["random.random"]')
    module = tmp_path / "sub" / "flows.py"
    module.write_text(WORKFLOW)
    assert [f.code for f in lint_file(module)] == ["OST104"]
    config = config_for(module)
    assert config.source == tmp_path / "sub" / "pyproject.toml"
    assert config.sources == (tmp_path / "pyproject.toml", tmp_path / "sub" / "pyproject.toml")


def test_inherit_false_stops_at_the_subproject(tmp_path: Path) -> None:
    _project(tmp_path, 'extra-banned = { "mylib.fetch" = "OST104: use an activity" }')
    _project(tmp_path / "sub", "inherit = false")
    module = tmp_path / "sub" / "flows.py"
    module.write_text(WORKFLOW)
    assert [f.code for f in lint_file(module)] == ["OST102"]
    with pytest.raises(ConfigError, match="inherit must be true or false"):
        parse_config({"inherit": "no"}, Path("pyproject.toml"))
