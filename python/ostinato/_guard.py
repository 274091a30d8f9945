"""Runtime guard: notice nondeterministic calls (I/O, processes, sleeps) made by workflow code.

The static analyzer (``ostinato lint``) catches most mistakes before deploy; this catches the
dangerous ones it could not see (a helper in another module, a library that does I/O under the
hood) while the code runs.  The runtime enters :func:`guarding` around each slice of workflow
code it executes; a process-wide audit hook (:pep:`578`) then checks the audited operations made
*on that thread* during the slice, and reports them with the workflow's name and the call site:

    workflow 'orders.process' called open('prices.csv') at flows.py:12 — move I/O into an activity

Audit hooks cannot be removed, so the hook is built to cost nothing when no workflow code is
running: its first statement tests an (almost always empty) dict and returns.  Mode ``OFF``
does not install anything at all.

What is not reported:

- operations on other threads (the SQLite backend's writer, logging threads ...);
- operations whose innermost non-stdlib frame belongs to ostinato itself (``workflow.logger``,
  the engine's bookkeeping), and imports (loading a module reads files; those reads are not the
  workflow's doing), and ``linecache`` reading source for tracebacks;
- clocks, randomness and environment reads: they raise no audit event (use the analyzer);
- ``time.sleep``: audited from Python 3.13; on older versions :func:`install` wraps
  ``time.sleep`` in the ``time`` module, which sees ``time.sleep(...)`` calls but not a
  ``from time import sleep`` bound before installation.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import NamedTuple, SupportsIndex

__all__ = ["GuardMode", "NondeterministicCallError", "guarding", "install", "is_installed"]

logger = logging.getLogger("ostinato.guard")


class GuardMode(enum.Enum):
    OFF = "off"
    WARN = "warn"
    RAISE = "raise"

    @classmethod
    def parse(cls, value: str | GuardMode) -> GuardMode:
        """``"off"`` / ``"warn"`` / ``"raise"`` (any case), e.g. from an environment variable."""
        if isinstance(value, GuardMode):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(mode.value for mode in cls)
            raise ValueError(f"unknown guard mode {value!r}; expected one of {choices}") from None


class NondeterministicCallError(RuntimeError):
    """Workflow code made a call whose result would differ on replay (mode ``RAISE``)."""

    def __init__(self, message: str, *, workflow: str, call: str, location: str) -> None:
        super().__init__(message)
        self.workflow = workflow
        self.call = call
        self.location = location


_IO = "move I/O into an activity"
_NETWORK = "move network calls into an activity"
_PROCESS = "run processes in an activity"
_DATABASE = "query the database in an activity"
_SLEEP = "use await workflow.sleep() (a durable timer)"

# Audit event -> (index of the argument worth showing, advice).  Events documented in the
# "Audit events table" of the Python docs.
_EVENTS: dict[str, tuple[int, str]] = {
    "open": (0, _IO),
    "os.listdir": (0, _IO),
    "os.scandir": (0, _IO),
    "os.remove": (0, _IO),
    "os.rename": (0, _IO),
    "os.mkdir": (0, _IO),
    "os.rmdir": (0, _IO),
    "os.truncate": (0, _IO),
    "os.chmod": (0, _IO),
    "os.chown": (0, _IO),
    "os.link": (0, _IO),
    "os.symlink": (0, _IO),
    "os.utime": (0, _IO),
    "glob.glob": (0, _IO),
    "shutil.copyfile": (0, _IO),
    "shutil.rmtree": (0, _IO),
    "socket.connect": (1, _NETWORK),
    "socket.bind": (1, _NETWORK),
    "socket.sendto": (1, _NETWORK),
    "socket.sendmsg": (1, _NETWORK),
    "socket.getaddrinfo": (0, _NETWORK),
    "socket.gethostbyname": (0, _NETWORK),
    "socket.gethostbyname_ex": (0, _NETWORK),
    "socket.gethostbyaddr": (0, _NETWORK),
    "socket.getnameinfo": (0, _NETWORK),
    "socket.gethostname": (-1, _NETWORK),
    "urllib.Request": (0, _NETWORK),
    "http.client.connect": (1, _NETWORK),
    "ftplib.connect": (1, _NETWORK),
    "smtplib.connect": (1, _NETWORK),
    "poplib.connect": (1, _NETWORK),
    "imaplib.open": (1, _NETWORK),
    "nntplib.connect": (1, _NETWORK),
    "telnetlib.Telnet.open": (1, _NETWORK),
    "webbrowser.open": (0, _NETWORK),
    "subprocess.Popen": (1, _PROCESS),
    "os.system": (0, _PROCESS),
    "os.exec": (0, _PROCESS),
    "os.spawn": (1, _PROCESS),
    "os.posix_spawn": (0, _PROCESS),
    "os.fork": (-1, _PROCESS),
    "os.forkpty": (-1, _PROCESS),
    "os.kill": (0, _PROCESS),
    "os.startfile": (0, _PROCESS),
    "pty.spawn": (0, _PROCESS),
    "sqlite3.connect": (0, _DATABASE),
    "time.sleep": (0, _SLEEP),
}


class _Slice(NamedTuple):  # a tuple: built once per workflow step, so it must be cheap
    workflow: str
    mode: GuardMode


# Thread id -> the workflow slice running on it.  Empty whenever no workflow code runs, which is
# the one thing the audit hook looks at before returning.  Keyed by thread rather than held in a
# ContextVar: asyncio runs each task in its own context copy, so a ContextVar set around a loop
# step would be invisible to the tasks the workflow started earlier.
_active: dict[int, _Slice] = {}
_installed = False
_install_lock = threading.Lock()
_warned: set[tuple[str, str, str, int]] = set()
_WARNED_LIMIT = 4096

_ENGINE_DIRS: tuple[str, ...] = (os.path.dirname(os.path.abspath(__file__)) + os.sep,)
_STDLIB_DIRS: tuple[str, ...] = tuple(
    {
        os.path.abspath(path) + os.sep
        for path in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    }
)
_kinds: dict[str, str] = {}


def _classify(filename: str) -> str:
    """``import`` / ``benign`` / ``stdlib`` / ``engine`` / ``third-party`` / ``user``."""
    kind = _kinds.get(filename)
    if kind is not None:
        return kind
    if filename.startswith(("<frozen importlib", "<frozen zipimport")):
        kind = "import"
    elif filename.startswith("<frozen "):
        kind = "stdlib"
    elif filename.startswith(_ENGINE_DIRS):
        kind = "engine"
    elif "site-packages" in filename or "dist-packages" in filename:
        kind = "third-party"
    elif filename.startswith(_STDLIB_DIRS):
        relative = filename[len(next(d for d in _STDLIB_DIRS if filename.startswith(d))) :]
        if relative.startswith("importlib" + os.sep):
            kind = "import"
        elif relative in ("linecache.py", "tokenize.py"):
            kind = "benign"
        else:
            kind = "stdlib"
    else:
        kind = "user"
    _kinds[filename] = kind
    return kind


def _call_site(frame: FrameType | None) -> tuple[str, int] | None:
    """Where the workflow made the call, or None when the call is not the workflow's doing.

    Walks outward from the frame that triggered the event, past the standard library.  The
    first user frame is the call site; a third-party frame (``requests`` ...) is remembered in
    case no user frame comes before the engine.  Reaching ostinato before anything else means
    the engine did it; reaching importlib means a module is being imported.
    """
    library_site: tuple[str, int] | None = None
    depth = 0
    while frame is not None and depth < 64:
        filename = frame.f_code.co_filename
        kind = _classify(filename)
        if kind in ("import", "benign"):
            return None
        if kind == "user":
            return filename, frame.f_lineno
        if kind == "engine":
            return library_site
        if kind == "third-party" and library_site is None:
            library_site = filename, frame.f_lineno
        frame = frame.f_back
        depth += 1
    return library_site


def _describe(event: str, args: tuple[object, ...], index: int) -> str:
    if index < 0 or index >= len(args):
        return f"{event}()"
    value = args[index]
    if isinstance(value, bytes):  # os.system(b"...") and friends: show it as the user wrote it
        value = os.fsdecode(value)
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{event}({shown})"


def _check(event: str, args: tuple[object, ...], frame: FrameType | None) -> None:
    thread = threading.get_ident()
    guard = _active.get(thread)
    if guard is None:
        return
    index, advice = _EVENTS[event]
    site = _call_site(frame)
    if site is None:
        return
    filename, lineno = site
    call = _describe(event, args, index)
    location = f"{filename}:{lineno}"
    message = f"workflow {guard.workflow!r} called {call} at {location} — {advice}"
    if guard.mode is GuardMode.RAISE:
        raise NondeterministicCallError(
            message, workflow=guard.workflow, call=call, location=location
        )
    key = (guard.workflow, event, filename, lineno)
    if key in _warned:
        return
    if len(_warned) < _WARNED_LIMIT:
        _warned.add(key)
    # Logging may itself do audited I/O (a FileHandler opening its file): step out of the
    # guarded slice while reporting so that cannot recurse.
    del _active[thread]
    try:
        logger.warning(message)
    finally:
        _active[thread] = guard


def _audit_hook(event: str, args: tuple[object, ...]) -> None:
    if not _active:  # no workflow code running anywhere: the common case, keep it first
        return
    if event in _EVENTS:
        _check(event, args, sys._getframe(1))


def _wrap_sleep(
    original: Callable[[float | SupportsIndex], None],
) -> Callable[[float | SupportsIndex], None]:
    @functools.wraps(original)
    def sleep(seconds: float | SupportsIndex) -> None:
        if _active:
            _check("time.sleep", (seconds,), sys._getframe(1))
        original(seconds)

    return sleep


def install() -> None:
    """Register the audit hook (once per process; later calls do nothing)."""
    global _installed
    if _installed:  # called on every guarded step: skip the lock once done
        return
    with _install_lock:
        if _installed:
            return
        sys.addaudithook(_audit_hook)
        if sys.version_info < (3, 13):  # no "time.sleep" audit event before 3.13
            time.sleep = _wrap_sleep(time.sleep)
        _installed = True


def is_installed() -> bool:
    return _installed


class _Guarding:
    """The context manager behind :func:`guarding` (a class: cheaper to enter than a generator,
    and the runtime enters one per workflow step)."""

    __slots__ = ("_outer", "_slice", "_thread")

    def __init__(self, workflow_name: str, mode: GuardMode) -> None:
        self._slice = _Slice(workflow_name, mode)
        self._thread = 0
        self._outer: _Slice | None = None

    def __enter__(self) -> None:
        self._thread = thread = threading.get_ident()
        self._outer = _active.get(thread)
        _active[thread] = self._slice

    def __exit__(self, *exc_info: object) -> None:
        if self._outer is None:
            _active.pop(self._thread, None)
        else:
            _active[self._thread] = self._outer


_UNGUARDED: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


def guarding(workflow_name: str, mode: GuardMode) -> contextlib.AbstractContextManager[None]:
    """Guard the workflow code run inside this ``with`` block, on this thread.

    The runtime enters it around each slice of workflow execution (one step of the workflow's
    event loop).  Nests: an inner block replaces the outer one until it exits.  With
    ``GuardMode.OFF`` it returns a shared no-op context and installs nothing.
    """
    if mode is GuardMode.OFF:
        return _UNGUARDED
    install()
    return _Guarding(workflow_name, mode)
