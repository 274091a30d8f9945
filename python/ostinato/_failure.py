"""Exceptions <-> failure payloads.

A failure payload is a JSON object describing an exception so that another process (a worker on
another machine, a client, next week's replay) can rebuild a useful error from it::

    {"type": "ValueError", "message": "card declined", "module": "builtins",
     "traceback": "Traceback (most recent call last): ...", "non_retryable": false,
     "details": [], "cause": null}

Activity and child-workflow errors carry their extra fields (``activity_name``, ``activity_id``,
``attempt``, ``retry_state`` / ``workflow_name``, ``instance_id``). Only ``type`` and
``message`` are required when decoding, so hand-written payloads work too.

Encoding never raises: a failure must always be recordable, so anything that cannot be written
(an unserializable detail, a ``__str__`` that raises) is replaced by a readable stand-in.
"""

from __future__ import annotations

import traceback
from datetime import timedelta
from typing import Any

import orjson

from ._errors import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    PayloadError,
    WorkflowFailedError,
)
from ._payloads import PayloadConverter, default_converter

__all__ = ["decode_failure", "encode_failure", "failure_message"]

MAX_TRACEBACK_CHARS = 16 * 1024
MAX_MESSAGE_CHARS = 32 * 1024
MAX_DETAIL_CHARS = 4 * 1024  # length of the repr() stand-in for an unserializable detail
MAX_CAUSE_DEPTH = 8
_ONE_LINE_CHARS = 500

# Private attribute on rebuilt errors: the original exception's module, kept for re-encoding.
_MODULE_ATTR = "_ostinato_remote_module"


def encode_failure(exc: BaseException, *, converter: PayloadConverter | None = None) -> bytes:
    """Describe ``exc`` (and its ``__cause__`` chain) as a JSON failure payload."""
    conv = converter if converter is not None else default_converter()
    try:
        return orjson.dumps(_describe(exc, conv, 0, set()))
    except Exception:  # pragma: no cover - last resort, _describe is defensive already
        return orjson.dumps({"type": type(exc).__name__, "message": _safe_str(exc)})


def _describe(
    exc: BaseException, conv: PayloadConverter, depth: int, seen: set[int]
) -> dict[str, Any]:
    seen.add(id(exc))
    type_name = exc.type if isinstance(exc, ApplicationError) else type(exc).__name__
    doc: dict[str, Any] = {
        "type": _truncate(str(type_name), 200),
        "message": _truncate(_safe_str(exc), MAX_MESSAGE_CHARS),
        "module": str(getattr(exc, _MODULE_ATTR, None) or type(exc).__module__),
        "traceback": _traceback_text(exc),
        "non_retryable": getattr(exc, "non_retryable", False) is True,
        "details": _details(exc, conv) if isinstance(exc, ApplicationError) else [],
    }
    delay = exc.next_retry_delay if isinstance(exc, ApplicationError) else None
    if delay is not None:
        doc["next_retry_delay"] = delay.total_seconds()
    if isinstance(exc, ActivityError):
        doc["activity_name"] = str(exc.activity_name)
        doc["activity_id"] = _as_int(exc.activity_id)
        doc["attempt"] = _as_int(exc.attempt)
        doc["retry_state"] = str(exc.retry_state)
    elif isinstance(exc, ChildWorkflowError):
        doc["workflow_name"] = str(exc.workflow_name)
        doc["instance_id"] = str(exc.instance_id)
    elif isinstance(exc, WorkflowFailedError):
        doc["instance_id"] = str(exc.instance_id)
        doc["run_id"] = str(exc.run_id)
    cause = exc.__cause__
    if cause is not None and depth + 1 < MAX_CAUSE_DEPTH and id(cause) not in seen:
        doc["cause"] = _describe(cause, conv, depth + 1, seen)
    else:
        doc["cause"] = None
    return doc


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__}: str() failed>"


def _as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 40] + f"... ({len(text) - limit + 40} characters omitted)"


def _traceback_text(exc: BaseException) -> str:
    remote = exc.remote_traceback if isinstance(exc, ApplicationError) else None
    if remote and exc.__traceback__ is None:  # a rebuilt error passed on as it is
        return _clip_traceback(remote)
    try:
        local = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))
    except Exception:
        local = f"{type(exc).__name__}: {_safe_str(exc)}\n"
    if remote:
        local = f"{remote}\nRaised again from:\n{local}"
    return _clip_traceback(local)


def _clip_traceback(text: str) -> str:
    """Keep tracebacks under ~16 KB: the top frames and, above all, the innermost ones."""
    if len(text) <= MAX_TRACEBACK_CHARS:
        return text
    head = 2 * 1024
    marker = "\n... ({} characters omitted) ...\n"
    tail = MAX_TRACEBACK_CHARS - head - len(marker) - 10
    omitted = len(text) - head - tail
    return text[:head] + marker.format(omitted) + text[-tail:]


def _details(exc: ApplicationError, conv: PayloadConverter) -> list[Any]:
    out: list[Any] = []
    for index, detail in enumerate(exc.details):
        try:
            encoded = conv.encode(detail, what=f"detail {index + 1} of {exc.type}")
            out.append(orjson.loads(encoded))
        except PayloadError:
            out.append(_stand_in(detail))
        except Exception:  # pragma: no cover - a hook we do not control misbehaved
            out.append(_stand_in(detail))
    return out


def _stand_in(detail: object) -> str:
    try:
        text = repr(detail)
    except Exception:
        text = f"<unrepresentable {type(detail).__name__}>"
    return _truncate(text, MAX_DETAIL_CHARS)


# --------------------------------------------------------------------------------------------


def decode_failure(data: bytes) -> BaseException:
    """Rebuild an exception from a failure payload.

    ``ActivityError`` and ``ChildWorkflowError`` come back as themselves (with their cause
    chain); every other failure, including the cancelled/terminated/timed-out markers, comes
    back as an :class:`ApplicationError` whose ``type`` is the original type name and whose
    ``remote_traceback`` is the original traceback text. Causes are chained via ``__cause__``.
    Never raises: an unreadable payload becomes an ``ApplicationError`` saying so.
    """
    try:
        doc = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError):
        shown = bytes(data[:200]) if isinstance(data, (bytes, bytearray, memoryview)) else data
        return ApplicationError(f"unreadable failure payload: {shown!r}", type="UndecodableFailure")
    return _rebuild(doc, 0)


def _rebuild(doc: Any, depth: int) -> BaseException:
    if not isinstance(doc, dict):
        message = doc if isinstance(doc, str) else orjson.dumps(doc).decode()
        return ApplicationError(_truncate(message, MAX_MESSAGE_CHARS), type="UnknownFailure")
    type_name = _text(doc.get("type")) or "Error"
    message = _text(doc.get("message"))
    raw_cause = doc.get("cause")
    cause = (
        _rebuild(raw_cause, depth + 1)
        if isinstance(raw_cause, dict) and depth + 1 < MAX_CAUSE_DEPTH
        else None
    )
    try:
        if type_name == "ActivityError" and "activity_name" in doc:
            return ActivityError(
                message,
                activity_name=_text(doc.get("activity_name")),
                activity_id=int(doc.get("activity_id") or 0),
                attempt=int(doc.get("attempt") or 0),
                retry_state=_text(doc.get("retry_state")),
                cause=cause,
            )
        if type_name == "ChildWorkflowError" and "workflow_name" in doc:
            return ChildWorkflowError(
                message,
                workflow_name=_text(doc.get("workflow_name")),
                instance_id=_text(doc.get("instance_id")),
                cause=cause,
            )
    except (TypeError, ValueError):
        pass  # malformed extra fields: fall back to a plain ApplicationError
    details = doc.get("details")
    delay = doc.get("next_retry_delay")
    err = ApplicationError(
        message,
        *(details if isinstance(details, list) else ()),
        type=type_name,
        non_retryable=doc.get("non_retryable") is True,
    )
    if isinstance(delay, (int, float)) and not isinstance(delay, bool) and 0 <= delay < 1e12:
        err.next_retry_delay = timedelta(seconds=delay)
    err.remote_traceback = _text(doc.get("traceback")) or None
    err.__cause__ = cause
    module = doc.get("module")
    if isinstance(module, str):
        setattr(err, _MODULE_ATTR, module)
    if isinstance(doc.get("retry_state"), str):
        setattr(err, "retry_state", doc["retry_state"])  # noqa: B010 - not declared on the class
    return err


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=repr).decode()


def failure_message(data: bytes) -> str:
    """A one-line summary such as ``"ValueError: card declined"`` for ``describe()`` and logs.

    Causes follow after ``<-`` (their message is left out when the line already contains it).
    """
    try:
        doc = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError):
        return _one_line(f"UndecodableFailure: {bytes(data[:200])!r}")
    parts: list[str] = []
    depth = 0
    while isinstance(doc, dict) and depth < MAX_CAUSE_DEPTH:
        type_name = _text(doc.get("type")) or "Error"
        message = " ".join(_text(doc.get("message")).split())
        line = " <- ".join(parts)
        if not message or (parts and message in line):
            parts.append(type_name)
        else:
            parts.append(f"{type_name}: {message}")
        doc = doc.get("cause")
        depth += 1
    if not parts:
        return _one_line(f"UnknownFailure: {_text(doc)}")
    return _one_line(" <- ".join(parts))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _ONE_LINE_CHARS:
        text = text[: _ONE_LINE_CHARS - 3] + "..."
    return text
