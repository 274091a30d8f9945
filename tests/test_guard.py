"""The runtime guard: what it reports, where, in which mode, and what it leaves alone."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ostinato import _guard
from ostinato._guard import GuardMode, NondeterministicCallError, guarding, install

THIS_FILE = os.path.abspath(__file__)


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    _guard._warned.clear()
    yield
    _guard._warned.clear()
    assert not _guard._active, "a guarded slice leaked out of its block"


def _line_of(marker: str) -> int:
    for number, line in enumerate(Path(THIS_FILE).read_text().splitlines(), start=1):
        if line.rstrip().endswith(f"# <{marker}>"):
            return number
    raise LookupError(marker)


def test_warn_mode_logs_workflow_call_and_site(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "prices.csv"
    target.write_text("1")
    with (
        caplog.at_level(logging.WARNING, logger="ostinato.guard"),
        guarding("orders", GuardMode.WARN),
    ):
        target.read_text()  # <read>
    (record,) = caplog.records
    assert record.name == "ostinato.guard"
    assert record.getMessage() == (
        f"workflow 'orders' called open({str(target)!r}) at {THIS_FILE}:{_line_of('read')} "
        "— move I/O into an activity"
    )


def test_warn_mode_reports_each_site_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "x"
    target.write_text("")
    with caplog.at_level(logging.WARNING, logger="ostinato.guard"), guarding("wf", GuardMode.WARN):
        for _ in range(3):
            target.read_text()
        target.read_bytes()
    assert len(caplog.records) == 2


def test_raise_mode_stops_the_call(tmp_path: Path) -> None:
    target = tmp_path / "never.txt"
    with (
        guarding("wf", GuardMode.RAISE),
        pytest.raises(NondeterministicCallError) as caught,
        open(target, "w"),  # <open>
    ):
        pass
    assert not target.exists()
    error = caught.value
    assert error.workflow == "wf"
    assert error.call == f"open({str(target)!r})"
    assert error.location == f"{THIS_FILE}:{_line_of('open')}"
    assert "move I/O into an activity" in str(error)


def test_off_mode_reports_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ostinato.guard"), guarding("wf", GuardMode.OFF):
        (tmp_path / "x").write_text("")
        assert not _guard._active
    assert caplog.records == []


def test_nothing_is_reported_outside_a_guarded_slice(tmp_path: Path) -> None:
    install()
    (tmp_path / "x").write_text("")  # no exception although a RAISE slice ran before
    with guarding("wf", GuardMode.RAISE):
        pass
    (tmp_path / "y").write_text("")


@pytest.mark.parametrize(
    ("action", "call_prefix", "advice"),
    [
        (lambda: socket.getaddrinfo("localhost", 80), "socket.getaddrinfo('localhost')", "network"),
        (lambda: socket.create_connection(("127.0.0.1", 9)), "socket.", "network"),
        (lambda: subprocess.Popen(["true"]), "subprocess.Popen(['true'])", "processes"),
        (lambda: os.system("true"), "os.system('true')", "processes"),
        (lambda: sqlite3.connect(":memory:"), "sqlite3.connect(':memory:')", "database"),
        (
            lambda: urllib.request.urlopen("http://127.0.0.1:9/x"),
            "urllib.Request('http://127.0.0.1:9/x')",
            "network",
        ),
        (lambda: time.sleep(0), "time.sleep(0)", "workflow.sleep"),
        (lambda: os.listdir("."), "os.listdir('.')", "I/O"),
    ],
    ids=["getaddrinfo", "connect", "popen", "system", "sqlite", "urllib", "sleep", "listdir"],
)
def test_dangerous_calls_are_detected(action: object, call_prefix: str, advice: str) -> None:
    assert callable(action)
    with guarding("wf", GuardMode.RAISE), pytest.raises(NondeterministicCallError) as caught:
        action()
    assert caught.value.call.startswith(call_prefix)
    assert advice in str(caught.value)


def test_other_threads_are_not_guarded(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def engine_thread() -> None:
        try:
            (tmp_path / "backend.db").write_text("")
            sqlite3.connect(tmp_path / "other.db").close()
        except BaseException as error:  # pragma: no cover - the failure being tested for
            errors.append(error)

    with guarding("wf", GuardMode.RAISE):
        thread = threading.Thread(target=engine_thread)
        thread.start()
        thread.join()
    assert errors == []


def test_imports_are_not_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "freshly_imported_module.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with guarding("wf", GuardMode.RAISE):
        import freshly_imported_module  # type: ignore[import-not-found]

    assert freshly_imported_module.VALUE == 42
    sys.modules.pop("freshly_imported_module", None)


def test_engine_frames_are_not_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """I/O whose innermost non-stdlib frame is ostinato's own code is the engine's business."""
    engine = tmp_path / "fake_engine"
    engine.mkdir()
    (engine / "engine_io.py").write_text(
        "def write_log(path):\n    with open(path, 'w') as f:\n        f.write('x')\n"
    )
    monkeypatch.setattr(_guard, "_ENGINE_DIRS", (str(engine) + os.sep, *_guard._ENGINE_DIRS))
    monkeypatch.setattr(_guard, "_kinds", {})
    monkeypatch.syspath_prepend(str(engine))
    import engine_io  # type: ignore[import-not-found]

    with guarding("wf", GuardMode.RAISE):
        engine_io.write_log(tmp_path / "log.txt")
    assert (tmp_path / "log.txt").read_text() == "x"
    sys.modules.pop("engine_io", None)


def test_linecache_reads_for_tracebacks_are_not_reported() -> None:
    import linecache
    import traceback

    linecache.clearcache()
    with guarding("wf", GuardMode.RAISE):
        try:
            raise ValueError("boom")
        except ValueError:
            assert "boom" in traceback.format_exc()


def test_calls_from_asyncio_tasks_on_the_guarded_thread_are_reported(tmp_path: Path) -> None:
    """Tasks run in their own context copies; the guard must still see them (keyed by thread)."""
    loop = asyncio.new_event_loop()
    seen: list[BaseException] = []

    async def child() -> None:
        await asyncio.sleep(0)
        try:
            (tmp_path / "x").write_text("")
        except NondeterministicCallError as error:
            seen.append(error)

    async def workflow_main() -> None:
        await asyncio.gather(asyncio.create_task(child()), asyncio.create_task(child()))

    try:
        with guarding("wf", GuardMode.RAISE):
            loop.run_until_complete(workflow_main())
    finally:
        loop.close()
    assert len(seen) == 2


def test_nested_slices_restore_the_outer_one(tmp_path: Path) -> None:
    with guarding("outer", GuardMode.RAISE):
        with guarding("inner", GuardMode.RAISE), pytest.raises(NondeterministicCallError) as inner:
            (tmp_path / "a").write_text("")
        with pytest.raises(NondeterministicCallError) as outer:
            (tmp_path / "b").write_text("")
    assert inner.value.workflow == "inner"
    assert outer.value.workflow == "outer"


def test_logging_to_a_file_while_reporting_does_not_recurse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = logging.FileHandler(tmp_path / "guard.log", delay=True)  # opens on first record
    guard_logger = logging.getLogger("ostinato.guard")
    guard_logger.addHandler(handler)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="ostinato.guard"),
            guarding("wf", GuardMode.WARN),
        ):
            (tmp_path / "x").write_text("")
    finally:
        guard_logger.removeHandler(handler)
        handler.close()
    assert len(caplog.records) == 1
    assert "workflow 'wf' called open(" in (tmp_path / "guard.log").read_text()


def test_install_is_idempotent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    install()
    install()
    install()
    assert _guard.is_installed()
    with caplog.at_level(logging.WARNING, logger="ostinato.guard"), guarding("wf", GuardMode.WARN):
        (tmp_path / "x").write_text("")
    assert len(caplog.records) == 1  # one hook, one report


def test_mode_parsing() -> None:
    assert GuardMode.parse("Warn") is GuardMode.WARN
    assert GuardMode.parse(GuardMode.RAISE) is GuardMode.RAISE
    with pytest.raises(ValueError, match="expected one of off, warn, raise"):
        GuardMode.parse("loud")
