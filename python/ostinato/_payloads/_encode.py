"""Encoding: Python values -> JSON bytes (orjson), and the search that names the part of a
value JSON cannot carry."""

from __future__ import annotations

import base64
import collections.abc
import dataclasses
import datetime as _dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson

# orjson would round UTC offsets to the minute and skip dataclass fields whose name starts with
# an underscore, so datetimes and dataclasses go through our own hook instead.
_DUMPS_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)

_SUPPORTED = (
    "use a dataclass, dict, list, str, int, float, bool, None, datetime, date, UUID, Enum "
    "or Decimal-as-str"
)

_NoneType = type(None)
_MAX_CACHE = 4096
_INT_MIN = -(1 << 63)
_INT_LIMIT = 1 << 64  # orjson writes integers in [-2**63, 2**64)


_DC_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _dataclass_names(cls: type) -> tuple[str, ...]:
    names = _DC_FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        if len(_DC_FIELD_NAMES) >= _MAX_CACHE:
            _DC_FIELD_NAMES.clear()
        _DC_FIELD_NAMES[cls] = names
    return names


def _json_sort_key(item: object) -> bytes:
    return orjson.dumps(item, default=_default, option=_DUMPS_OPTIONS)


def _set_to_list(items: collections.abc.Set[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=_json_sort_key)


def _isoformat(value: _dt.date | _dt.time) -> str:
    return value.isoformat()


def _timedelta_seconds(value: _dt.timedelta) -> float:
    return value.total_seconds()


def _b64(value: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(value).decode("ascii")


_EXACT_DEFAULTS: dict[type, Callable[[Any], Any]] = {
    _dt.datetime: _isoformat,
    _dt.date: _isoformat,
    _dt.time: _isoformat,
    _dt.timedelta: _timedelta_seconds,
    decimal.Decimal: str,
    uuid.UUID: str,
    set: _set_to_list,
    frozenset: _set_to_list,
    bytes: _b64,
    bytearray: _b64,
    memoryview: _b64,
}


def _default(value: Any) -> Any:
    """orjson's hook for every type it does not write natively (or that we pass through)."""
    cls = type(value)
    hook = _EXACT_DEFAULTS.get(cls)
    if hook is not None:
        return hook(value)
    if hasattr(cls, "__dataclass_fields__"):
        return {name: getattr(value, name) for name in _dataclass_names(cls)}
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, tuple):  # NamedTuple and other tuple subclasses
        return list(value)
    if isinstance(value, (set, frozenset)):
        return _set_to_list(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return _b64(value)
    raise TypeError(f"Type is not JSON serializable: {cls.__qualname__}")


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_default, option=_DUMPS_OPTIONS)


_OPAQUE = (
    _dt.date,
    _dt.time,
    _dt.timedelta,
    uuid.UUID,
    decimal.Decimal,
    bytes,
    bytearray,
    memoryview,
)
_KEY_TYPES = (str, int, float, _NoneType, uuid.UUID, enum.Enum, _dt.date, _dt.time)


class _Problem:
    """Why (and where) a value cannot be written as JSON."""

    __slots__ = ("path", "predicate", "subject")

    def __init__(self, subject: str, predicate: str) -> None:
        self.path: list[str] = []  # innermost segment first
        self.subject = subject
        self.predicate = predicate


def _find_problem(value: object, depth: int = 0) -> _Problem | None:
    """Walk ``value`` the way the encoder does and report the first thing it cannot write.

    Only runs on the slow path: after orjson refused the value, or wrote a ``null`` that might
    stand for a NaN.
    """
    if depth > 250:
        return _Problem(
            "the value", "is nested too deeply (over 250 levels) or contains a reference cycle"
        )
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return _Problem("str", "contains lone surrogates and is not valid UTF-8")
        return None
    if isinstance(value, enum.Enum):
        return _find_problem(value.value, depth + 1)
    if isinstance(value, int):
        if not _INT_MIN <= value < _INT_LIMIT:
            return _Problem(
                f"integer {value}",
                "is outside the 64-bit range JSON payloads carry; pass it as a str or Decimal",
            )
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return _Problem(
                f"float {value!r}",
                "cannot be carried faithfully by JSON (NaN and infinity are refused); "
                "use None or a str",
            )
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _KEY_TYPES):
                problem = _Problem(
                    f"dict key of type {type(key).__qualname__}",
                    "is not supported; use str, int, float, bool, None, UUID, Enum, date or "
                    "datetime keys",
                )
            elif isinstance(key, float) and not math.isfinite(key):
                problem = _Problem(
                    f"dict key {key!r}", "cannot be carried faithfully by JSON; use a str key"
                )
            elif isinstance(key, _dt.time) and key.tzinfo is not None:
                problem = _Problem("dict key of type time", "must not carry a tzinfo")
            else:
                found = _find_problem(item, depth + 1)
                if found is None:
                    continue
                problem = found
            problem.path.append(f"[{key!r}]")
            return problem
        return None
    if isinstance(value, (list, tuple)):
        items: Sequence[Any] = value
    elif isinstance(value, (set, frozenset)):
        items = list(value)
    elif hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type):
        for name in _dataclass_names(type(value)):
            found = _find_problem(getattr(value, name), depth + 1)
            if found is not None:
                found.path.append(f".{name}")
                return found
        return None
    elif isinstance(value, _OPAQUE):
        return None
    else:
        return _Problem(
            f"object of type {type(value).__qualname__}", f"is not JSON-serializable; {_SUPPORTED}"
        )
    for index, item in enumerate(items):
        found = _find_problem(item, depth + 1)
        if found is not None:
            found.path.append(f"[{index}]")
            return found
    return None


# A longer path (a deeply nested value) is shown by its outer and inner ends.
_PATH_SHOWN = 12


def _render_path(segments: Sequence[str]) -> str:
    """``['.amount', '[2]', '.items']`` (innermost first) -> ``"items[2].amount"``; a path of
    more than 12 segments keeps its outer 8 and inner 4: ``a[0][0]...(240 more)...[0]``."""
    outer_first = list(reversed(segments))
    if len(outer_first) > _PATH_SHOWN:
        hidden = len(outer_first) - _PATH_SHOWN
        outer_first = [*outer_first[:8], f"...({hidden} more levels)...", *outer_first[-4:]]
    text = "".join(outer_first)
    return text[1:] if text.startswith(".") else text


def _location(path: str) -> str:
    if not path:
        return ""
    if path.startswith("["):
        return f"item {path}"
    return f"field {path!r}"
