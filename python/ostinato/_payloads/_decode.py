"""Decoding: compiled decoders that turn a plain JSON value into the value a type hint
describes, cached per hint."""

from __future__ import annotations

import base64
import binascii
import collections.abc
import dataclasses
import datetime as _dt
import decimal
import enum
import inspect
import re
import sys
import types
import typing
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ._encode import _MAX_CACHE, _SUPPORTED, _location, _NoneType, _render_path

_UnionType: Any = getattr(types, "UnionType", typing.Union)


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
