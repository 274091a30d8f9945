"""Payload conversion: Python values <-> JSON bytes (orjson), typed by annotations.

Encoding turns a value into JSON bytes; decoding turns JSON bytes back into Python values shaped
by a type hint (usually a parameter or return annotation). Nothing is ever pickled.

Encoding rules
--------------
* JSON natives (``None``, ``bool``, ``int`` in the 64-bit range, finite ``float``, ``str``,
  ``list``, ``dict``) are written as they are. Dicts keep their insertion order; non-``str``
  keys (``int``, ``float``, ``bool``, ``UUID``, ``Enum``, ``date`` ...) are written as strings.
* dataclass -> object of all its fields (recursively), ``Enum`` -> its value, ``tuple`` and
  ``NamedTuple`` -> array, ``set``/``frozenset`` -> array (sorted when the items are sortable,
  otherwise ordered by their JSON text, so the output is deterministic), ``datetime``/``date``/
  ``time`` -> ISO 8601 string (offset kept to the microsecond), ``timedelta`` -> seconds as a
  float, ``UUID`` -> string, ``Decimal`` -> string, ``bytes`` -> base64 string.
* NaN and infinities are refused: JSON cannot carry them.

Decoding is driven by a compiled decoder per type hint, cached, so the hot path (decoding an
activity result of a plain type) is one ``orjson.loads`` plus a type check.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc
import dataclasses
import datetime as _dt
import decimal
import enum
import functools
import inspect
import math
import re
import sys
import types
import typing
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ._errors import PayloadError, PayloadTooLargeError

__all__ = ["PayloadConverter", "check_call", "default_converter"]

DEFAULT_MAX_PAYLOAD_SIZE = 2 * 1024 * 1024

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
_json_loads = orjson.loads
_UnionType: Any = getattr(types, "UnionType", typing.Union)
_MAX_CACHE = 4096
_INT_MIN = -(1 << 63)
_INT_LIMIT = 1 << 64  # orjson writes integers in [-2**63, 2**64)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Decoding: compiled decoders
# --------------------------------------------------------------------------------------------

# A decoder takes a plain JSON value and returns the typed value, or raises _Mismatch.
# ``None`` in place of a decoder means "take the JSON value as it is".
_Decoder = Callable[[Any], Any]


class _Mismatch(Exception):
    """Internal: a JSON value does not fit the hint. Carries the path, innermost first."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def render(self, what: str) -> str:
        where = _location(_render_path(self.path))
        return f"{what}: {where} {self.problem}" if where else f"{what}: {self.problem}"


def _got(value: object) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{name} {shown!r}"
    if isinstance(value, (int, float)):
        return f"{name} {value!r}"
    return name


def _mismatch(expected: str, value: object) -> _Mismatch:
    return _Mismatch(f"expected {expected}, got {_got(value)}")


def _hint_name(hint: Any) -> str:
    """A short, readable name for a type hint (``list[Line]``, ``Card | Bank | None``)."""
    if hint is _NoneType or hint is None:
        return "None"
    if hint is Ellipsis:
        return "..."
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is _UnionType:
        return " | ".join(_hint_name(arg) for arg in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(arg) for arg in args)}]"
    if origin is not None and args:
        name = getattr(origin, "__qualname__", None) or repr(origin).replace("typing.", "")
        return f"{name}[{', '.join(_hint_name(arg) for arg in args)}]"
    if isinstance(hint, type):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


def _dec_str(value: Any) -> Any:
    if type(value) is str:
        return value
    raise _mismatch("str", value)


def _dec_int(value: Any) -> Any:
    if isinstance(value, int):  # bool is an int, as in Python's typing
        return value
    raise _mismatch("int", value)


def _dec_float(value: Any) -> Any:
    if type(value) is float:
        return value
    if isinstance(value, int):
        return float(value)
    raise _mismatch("float", value)


def _dec_bool(value: Any) -> Any:
    if type(value) is bool:
        return value
    raise _mismatch("bool", value)


def _dec_none(value: Any) -> Any:
    if value is None:
        return None
    raise _mismatch("None", value)


def _dec_bare_list(value: Any) -> Any:
    if type(value) is list:
        return value
    raise _mismatch("list", value)


def _dec_bare_dict(value: Any) -> Any:
    if type(value) is dict:
        return value
    raise _mismatch("dict", value)


def _dec_bare_tuple(value: Any) -> Any:
    if type(value) is list:
        return tuple(value)
    raise _mismatch("tuple (JSON array)", value)


# Python's fromisoformat drops the microseconds of a UTC offset ("+00:19:32.000001"); such
# offsets are parsed here.
_FRACTIONAL_OFFSET = re.compile(r"([+-])(\d\d):(\d\d):(\d\d)\.(\d{6})$")


def _split_fractional_offset(text: str) -> tuple[str, _dt.tzinfo | None]:
    match = _FRACTIONAL_OFFSET.search(text)
    if match is None:
        return text, None
    sign, hours, minutes, seconds, micros = match.groups()
    offset = _dt.timedelta(
        hours=int(hours), minutes=int(minutes), seconds=int(seconds), microseconds=int(micros)
    )
    return text[: match.start()], _dt.timezone(-offset if sign == "-" else offset)


def _dec_datetime(value: Any) -> Any:
    if type(value) is str:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            text, zone = _split_fractional_offset(text)
            parsed = _dt.datetime.fromisoformat(text)
            return parsed if zone is None else parsed.replace(tzinfo=zone)
        except ValueError:
            pass
    raise _mismatch("datetime (ISO 8601 string)", value)


def _dec_date(value: Any) -> Any:
    if type(value) is str:
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _mismatch("date (ISO 8601 string)", value)


def _dec_time(value: Any) -> Any:
    if type(value) is str:
        try:
            text, zone = _split_fractional_offset(value)
            parsed = _dt.time.fromisoformat(text)
            return parsed if zone is None else parsed.replace(tzinfo=zone)
        except ValueError:
            pass
    raise _mismatch("time (ISO 8601 string)", value)


def _dec_timedelta(value: Any) -> Any:
    if isinstance(value, (int, float)) and type(value) is not bool:
        try:
            return _dt.timedelta(seconds=value)
        except (OverflowError, ValueError):
            pass
    raise _mismatch("timedelta (seconds as a number)", value)


def _dec_uuid(value: Any) -> Any:
    if type(value) is str:
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise _mismatch("UUID (string)", value)


def _dec_decimal(value: Any) -> Any:
    try:
        if type(value) is str:
            return decimal.Decimal(value)
        if type(value) is int:
            return decimal.Decimal(value)
        if type(value) is float:
            return decimal.Decimal(repr(value))
    except (decimal.InvalidOperation, ValueError):
        pass
    raise _mismatch("Decimal (string)", value)


def _dec_bytes(value: Any) -> Any:
    if type(value) is str:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise _mismatch("bytes (base64 string)", value)


def _dec_bytearray(value: Any) -> Any:
    return bytearray(_dec_bytes(value))


def _unsupported(hint: Any) -> _Decoder:
    message = (
        f"cannot decode into {_hint_name(hint)}: unsupported type annotation; "
        f"{_SUPPORTED} (or a list, tuple, set, TypedDict or NamedTuple of those)"
    )

    def decode(value: Any) -> Any:
        raise _Mismatch(message)

    return decode


def _resolve_str(text: str, ns: Mapping[str, Any] | None) -> Any:
    scope: dict[str, Any] = dict(vars(typing))
    if ns is not None:
        scope.update(ns)
    try:
        return eval(text, scope)
    except Exception:
        warnings.warn(
            f"ostinato: cannot resolve the annotation {text!r}; values for it are decoded as "
            "plain JSON",
            stacklevel=3,
        )
        return Any


_DECODER_CACHE: dict[tuple[Any, int], _Decoder | None] = {}


def _compile(hint: Any, ns: Mapping[str, Any] | None = None) -> _Decoder | None:
    """The decoder for ``hint`` (``None`` means: the plain JSON value is already right)."""
    if isinstance(hint, typing.ForwardRef):
        hint = hint.__forward_arg__
    if isinstance(hint, str):
        hint = _resolve_str(hint, ns)
    key = (hint, id(ns) if ns is not None else 0)
    try:
        return _DECODER_CACHE[key]
    except KeyError:
        cacheable = True
    except TypeError:  # unhashable hint (e.g. Annotated with a dict)
        cacheable = False
    try:
        decoder = _build(hint, ns)
    except Exception:  # an exotic hint we cannot introspect: refuse it when used
        decoder = _unsupported(hint)
    if cacheable:
        if len(_DECODER_CACHE) >= _MAX_CACHE:
            _DECODER_CACHE.clear()
        _DECODER_CACHE[key] = decoder
    return decoder


_SIMPLE: dict[Any, _Decoder | None] = {
    str: _dec_str,
    int: _dec_int,
    float: _dec_float,
    bool: _dec_bool,
    _NoneType: _dec_none,
    None: _dec_none,
    list: _dec_bare_list,
    dict: _dec_bare_dict,
    tuple: _dec_bare_tuple,
    _dt.datetime: _dec_datetime,
    _dt.date: _dec_date,
    _dt.time: _dec_time,
    _dt.timedelta: _dec_timedelta,
    uuid.UUID: _dec_uuid,
    decimal.Decimal: _dec_decimal,
    bytes: _dec_bytes,
    bytearray: _dec_bytearray,
    object: None,
}

_LIST_ORIGINS = {
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
}
_DICT_ORIGINS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
_SET_ORIGINS = {set, collections.abc.Set, collections.abc.MutableSet}


def _build(hint: Any, ns: Mapping[str, Any] | None) -> _Decoder | None:
    if hint is Any or hint is inspect.Parameter.empty:
        return None
    try:
        if hint in _SIMPLE:
            return _SIMPLE[hint]
    except TypeError:
        pass
    if isinstance(hint, typing.TypeVar):
        bound = hint.__bound__
        return _compile(bound, ns) if bound is not None else None
    supertype = getattr(hint, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _compile(supertype, ns)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _compile(args[0], ns)
    if origin in (typing.ClassVar, typing.Final):
        return _compile(args[0], ns) if args else None
    if origin is typing.Union or origin is _UnionType:
        return _union_decoder(hint, args, ns)
    if origin is typing.Literal:
        return _literal_decoder(hint, args)
    if origin in _LIST_ORIGINS:
        return _list_decoder(_compile(args[0], ns) if args else None)
    if origin is tuple:
        return _tuple_decoder(hint, args, ns)
    if origin in _DICT_ORIGINS:
        key_hint = args[0] if args else Any
        value_hint = args[1] if len(args) > 1 else Any
        return _dict_decoder(_key_decoder(key_hint, ns), _compile(value_hint, ns))
    if origin in _SET_ORIGINS or origin is frozenset:
        item = _compile(args[0], ns) if args else None
        return _set_decoder(frozenset if origin is frozenset else set, item)
    if origin is not None and isinstance(origin, type) and dataclasses.is_dataclass(origin):
        params = getattr(origin, "__parameters__", ())
        return _DataclassDecoder(origin, dict(zip(params, args, strict=False)))
    if isinstance(hint, type):
        return _class_decoder(hint, ns)
    return _unsupported(hint)


def _class_decoder(cls: type, ns: Mapping[str, Any] | None) -> _Decoder | None:
    if issubclass(cls, enum.Enum):
        return _enum_decoder(cls)
    if dataclasses.is_dataclass(cls):
        return _DataclassDecoder(cls, {})
    if typing.is_typeddict(cls):
        return _TypedDictDecoder(cls)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _NamedTupleDecoder(cls)
    if cls is set or cls is frozenset:
        return _set_decoder(cls, None)
    for base in (bool, int, float, str, _dt.datetime, _dt.date, decimal.Decimal, uuid.UUID):
        if issubclass(cls, base):
            return _subclass_decoder(cls, _SIMPLE[base])
    return _unsupported(cls)


def _subclass_decoder(cls: type, base: _Decoder | None) -> _Decoder:
    """``class OrderId(str)`` and friends: decode as the base, then build the subclass."""
    assert base is not None

    def decode(value: Any) -> Any:
        plain = base(value)
        try:
            return cls(plain)
        except Exception as exc:
            raise _Mismatch(
                f"could not be decoded into {cls.__qualname__} ({type(exc).__name__}: {exc})"
            ) from None

    return decode


def _enum_decoder(cls: type[enum.Enum]) -> _Decoder:
    shown = ", ".join(repr(member.value) for member in cls)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    expected = f"{cls.__qualname__} (one of {shown})"

    def decode(value: Any) -> Any:
        try:
            return cls(value)
        except (ValueError, TypeError):
            if type(value) is list:  # tuple-valued members come back as arrays
                try:
                    return cls(tuple(value))
                except (ValueError, TypeError):
                    pass
        raise _mismatch(expected, value)

    return decode


def _literal_decoder(hint: Any, args: tuple[Any, ...]) -> _Decoder:
    table: dict[tuple[type, Any], Any] = {}
    for literal in args:
        if isinstance(literal, enum.Enum):
            raw = literal.value
            table[(type(raw), raw)] = literal
        else:
            table[(type(literal), literal)] = literal
    expected = _hint_name(hint)

    def decode(value: Any) -> Any:
        try:
            return table[(type(value), value)]
        except (KeyError, TypeError):
            raise _mismatch(expected, value) from None

    return decode


def _list_decoder(item: _Decoder | None) -> _Decoder:
    if item is None:
        return _dec_bare_list

    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _mismatch("list", value)
        try:
            return [item(x) for x in value]
        except _Mismatch:
            _locate_in_sequence(value, item)
            raise

    return decode


def _locate_in_sequence(value: list[Any], item: _Decoder) -> None:
    """Re-run ``item`` to find the failing index and raise its mismatch with the index added."""
    for index, element in enumerate(value):
        try:
            item(element)
        except _Mismatch as mismatch:
            mismatch.path.append(f"[{index}]")
            raise mismatch from None


def _tuple_decoder(hint: Any, args: tuple[Any, ...], ns: Mapping[str, Any] | None) -> _Decoder:
    if not args:
        return _dec_bare_tuple
    if len(args) == 2 and args[1] is Ellipsis:
        listed = _list_decoder(_compile(args[0], ns))

        def decode_var(value: Any) -> Any:
            if type(value) is not list:
                raise _mismatch(_hint_name(hint), value)
            return tuple(listed(value))

        return decode_var
    if args == ((),):  # tuple[()] on Python 3.10
        args = ()
    items = [_compile(arg, ns) for arg in args]
    expected = _hint_name(hint)

    def decode_fixed(value: Any) -> Any:
        if type(value) is not list:
            raise _mismatch(expected, value)
        if len(value) != len(items):
            raise _Mismatch(f"expected {expected} ({len(items)} items), got {len(value)} items")
        out = []
        for index, (dec, element) in enumerate(zip(items, value, strict=True)):
            if dec is None:
                out.append(element)
                continue
            try:
                out.append(dec(element))
            except _Mismatch as mismatch:
                mismatch.path.append(f"[{index}]")
                raise
        return tuple(out)

    return decode_fixed


def _set_decoder(kind: type, item: _Decoder | None) -> _Decoder:
    listed = _list_decoder(item)
    name = kind.__name__

    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _mismatch(f"{name} (JSON array)", value)
        try:
            return kind(listed(value))
        except TypeError:
            raise _Mismatch(f"expected {name} of hashable items, got unhashable items") from None

    return decode


def _key_decoder(hint: Any, ns: Mapping[str, Any] | None) -> _Decoder | None:
    """JSON object keys are strings; rebuild the annotated key type from them."""
    if isinstance(hint, (str, typing.ForwardRef)):
        hint = _compile_hint_only(hint, ns)
    if hint is Any or hint is str or hint is object:
        return None
    if hint is int or hint is float:
        kind: type = hint

        def decode_number(key: Any) -> Any:
            try:
                return kind(key)
            except ValueError:
                raise _mismatch(f"{kind.__name__} key", key) from None

        return decode_number
    if hint is bool:
        bools = {"true": True, "false": False}

        def decode_bool(key: Any) -> Any:
            try:
                return bools[key]
            except KeyError:
                raise _mismatch("bool key", key) from None

        return decode_bool
    members: list[Any] = []
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = list(hint)
    elif typing.get_origin(hint) is typing.Literal:
        members = list(typing.get_args(hint))
    if members:
        table = {_key_text(m.value if isinstance(m, enum.Enum) else m): m for m in members}
        expected = f"{_hint_name(hint)} key"

        def decode_member(key: Any) -> Any:
            try:
                return table[key]
            except KeyError:
                raise _mismatch(expected, key) from None

        return decode_member
    return _compile(hint, ns)  # UUID, date, datetime, NewType of str ... parse from the string


def _compile_hint_only(hint: Any, ns: Mapping[str, Any] | None) -> Any:
    if isinstance(hint, typing.ForwardRef):
        hint = hint.__forward_arg__
    return _resolve_str(hint, ns) if isinstance(hint, str) else hint


def _key_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _dict_decoder(key: _Decoder | None, item: _Decoder | None) -> _Decoder:
    if key is None and item is None:
        return _dec_bare_dict

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise _mismatch("dict", value)
        try:
            if key is None:
                assert item is not None
                return {k: item(v) for k, v in value.items()}
            if item is None:
                return {key(k): v for k, v in value.items()}
            return {key(k): item(v) for k, v in value.items()}
        except _Mismatch:
            pass
        for k, v in value.items():  # slow path: find the failing entry
            try:
                if key is not None:
                    key(k)
                if item is not None:
                    item(v)
            except _Mismatch as mismatch:
                mismatch.path.append(f"[{k!r}]")
                raise mismatch from None
        raise AssertionError("unreachable")  # pragma: no cover

    return decode


def _union_decoder(
    hint: Any, args: tuple[Any, ...], ns: Mapping[str, Any] | None
) -> _Decoder | None:
    has_none = _NoneType in args
    members = [arg for arg in args if arg is not _NoneType]
    decoders = [_compile(member, ns) for member in members]
    if any(dec is None for dec in decoders):
        return None  # Any swallows the union
    if len(decoders) == 1:
        only = decoders[0]
        assert only is not None
        if not has_none:
            return only

        def decode_optional(value: Any) -> Any:
            if value is None:
                return None
            return only(value)

        return decode_optional

    exact = {m for m in members if m in (str, int, float, bool)}
    ordered: list[_Decoder] = [dec for dec in decoders if dec is not None]
    expected = _hint_name(hint)

    def decode_union(value: Any) -> Any:
        if value is None:
            if has_none:
                return None
            raise _mismatch(expected, value)
        if type(value) in exact:
            return value
        candidates = ordered
        if type(value) is dict:
            candidates = sorted(ordered, key=lambda dec: _fit(dec, value))
        errors: list[_Mismatch] = []
        for dec in candidates:
            try:
                return dec(value)
            except _Mismatch as mismatch:
                errors.append(mismatch)
        if type(value) is dict:
            close = [d for d in candidates if _fit(d, value) < 2]
            if len(close) == 1:  # one dataclass fits the keys: its error says the most
                raise errors[candidates.index(close[0])]
        raise _mismatch(expected, value)

    return decode_union


def _fit(decoder: _Decoder, value: dict[str, Any]) -> int:
    """How well a dict's keys fit a dataclass decoder: 0 exactly, 1 plausibly, 2 not at all."""
    if isinstance(decoder, _DataclassDecoder):
        return decoder.fit(value)
    return 2


class _DataclassDecoder:
    """Decodes a JSON object into a dataclass; fields are compiled on first use (recursion-safe)."""

    __slots__ = ("_fields", "_names", "_required", "cls", "typevars")

    def __init__(self, cls: type, typevars: dict[Any, Any]) -> None:
        self.cls = cls
        self.typevars = typevars
        self._fields: list[tuple[str, _Decoder | None, bool]] | None = None
        self._names: frozenset[str] = frozenset()
        self._required: frozenset[str] = frozenset()

    def _prepare(self) -> list[tuple[str, _Decoder | None, bool]]:
        ns = _module_ns(self.cls)
        hints = _class_hints(self.cls, ns)
        fields: list[tuple[str, _Decoder | None, bool]] = []
        for field in dataclasses.fields(self.cls):
            if not field.init:
                continue  # derived in __init__/__post_init__; the stored value is informational
            hint = hints.get(field.name, field.type)
            if self.typevars:
                hint = _substitute(hint, self.typevars)
            elif isinstance(hint, typing.TypeVar):
                hint = Any
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            fields.append((field.name, _compile(hint, ns), required))
        self._names = frozenset(name for name, _, _ in fields)
        self._required = frozenset(name for name, _, required in fields if required)
        self._fields = fields
        return fields

    def fit(self, value: dict[str, Any]) -> int:
        if self._fields is None:
            self._prepare()
        keys = value.keys()
        if keys == self._names:
            return 0
        if self._required <= keys <= self._names:
            return 1
        return 2

    def __call__(self, value: Any) -> Any:
        fields = self._fields if self._fields is not None else self._prepare()
        if type(value) is not dict:
            raise _mismatch(f"{self.cls.__qualname__} (JSON object)", value)
        kwargs: dict[str, Any] = {}
        for name, dec, required in fields:
            if name in value:
                raw = value[name]
                if dec is None:
                    kwargs[name] = raw
                else:
                    try:
                        kwargs[name] = dec(raw)
                    except _Mismatch as mismatch:
                        mismatch.path.append(f".{name}")
                        raise
            elif required:
                absent = _Mismatch(f"is missing (required by {self.cls.__qualname__})")
                absent.path.append(f".{name}")
                raise absent
        try:
            return self.cls(**kwargs)
        except Exception as exc:
            raise _Mismatch(
                f"could not be decoded into {self.cls.__qualname__} ({type(exc).__name__}: {exc})"
            ) from None


class _TypedDictDecoder:
    __slots__ = ("_fields", "_required", "cls")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self._fields: dict[str, _Decoder | None] | None = None
        self._required: frozenset[str] = getattr(cls, "__required_keys__", frozenset())

    def __call__(self, value: Any) -> Any:
        if self._fields is None:
            ns = _module_ns(self.cls)
            self._fields = {k: _compile(h, ns) for k, h in _class_hints(self.cls, ns).items()}
        if type(value) is not dict:
            raise _mismatch(f"{self.cls.__qualname__} (JSON object)", value)
        missing = self._required - value.keys()
        if missing:
            mismatch = _Mismatch(f"is missing (required by {self.cls.__qualname__})")
            mismatch.path.append(f".{min(missing)}")
            raise mismatch
        out: dict[str, Any] = {}
        for key, raw in value.items():
            dec = self._fields.get(key)
            if dec is None:
                out[key] = raw
                continue
            try:
                out[key] = dec(raw)
            except _Mismatch as mismatch:
                mismatch.path.append(f".{key}")
                raise
        return out


class _NamedTupleDecoder:
    __slots__ = ("_fields", "cls")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self._fields: list[tuple[str, _Decoder | None]] | None = None

    def __call__(self, value: Any) -> Any:
        if self._fields is None:
            ns = _module_ns(self.cls)
            hints = _class_hints(self.cls, ns)
            names: tuple[str, ...] = getattr(self.cls, "_fields", ())
            self._fields = [(name, _compile(hints.get(name, Any), ns)) for name in names]
        fields = self._fields
        if type(value) is dict:  # accept the object form too
            value = [value[name] for name, _ in fields if name in value]
        if type(value) is not list:
            raise _mismatch(f"{self.cls.__qualname__} (JSON array)", value)
        if len(value) > len(fields):
            raise _Mismatch(
                f"expected {self.cls.__qualname__} ({len(fields)} items), got {len(value)} items"
            )
        out: list[Any] = []
        for (name, dec), raw in zip(fields, value, strict=False):
            try:
                out.append(raw if dec is None else dec(raw))
            except _Mismatch as mismatch:
                mismatch.path.append(f".{name}")
                raise
        try:
            return self.cls(*out)
        except Exception as exc:
            raise _Mismatch(
                f"could not be decoded into {self.cls.__qualname__} ({type(exc).__name__}: {exc})"
            ) from None


def _module_ns(cls: type) -> dict[str, Any] | None:
    module = sys.modules.get(cls.__module__)
    return vars(module) if module is not None else None


def _class_hints(cls: type, ns: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:
        # Some annotation does not resolve (e.g. imported under TYPE_CHECKING): resolve each one
        # on its own so only the broken ones fall back to plain JSON.
        hints: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name, ann in getattr(klass, "__annotations__", {}).items():
                hints[name] = _compile_hint_only(ann, ns)
        return hints


def _substitute(hint: Any, mapping: dict[Any, Any]) -> Any:
    if isinstance(hint, typing.TypeVar):
        return mapping.get(hint, Any)
    args = typing.get_args(hint)
    if not args:
        return hint
    new = tuple(_substitute(arg, mapping) for arg in args)
    if new == args:
        return hint
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is _UnionType:
        return typing.Union.__getitem__(new)
    if isinstance(hint, types.GenericAlias):
        return types.GenericAlias(origin, new)
    copy_with = getattr(hint, "copy_with", None)
    if copy_with is not None:
        try:
            return copy_with(new)
        except Exception:
            return hint
    return hint


# --------------------------------------------------------------------------------------------
# Per-function plans (hot path)
# --------------------------------------------------------------------------------------------


class _FnPlan:
    __slots__ = (
        "checks",
        "defaults",
        "fast",
        "kwonly",
        "n_max",
        "n_min",
        "params",
        "positional_only",
        "result",
        "result_type",
        "var_decoder",
        "varargs",
    )

    def __init__(self) -> None:
        self.params: tuple[str, ...] = ()
        self.n_min = 0
        self.n_max = 0  # sys.maxsize when *args accepts any number
        self.varargs = False
        # (index, exact JSON type, decoder): a value of exactly that type needs no decoding.
        self.fast: tuple[tuple[int, type, _Decoder], ...] = ()
        self.checks: tuple[tuple[int, _Decoder], ...] = ()
        self.result_type: type | None = None
        self.var_decoder: _Decoder | None = None
        self.result: _Decoder | None = None
        self.kwonly: tuple[str, ...] = ()
        self.defaults: tuple[Any, ...] = ()  # defaults of the trailing parameters
        self.positional_only = 0


_PLANS: dict[Any, _FnPlan] = {}
_METHOD_PLANS: dict[Any, _FnPlan] = {}


def _plan(fn: Callable[..., Any]) -> _FnPlan:
    if type(fn) is types.MethodType:
        cache, key = _METHOD_PLANS, fn.__func__
    else:
        cache, key = _PLANS, fn
    try:
        return cache[key]
    except KeyError:
        pass
    except TypeError:  # unhashable callable
        return _build_plan(fn)
    plan = _build_plan(fn)
    if len(cache) >= _MAX_CACHE:
        cache.clear()
    cache[key] = plan
    return plan


def _fn_namespace(fn: Callable[..., Any]) -> tuple[Any, dict[str, Any] | None]:
    """The function whose annotations and globals describe ``fn`` (unwrapping methods etc.)."""
    base: Any = fn
    for _ in range(20):
        if isinstance(base, types.MethodType):
            base = base.__func__
        elif isinstance(base, functools.partial):
            base = base.func
        elif hasattr(base, "__wrapped__"):
            base = base.__wrapped__
        else:
            break
    if not isinstance(base, (types.FunctionType, type)) and callable(base):
        base = type(base).__call__
    ns = getattr(base, "__globals__", None)
    return base, ns


def _build_plan(fn: Callable[..., Any]) -> _FnPlan:
    plan = _FnPlan()
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: accept anything
        plan.n_max = sys.maxsize
        plan.varargs = True
        return plan
    base, ns = _fn_namespace(fn)
    try:
        hints: dict[str, Any] | None = typing.get_type_hints(base)
    except Exception:
        hints = None

    def hint_of(name: str, annotation: Any) -> Any:
        if annotation is inspect.Parameter.empty or annotation is inspect.Signature.empty:
            return Any
        if hints is not None and name in hints:
            return hints[name]
        return _compile_hint_only(annotation, ns)

    P = inspect.Parameter
    names: list[str] = []
    checks: list[tuple[int, _Decoder]] = []
    fast: list[tuple[int, type, _Decoder]] = []
    defaults: list[Any] = []
    kwonly: list[str] = []
    for param in sig.parameters.values():
        if param.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            decoder = _compile(hint_of(param.name, param.annotation), ns)
            exact = _FAST_TYPES.get(decoder) if decoder is not None else None
            if exact is not None and decoder is not None:
                fast.append((len(names), exact, decoder))
            elif decoder is not None:
                checks.append((len(names), decoder))
            if param.kind is P.POSITIONAL_ONLY:
                plan.positional_only = len(names) + 1
            names.append(param.name)
            if param.default is P.empty:
                plan.n_min = len(names)
                defaults.clear()
            else:
                defaults.append(param.default)
        elif param.kind is P.VAR_POSITIONAL:
            plan.var_decoder = _compile(hint_of(param.name, param.annotation), ns)
            plan.varargs = True
        elif param.kind is P.KEYWORD_ONLY:
            kwonly.append(param.name)
    plan.params = tuple(names)
    plan.n_max = sys.maxsize if plan.varargs else len(names)
    plan.fast = tuple(fast)
    plan.checks = tuple(checks)
    plan.defaults = tuple(defaults)
    plan.kwonly = tuple(kwonly)
    plan.result = _compile(hint_of("return", sig.return_annotation), ns)
    plan.result_type = _FAST_TYPES.get(plan.result) if plan.result is not None else None
    return plan


_FAST_TYPES: dict[Any, type] = {
    _dec_str: str,
    _dec_int: int,
    _dec_float: float,
    _dec_bool: bool,
    _dec_none: _NoneType,
    _dec_bare_list: list,
    _dec_bare_dict: dict,
}


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class PayloadConverter:
    """Converts values to JSON payload bytes and back, typed by annotations.

    ``what`` arguments name the value in error messages, e.g. ``"result of workflow
    'orders.process'"``; for :meth:`encode_args` / :meth:`decode_args` they name the callee
    (``"activity 'charge'"``) and messages say ``"argument 2 of activity 'charge'"``.
    """

    def __init__(self, *, max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE) -> None:
        if max_payload_size <= 0:
            raise ValueError("max_payload_size must be a positive number of bytes")
        self.max_payload_size = max_payload_size

    def __repr__(self) -> str:
        return f"PayloadConverter(max_payload_size={self.max_payload_size})"

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, value: object, *, what: str) -> bytes:
        """``value`` as JSON bytes; :class:`PayloadError` if it cannot be written faithfully."""
        return self._encode(value, what, what, args=False)

    def encode_args(self, args: Sequence[object], *, what: str) -> bytes:
        """Positional arguments as one JSON array.

        ``what`` names the callee, as ``"activity 'charge'"`` or ``"arguments of activity
        'charge'"``; errors name the argument (``"argument 2 of activity 'charge'"``).
        """
        callee = _callee(what)
        return self._encode(list(args), callee, f"arguments of {callee}", args=True)

    def _encode(self, value: object, what: str, sized: str, *, args: bool) -> bytes:
        try:
            data = _dumps(value)
        except TypeError as exc:
            raise self._problem(value, what, args, str(exc)) from None
        if b"null" in data:  # orjson writes NaN and infinity as null: look closer
            problem = _find_problem(value)
            if problem is not None:
                raise self._render(problem, what, args) from None
        size = len(data)
        if size > self.max_payload_size:
            raise PayloadTooLargeError(
                f"payload too large for {sized}: {size} bytes encoded, over the limit of "
                f"{self.max_payload_size} bytes; store large data elsewhere (a file, object "
                "storage, a database row) and pass a reference to it (a key, path or URL) instead"
            )
        return data

    def _problem(self, value: object, what: str, args: bool, fallback: str) -> PayloadError:
        problem = _find_problem(value)
        if problem is None:
            return PayloadError(f"cannot serialize {_article(what, args)}: {fallback}")
        return self._render(problem, what, args)

    @staticmethod
    def _render(problem: _Problem, what: str, args: bool) -> PayloadError:
        path = problem.path
        if args and path:  # the outermost segment is the argument index
            index = int(path[-1][1:-1])
            what = f"argument {index + 1} of {what}"
            path = path[:-1]
        elif args:
            what = f"arguments of {what}"
        where = _location(_render_path(path))
        subject = f"{problem.subject} in {where}" if where else problem.subject
        return PayloadError(f"cannot serialize {what}: {subject} {problem.predicate}")

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, data: bytes, type_hint: object = Any, *, what: str) -> Any:
        """Decode JSON bytes into a value shaped by ``type_hint`` (``Any``: plain JSON)."""
        value = _loads(data, what)
        decoder = _compile(type_hint)
        if decoder is None:
            return value
        return _apply(decoder, value, what)

    def decode_args(self, data: bytes, fn: Callable[..., Any], *, what: str) -> list[Any]:
        """Decode a JSON array of positional arguments by ``fn``'s parameter annotations.

        ``what`` names the callee as in :meth:`encode_args`. Parameters annotated with a plain
        JSON type cost one type check; ``Any`` or missing annotations cost nothing.
        """
        try:
            plan = _PLANS[fn]
        except (KeyError, TypeError):
            plan = _plan(fn)
        try:
            values = _json_loads(data)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise PayloadError(
                f"cannot decode arguments of {_callee(what)}: not valid JSON ({exc})"
            ) from None
        if type(values) is not list:
            raise PayloadError(
                f"cannot decode arguments of {_callee(what)}: expected a JSON array, "
                f"got {_got(values)}"
            )
        count = len(values)
        if count < plan.n_min or count > plan.n_max:
            raise PayloadError(_count_message(plan, _callee(what), count))
        for index, exact, decoder in plan.fast:
            if index < count and type(values[index]) is not exact:
                values[index] = _apply_arg(decoder, values, index, what)
        for index, decoder in plan.checks:
            if index < count:
                values[index] = _apply_arg(decoder, values, index, what)
        if plan.var_decoder is not None:
            for index in range(len(plan.params), count):
                values[index] = _apply_arg(plan.var_decoder, values, index, what)
        return values

    def decode_result(self, data: bytes, fn: Callable[..., Any], *, what: str) -> Any:
        """Decode a JSON result by ``fn``'s return annotation."""
        try:
            plan = _PLANS[fn]
        except (KeyError, TypeError):
            plan = _plan(fn)
        try:
            value = _json_loads(data)
        except (orjson.JSONDecodeError, TypeError):
            value = _loads(data, what)  # raises the PayloadError
        decoder = plan.result
        if decoder is None or type(value) is plan.result_type:
            return value
        return _apply(decoder, value, what)


def _apply_arg(decoder: _Decoder, values: list[Any], index: int, what: str) -> Any:
    return _apply(decoder, values[index], f"argument {index + 1} of {_callee(what)}")


_ARGS_PREFIX = "arguments of "


def _callee(what: str) -> str:
    return what[len(_ARGS_PREFIX) :] if what.startswith(_ARGS_PREFIX) else what


def _article(what: str, args: bool) -> str:
    return f"arguments of {what}" if args else what


def _loads(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"cannot decode {what}: not valid JSON ({exc})") from None
    except TypeError as exc:  # not bytes/str at all
        raise PayloadError(f"cannot decode {what}: {exc}") from None


def _apply(decoder: _Decoder, value: Any, what: str) -> Any:
    try:
        return decoder(value)
    except _Mismatch as mismatch:
        raise PayloadError(mismatch.render(what)) from None
    except RecursionError:
        raise PayloadError(f"{what}: value is nested too deeply") from None


def _count_message(plan: _FnPlan, what: str, count: int) -> str:
    return (
        f"cannot decode arguments of {what}: it takes {_takes(plan)} ({_param_list(plan)}) "
        f"but the payload holds {count}; was the signature changed while calls were in flight?"
    )


def _takes(plan: _FnPlan) -> str:
    if plan.varargs:
        amount = f"at least {plan.n_min}"
        plural = plan.n_min != 1
    elif plan.n_min == plan.n_max:
        amount = str(plan.n_min)
        plural = plan.n_min != 1
    else:
        amount = f"{plan.n_min} to {plan.n_max}"
        plural = True
    return f"{amount} argument{'s' if plural else ''}"


def _param_list(plan: _FnPlan) -> str:
    parts: list[str] = []
    first_default = len(plan.params) - len(plan.defaults)
    for index, name in enumerate(plan.params):
        if index >= first_default:
            shown = repr(plan.defaults[index - first_default])
            if len(shown) > 30:
                shown = shown[:27] + "..."
            parts.append(f"{name}={shown}")
        else:
            parts.append(name)
    if plan.varargs:
        parts.append("*args")
    return ", ".join(parts)


def check_call(
    fn: Callable[..., Any],
    args: Sequence[object],
    kwargs: Mapping[str, object],
    *,
    kind: str,
    name: str,
) -> list[object]:
    """Check a call's arity against ``fn`` and return the full positional argument list.

    Runs at the call site, before anything is persisted. Keyword arguments are bound into their
    positions and defaults are filled in, so the stored JSON array is complete. Raises
    :class:`TypeError` naming ``kind`` and ``name`` (``"activity 'charge'"``) when the call
    does not fit, or when ``fn`` has keyword-only parameters (arguments are stored as a JSON
    array, so every parameter must be positional).
    """
    plan = _plan(fn)
    label = f"{kind} {name!r}"
    if plan.kwonly:
        listed = ", ".join(plan.kwonly)
        raise TypeError(
            f"{label} has keyword-only parameters ({listed}); workflow and activity parameters "
            "must be positional, because their arguments are stored as a JSON array"
        )
    params = plan.params
    given = len(args) + len(kwargs)
    if len(args) > plan.n_max:
        raise TypeError(_arity_message(plan, label, given))
    out: list[object] = list(args)
    if not kwargs:
        if len(out) < plan.n_min:
            absent = ", ".join(params[len(out) : plan.n_min])
            raise TypeError(f"{_arity_message(plan, label, given)}; missing: {absent}")
        if len(out) < len(params):
            first_default = len(params) - len(plan.defaults)
            out.extend(plan.defaults[len(out) - first_default :])
        return out
    for key in kwargs:
        try:
            position = params.index(key)
        except ValueError:
            raise TypeError(
                f"{label} got an unexpected keyword argument {key!r}; it takes "
                f"({_param_list(plan)})"
            ) from None
        if position < plan.positional_only:
            raise TypeError(f"{label}: parameter {key!r} is positional-only; pass it by position")
        if position < len(args):
            raise TypeError(f"{label} got multiple values for argument {key!r}")
    first_default = len(params) - len(plan.defaults)
    missing: list[str] = []
    for position in range(len(args), len(params)):
        param = params[position]
        if param in kwargs:
            out.append(kwargs[param])
        elif position >= first_default:
            out.append(plan.defaults[position - first_default])
        else:
            missing.append(param)
            out.append(None)
    if missing:
        raise TypeError(f"{_arity_message(plan, label, given)}; missing: {', '.join(missing)}")
    return out


def _arity_message(plan: _FnPlan, label: str, given: int) -> str:
    verb = "was" if given == 1 else "were"
    return f"{label} takes {_takes(plan)} ({_param_list(plan)}) but {given} {verb} given"


_DEFAULT = PayloadConverter()


def default_converter() -> PayloadConverter:
    """The shared converter with the default 2 MiB payload limit."""
    return _DEFAULT
