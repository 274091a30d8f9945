"""Helpers shared by every backend: the few events a backend writes itself, lease tokens,
list cursors, URL masking and in-process wake-ups.

Backends never parse payloads. The events built here splice the caller's payload bytes in
verbatim (``orjson.Fragment``), so a result or failure reaches the parent byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import threading
from collections.abc import Hashable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from .. import _events
from .._backend import NewRun, ParentRef, RunInfo, RunStatus, WorkflowCommit
from .._errors import HistoryCorruptError, LeaseLostError

__all__ = [
    "Waiter",
    "Waiters",
    "check_history_length",
    "child_closed_event",
    "child_start_refused_event",
    "decode_cursor",
    "encode_cursor",
    "failure_payload",
    "first_seq",
    "mask_url",
    "new_lease_token",
    "run_info",
    "signal_external_completed_event",
    "signal_target_missing",
    "terminated_failure",
    "timed_out_event",
    "validate_commit",
    "validate_new_run",
    "wait_on",
    "work_keys",
    "workflow_terminated_event",
]

# ---- events the backend writes ------------------------------------------------------------


def failure_payload(error_type: str, message: str) -> bytes:
    """A failure payload in the shape the runtime rebuilds errors from."""
    return orjson.dumps({"type": error_type, "message": message})


def timed_out_event() -> bytes:
    return _events.timed_out()


def workflow_terminated_event(seq: int, reason: str) -> bytes:
    return _events.workflow_terminated(seq, reason)


def terminated_failure(instance_id: str, reason: str) -> bytes:
    return failure_payload(
        "WorkflowTerminatedError", f"workflow {instance_id!r} was terminated: {reason}"
    )


def signal_external_completed_event(command_id: int, failure: bytes | None) -> bytes:
    return _events.signal_external_completed(command_id, failure)


def child_start_refused_event(command_id: int, instance_id: str, open_run: bool) -> bytes:
    """``child_failed`` for a child whose id is taken (open run, or refused id reuse)."""
    if open_run:
        message = f"child workflow id {instance_id!r} already has a running workflow"
    else:
        message = f"child workflow id {instance_id!r} was used before and id reuse is refused"
    failure = failure_payload("WorkflowAlreadyStartedError", message)
    return _events.child_failed(command_id, failure)


_CLOSED_CHILD_ERRORS = {
    RunStatus.CANCELED: ("WorkflowCancelledError", "was cancelled"),
    RunStatus.TIMED_OUT: ("WorkflowTimedOutError", "timed out"),
    RunStatus.TERMINATED: ("WorkflowTerminatedError", "was terminated"),
}


def child_closed_event(
    command_id: int, instance_id: str, status: RunStatus, result: bytes | None
) -> bytes:
    """The event a parent receives when its child run closes (not for continue-as-new).

    completed -> ``child_completed`` with the result payload as is; failed -> ``child_failed``
    with the child's failure payload as is; canceled / timed_out / terminated -> a
    ``child_failed`` whose failure names the matching error type, so the parent raises the same
    error class whatever the child's code recorded.
    """
    if status is RunStatus.COMPLETED:
        return _events.child_completed(command_id, result or b"null")
    if status is RunStatus.FAILED:
        failure = result or failure_payload(
            "WorkflowFailedError", f"child workflow {instance_id!r} failed"
        )
    elif status is RunStatus.TERMINATED and result is not None:
        failure = result  # terminate() already stored the terminated failure with its reason
    else:
        error_type, what = _CLOSED_CHILD_ERRORS.get(
            status, ("WorkflowFailedError", f"closed with status {status.value}")
        )
        failure = failure_payload(error_type, f"child workflow {instance_id!r} {what}")
    return _events.child_failed(command_id, failure)


# The seq of a history event (raises ValueError when it has none).
first_seq = _events.seq_of


ID_CONFLICTS = ("fail", "use_existing", "terminate_existing")
# The reason recorded on a run terminated by a start with id_conflict="terminate_existing".
CONFLICT_TERMINATE_REASON = "a new run was started with id_conflict='terminate_existing'"


def validate_new_run(run: NewRun) -> None:
    if run.id_reuse not in ("allow", "refuse"):
        raise ValueError(f"id_reuse must be 'allow' or 'refuse', not {run.id_reuse!r}")
    if run.id_conflict not in ID_CONFLICTS:
        raise ValueError(
            f"id_conflict must be one of {', '.join(map(repr, ID_CONFLICTS))}, "
            f"not {run.id_conflict!r}"
        )
    if run.id_conflict == "terminate_existing" and run.id_reuse == "refuse":
        raise ValueError("id_conflict='terminate_existing' needs id_reuse='allow'")
    if not run.instance_id:
        raise ValueError("a workflow instance id must not be empty")
    if not run.run_id:
        raise ValueError("a run id must not be empty")


def validate_commit(instance_id: str, history_length: int, commit: WorkflowCommit) -> None:
    """Checks made before anything is written: a bad commit changes nothing."""
    if commit.new_events:
        seq = first_seq(commit.new_events[0])
        if seq != history_length + 1:
            raise LeaseLostError(
                f"workflow {instance_id!r} has {history_length} history events but the commit "
                f"starts at seq {seq}: another worker advanced the run"
            )
    for child in commit.children:
        if child.parent is None:
            raise ValueError(f"child run {child.instance_id!r} has no parent reference")
        validate_new_run(child)
    close = commit.close
    if close is not None:
        if close.status.is_open:
            raise ValueError("a run cannot be closed with status 'running'")
        if (close.status is RunStatus.CONTINUED_AS_NEW) != (close.next_run is not None):
            raise ValueError("next_run is required with continued_as_new, and only with it")
        if close.next_run is not None:
            validate_new_run(close.next_run)
            if close.next_run.instance_id != instance_id:
                raise ValueError("continue-as-new keeps the instance id")


def signal_target_missing(instance_id: str, exists: bool) -> bytes:
    if exists:
        return failure_payload(
            "WorkflowNotRunningError", f"workflow {instance_id!r} is not running"
        )
    return failure_payload("WorkflowNotFoundError", f"no workflow with id {instance_id!r}")


# ---- reading stored rows ------------------------------------------------------------------


def run_info(row: tuple[Any, ...] | Sequence[Any]) -> RunInfo:
    """A ``RunInfo`` from the stored columns (instance_id, run_id, workflow_name, queue,
    status, created_at, updated_at, closed_at, history_length, result, blocked_reason,
    parent_instance_id, parent_run_id, parent_command_id, next_run_id).

    A row no version of ostinato wrote (tampered with, or from a newer version) does not make
    listing fail: a status this version does not know, or a field of the wrong type, shows
    the run as open and blocked, with the reason.
    """
    (
        instance_id, run_id, workflow_name, queue, status, created_at, updated_at, closed_at,
        history_length, result, blocked_reason, parent_instance_id, parent_run_id,
        parent_command_id, next_run_id,
    ) = row[:15]  # fmt: skip
    problems = []
    try:
        run_status = RunStatus(status)
    except ValueError:
        run_status = RunStatus.RUNNING
        problems.append(f"status {status!r:.40} is not one this version of ostinato knows")

    def number(name: str, value: Any, kind: type, default: Any) -> Any:
        if value is None and default is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return kind(value)
        problems.append(f"{name} is {value!r:.40}, not a number")
        return default

    created = number("created_at", created_at, float, 0.0)
    updated = number("updated_at", updated_at, float, created)
    closed = number("closed_at", closed_at, float, None)
    length = number("history_length", history_length, int, 0)
    parent = None
    if parent_instance_id is not None:
        parent = ParentRef(parent_instance_id, parent_run_id, parent_command_id)
    reason = blocked_reason
    if problems:
        reason = (
            f"the store's row for this run is corrupt: {'; '.join(problems)}. "
            "It is shown as open and blocked; repair or remove the row"
        )
    return RunInfo(
        instance_id=str(instance_id),
        run_id=str(run_id),
        workflow_name=str(workflow_name),
        queue=str(queue),
        status=run_status,
        created_at=created,
        updated_at=updated,
        closed_at=closed,
        history_length=length,
        result=None if result is None else bytes(result),
        blocked_reason=reason,
        parent=parent,
        next_run_id=next_run_id,
    )


def check_history_length(
    instance_id: str, run_id: str, history_length: int, events: list[bytes]
) -> list[bytes]:
    """``events`` if there are as many as the run row says, else ``HistoryCorruptError``."""
    if len(events) != history_length:
        raise HistoryCorruptError(
            f"history of workflow {instance_id!r} (run {run_id}) is corrupt: its run row "
            f"says {history_length} events, the store holds {len(events)}. The run is kept; "
            "repair or terminate it",
            seq=min(len(events), history_length) + 1,
            instance_id=instance_id,
        )
    return events


# ---- leases, cursors, URLs ----------------------------------------------------------------


def new_lease_token() -> str:
    return secrets.token_hex(16)


def encode_cursor(position: int) -> str:
    return f"r{position:x}"


def decode_cursor(cursor: str) -> int:
    invalid = f"invalid list cursor {cursor!r:.80}: pass the cursor list_runs returned"
    if not isinstance(cursor, str) or not cursor.startswith("r") or len(cursor) > 17:
        raise ValueError(invalid)
    try:
        position = int(cursor[1:], 16)
    except ValueError:
        raise ValueError(invalid) from None
    if not 0 <= position < 2**63:
        raise ValueError(invalid)
    return position


# "user:password@" anywhere (also in mistyped URLs such as postgresql:/host or
# postgres//host that urlsplit does not read as having a password), and password=... of
# key=value connection strings and query strings.
_USERINFO = re.compile(r"(?P<user>[^\s:/@?#&=]*):(?P<password>[^\s/?#]*)@")
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)


def _mask_loose(text: str) -> str:
    text = _USERINFO.sub(r"\g<user>:***@", text)
    return _KV_PASSWORD.sub(r"\g<key>***", text)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for reprs, logs and errors)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return _mask_loose(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{user}:***@{host}" + (f":{port}" if port is not None else "")
    return _mask_loose(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


# ---- in-process wake-ups ------------------------------------------------------------------


class Waiter:
    """One pending wait: a future on the waiting coroutine's loop, woken by any of its keys."""

    __slots__ = ("broad", "future", "keys", "loop")

    def __init__(self, keys: tuple[Hashable, ...]) -> None:
        # True when woken by notify_all ("something changed, look again"), not by a key.
        self.broad = False
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.keys = keys


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Waiters:
    """Registry of waiting coroutines keyed by what they wait for.

    ``notify`` may be called from any thread (the SQLite writer thread does): a waiter on
    another thread's loop is woken with ``call_soon_threadsafe``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Hashable, set[Waiter]] = {}

    def register(self, keys: Iterable[Hashable]) -> Waiter:
        waiter = Waiter(tuple(keys))
        with self._lock:
            for key in waiter.keys:
                self._by_key.setdefault(key, set()).add(waiter)
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        with self._lock:
            for key in waiter.keys:
                waiting = self._by_key.get(key)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._by_key[key]

    def notify(self, keys: Iterable[Hashable]) -> None:
        with self._lock:
            woken = {w for key in keys for w in self._by_key.get(key, ())}
        self._wake(woken)

    def waiting(self) -> bool:
        """Whether anyone waits (read without the lock: a hint, not a promise)."""
        return bool(self._by_key)

    def notify_all(self) -> None:
        with self._lock:
            woken = {w for waiting in self._by_key.values() for w in waiting}
        for waiter in woken:
            waiter.broad = True
        self._wake(woken)

    @staticmethod
    def _wake(woken: set[Waiter]) -> None:
        if not woken:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for waiter in woken:
            if waiter.loop is current:
                _wake(waiter.future)
            else:
                # RuntimeError: that loop is closed, so nobody waits there any more.
                with contextlib.suppress(RuntimeError):
                    waiter.loop.call_soon_threadsafe(_wake, waiter.future)


def work_keys(kind: str, queues: Iterable[str]) -> list[tuple[str, str]]:
    if kind not in ("workflow", "activity"):
        raise ValueError(f"kind must be 'workflow' or 'activity', not {kind!r}")
    return [(kind, queue) for queue in queues]


async def wait_on(waiter: Waiter, timeout: float) -> bool:
    """Wait until the waiter is woken (True) or ``timeout`` seconds pass (False)."""
    if waiter.future.done():
        return True
    if timeout <= 0:
        return False
    done, _ = await asyncio.wait({waiter.future}, timeout=timeout)
    return bool(done)
