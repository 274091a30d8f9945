"""The standalone runner: output format, exit status, selection, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _expectations import FIXTURES
from ostinato_lint import ALL_RULES, main

CLEAN = FIXTURES / "negative_correct_use.py"
DIRTY = FIXTURES / "ost103_blocking_sleep.py"


def test_clean_file_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CLEAN)]) == 0
    assert capsys.readouterr().out == ""


def test_findings_exit_one_in_flake8_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(DIRTY)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{DIRTY}:10:5: OST103 time.sleep() blocks the worker and is not a durable timer; "
        "use await workflow.sleep(seconds) (a durable timer)",
        f"{DIRTY}:11:5: OST103 time.sleep() blocks the worker and is not a durable timer; "
        "use await workflow.sleep(seconds) (a durable timer)",
    ]


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "json", str(DIRTY)]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert [(f["line"], f["col"], f["code"], f["workflow"]) for f in findings] == [
        (10, 5, "OST103", "waits"),
        (11, 5, "OST103", "waits"),
    ]
    assert findings[0]["path"] == str(DIRTY)
    assert "workflow.sleep" in findings[0]["message"]


def test_json_format_when_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "json", str(CLEAN)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_directories_are_linted_recursively(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(FIXTURES)]) == 1
    out = capsys.readouterr().out
    assert "config_project/uses_config.py" in out
    assert "ost111_swallowed_cancellation.py" in out


def test_select_and_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--select", "OST101", str(DIRTY)]) == 0
    assert main(["--select", "OST1", "--ignore", "OST103", str(DIRTY)]) == 0
    assert main(["--select", "ost103", str(DIRTY)]) == 1
    capsys.readouterr()


def test_unknown_select_code_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--select", "XYZ1", str(DIRTY)]) == 2
    assert "unknown code" in capsys.readouterr().err


def test_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--exit-zero", str(DIRTY)]) == 0
    assert "OST103" in capsys.readouterr().out


def test_syntax_error_exits_two_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    pass\n")
    assert main([str(broken), str(DIRTY)]) == 2
    captured = capsys.readouterr()
    assert f"{broken}:1:" in captured.err
    assert "E999 SyntaxError" in captured.err
    assert "OST103" in captured.out  # the other files are still reported


def test_missing_path_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.py")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_no_paths_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "at least one PATH" in capsys.readouterr().err


def test_bad_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "xml", str(DIRTY)]) == 2
    capsys.readouterr()


def test_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-rules"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == [rule.code for rule in ALL_RULES]


def test_config_error_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ostinato.lint]\nbogus = 1\n")
    (tmp_path / "wf.py").write_text("x = 1\n")
    assert main([str(tmp_path)]) == 2
    assert "unknown key(s) in [tool.ostinato.lint]: bogus" in capsys.readouterr().err


def test_python_dash_m() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ostinato_lint", str(DIRTY)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stdout.count("OST103") == 2


def test_console_script() -> None:
    script = shutil.which("ostinato-lint", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("ostinato-lint console script not installed (pip install -e analyzer)")
    completed = subprocess.run([script, str(CLEAN)], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
