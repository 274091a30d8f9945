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


SET_ORDER = FIXTURES / "ost107_set_iteration.py"


def test_sarif_format(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The SARIF 2.1.0 shape GitHub code scanning reads: rules in the driver, one result per
    finding with a checkout-relative URI, region and rule index."""
    monkeypatch.chdir(FIXTURES.parent)
    assert main(["--format", "sarif", "fixtures/ost103_blocking_sleep.py"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == "2.1.0"
    assert document["$schema"].endswith("sarif-2.1.0.json")
    (run,) = document["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "ostinato-lint"
    assert [rule["id"] for rule in driver["rules"]] == [rule.code for rule in ALL_RULES]
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    assert [
        (
            result["ruleId"],
            driver["rules"][result["ruleIndex"]]["id"],
            result["locations"][0]["physicalLocation"]["artifactLocation"],
            result["locations"][0]["physicalLocation"]["region"],
        )
        for result in run["results"]
    ] == [
        (
            "OST103",
            "OST103",
            {"uri": "fixtures/ost103_blocking_sleep.py", "uriBaseId": "%SRCROOT%"},
            {"startLine": line, "startColumn": 5},
        )
        for line in (10, 11)
    ]
    assert all(result["message"]["text"].startswith("OST103 ") for result in run["results"])
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]


def test_sarif_reports_unreadable_files_as_notifications(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    assert main(["--format", "sarif", str(broken)]) == 2
    captured = capsys.readouterr()
    (run,) = json.loads(captured.out)["runs"]
    assert run["results"] == []
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert "E999" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    assert "E999" in captured.err


def test_statistics_follow_the_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--statistics", str(DIRTY), str(CLEAN)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [
        "2     OST103 Blocking sleep in workflow code",
        "2 finding(s) in 1 of 2 file(s) checked",
    ]


def test_statistics_go_to_stderr_with_a_document_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--format", "json", "--statistics", str(DIRTY)]) == 1
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 2
    assert "2     OST103" in captured.err


def test_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.sarif"
    assert main(["--format", "sarif", "--output", str(target), str(DIRTY)]) == 1
    assert capsys.readouterr().out == ""
    assert len(json.loads(target.read_text())["runs"][0]["results"]) == 2
    assert main(["--output", str(tmp_path / "missing" / "x.txt"), str(DIRTY)]) == 2
    assert "cannot write --output" in capsys.readouterr().err


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status:" in out
    assert "0  no findings" in out and "1  findings" in out and "2  usage error" in out


def _hooks(path: Path) -> dict[str, dict[str, str]]:
    """The hook definitions of a .pre-commit-hooks.yaml (a flat list of flat mappings)."""
    hooks: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.lstrip("- ").partition(":")
        if line.startswith("- "):
            current = {}
        current[key.strip()] = value.strip()
        if key.strip() == "id":
            hooks[value.strip()] = current
    return hooks


def test_pre_commit_hook_definitions() -> None:
    root = Path(__file__).resolve().parents[2]
    hooks = _hooks(root / ".pre-commit-hooks.yaml")
    assert set(hooks) == {"ostinato-lint", "ostinato-lint-sarif"}
    scripts = (root / "analyzer" / "pyproject.toml").read_text()
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["types"] == "[python]"
        assert hook["additional_dependencies"] == '["./analyzer"]'
        command = hook["entry"].split()
        assert f'{command[0]} = "ostinato_lint.__main__:main"' in scripts
        assert main([*command[1:], "--help"]) == 0  # the options it passes exist
    assert "--format sarif" in hooks["ostinato-lint-sarif"]["entry"]
    assert (
        _hooks(root / "analyzer" / ".pre-commit-hooks.yaml")["ostinato-lint"]["entry"]
        == (hooks["ostinato-lint"]["entry"])
    )
