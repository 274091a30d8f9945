"""Tests for the payload converter: JSON encoding, typed decoding, limits and call checks."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import itertools
import math
import re
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import (
    Annotated,
    Any,
    Generic,
    Literal,
    NamedTuple,
    NewType,
    Optional,
    TypedDict,
    TypeVar,
)

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ostinato._errors import PayloadError, PayloadTooLargeError
from ostinato._payloads import PayloadConverter, check_call, default_converter

conv = default_converter()
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


# --------------------------------------------------------------------------------------------
# Types used by the tests (annotations are strings here: `from __future__ import annotations`)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Money:
    amount: int
    currency: str = "EUR"


@dataclasses.dataclass
class Line:
    sku: str
    price: Money
    qty: int = 1


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    lines: list[Line]
    color: Color
    placed: dt.datetime
    note: str | None = None
    tags: set[str] = dataclasses.field(default_factory=set)
    _internal: int = 0


@dataclasses.dataclass
class Node:
    name: str
    children: list[Node] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Card:
    number: str
    kind: Literal["card"] = "card"


@dataclasses.dataclass
class Bank:
    iban: str
    kind: Literal["bank"] = "bank"


@dataclasses.dataclass
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("value must be positive")


T = TypeVar("T")


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


class Point(NamedTuple):
    x: int
    y: float = 0.0


class Movie(TypedDict):
    title: str
    year: int


OrderId = NewType("OrderId", str)


class Unserializable:
    pass


# --------------------------------------------------------------------------------------------
# Strategies: a type together with a strategy for its values


def _fixed_offsets() -> st.SearchStrategy[dt.tzinfo]:
    offsets = st.timedeltas(
        min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)
    )
    return st.just(dt.timezone.utc) | offsets.map(dt.timezone)


LEAVES: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (int, INT64),
    (str, st.text(max_size=20)),
    (bool, st.booleans()),
    (float, st.floats(allow_nan=False, allow_infinity=False)),
    (dt.datetime, st.datetimes(timezones=_fixed_offsets())),
    (dt.date, st.dates()),
    (dt.time, st.times()),
    (dt.timedelta, st.timedeltas(-dt.timedelta(days=50_000), dt.timedelta(days=50_000))),
    (uuid.UUID, st.uuids()),
    (Decimal, st.decimals(allow_nan=False, allow_infinity=False)),
    (bytes, st.binary(max_size=20)),
    (Color, st.sampled_from(Color)),
    (Level, st.sampled_from(Level)),
    (Literal["a", "b", 3], st.sampled_from(["a", "b", 3])),
    (set[int], st.sets(INT64, max_size=4)),
    (frozenset[str], st.frozensets(st.text(max_size=5), max_size=4)),
    (Money, st.builds(Money, INT64, st.text(max_size=3))),
]

_counter = itertools.count()


def _make_dataclass(fields: list[tuple[Any, st.SearchStrategy[Any]]], frozen: bool) -> Any:
    cls = dataclasses.make_dataclass(
        f"Generated{next(_counter)}",
        [(f"f{i}", hint) for i, (hint, _) in enumerate(fields)],
        frozen=frozen,
    )
    strategy = st.tuples(*(s for _, s in fields)).map(lambda values: cls(*values))
    return (cls, strategy)


def _extend(
    children: st.SearchStrategy[tuple[Any, st.SearchStrategy[Any]]],
) -> st.SearchStrategy[tuple[Any, st.SearchStrategy[Any]]]:
    return st.one_of(
        children.map(lambda p: (list[p[0]], st.lists(p[1], max_size=3))),
        children.map(
            lambda p: (dict[str, p[0]], st.dictionaries(st.text(max_size=4), p[1], max_size=3))
        ),
        children.map(lambda p: (dict[int, p[0]], st.dictionaries(INT64, p[1], max_size=3))),
        children.map(
            lambda p: (dict[uuid.UUID, p[0]], st.dictionaries(st.uuids(), p[1], max_size=2))
        ),
        children.map(lambda p: (p[0] | None, st.none() | p[1])),
        children.map(lambda p: (tuple[p[0], ...], st.lists(p[1], max_size=3).map(tuple))),
        st.lists(children, min_size=1, max_size=3).map(
            lambda ps: (tuple[tuple(h for h, _ in ps)], st.tuples(*(s for _, s in ps)))
        ),
        st.tuples(st.lists(children, min_size=1, max_size=4), st.booleans()).map(
            lambda a: _make_dataclass(a[0], a[1])
        ),
    )


TYPED = st.recursive(st.sampled_from(LEAVES), _extend, max_leaves=6)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | INT64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equality that also insists on identical types (so 1 != 1.0 and True != 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and a == 0.0:
        return math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


# --------------------------------------------------------------------------------------------
# Property tests


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(pair=TYPED, data=st.data())
def test_round_trip_generated_types(pair: tuple[Any, Any], data: st.DataObject) -> None:
    hint, strategy = pair
    value = data.draw(strategy)
    encoded = conv.encode(value, what="value")
    assert conv.decode(encoded, hint, what="value") == value


@given(value=JSON)
def test_json_native_values_round_trip_exactly(value: Any) -> None:
    encoded = conv.encode(value, what="value")
    assert same(conv.decode(encoded, what="value"), value)
    assert same(conv.decode(encoded, Any, what="value"), value)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(pair=TYPED, data=st.data())
def test_encode_is_deterministic(pair: tuple[Any, Any], data: st.DataObject) -> None:
    value = data.draw(pair[1])
    assert conv.encode(value, what="v") == conv.encode(value, what="v")


@given(items=st.lists(st.text(max_size=8) | INT64, max_size=8, unique=True))
def test_sets_encode_the_same_whatever_their_insertion_order(items: list[Any]) -> None:
    forward, backward = set(items), set(reversed(items))
    assert conv.encode(forward, what="s") == conv.encode(backward, what="s")
    assert conv.encode(frozenset(items), what="s") == conv.encode(forward, what="s")


HINTS = [
    int, str, float, bool, None, list[int], dict[str, int], dict[int, str], tuple[int, str],
    tuple[int, ...], set[str], Optional[int], Color,  # noqa: UP045 Level, Literal["a", 1], dt.datetime,
    dt.date, dt.time, dt.timedelta, uuid.UUID, Decimal, bytes, Money, Line, Order, Node,
    Card | Bank, Point, Movie, Box[int], OrderId, Positive, Any, Sequence[int], frozenset[int],
]  # fmt: skip


@settings(max_examples=300)
@given(data=st.binary(max_size=64), hint=st.sampled_from(HINTS))
def test_garbage_bytes_raise_only_payload_error(data: bytes, hint: Any) -> None:
    with contextlib.suppress(PayloadError):
        conv.decode(data, hint, what="value")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(pair=TYPED, hint=st.sampled_from(HINTS), data=st.data())
def test_mismatched_types_raise_only_payload_error(
    pair: tuple[Any, Any], hint: Any, data: st.DataObject
) -> None:
    value = data.draw(pair[1])
    encoded = conv.encode(value, what="value")
    try:
        conv.decode(encoded, hint, what="value")
    except PayloadError as exc:
        assert str(exc).startswith("value")


@given(value=JSON, hint=st.sampled_from(HINTS))
def test_arbitrary_json_into_any_hint_raises_only_payload_error(value: Any, hint: Any) -> None:
    with contextlib.suppress(PayloadError):
        conv.decode(orjson.dumps(value), hint, what="value")


@given(size=st.integers(min_value=2, max_value=5000))
def test_size_limit_is_exact(size: int) -> None:
    value = "x" * (size - 2)  # the quotes make up the rest
    assert len(PayloadConverter(max_payload_size=size).encode(value, what="v")) == size
    with pytest.raises(PayloadTooLargeError):
        PayloadConverter(max_payload_size=size - 1).encode(value, what="v")


@given(name=st.from_regex(r"[A-Z][a-zA-Z0-9]{0,15}", fullmatch=True), where=st.integers(0, 3))
def test_unserializable_objects_are_named(name: str, where: int) -> None:
    cls = type(name, (), {})
    value: list[Any] = [1, 2, 3, 4]
    value[where] = cls()
    with pytest.raises(PayloadError) as info:
        conv.encode(value, what="result of workflow 'w'")
    message = str(info.value)
    assert f"object of type {name} " in message
    assert "result of workflow 'w'" in message
    assert f"[{where}]" in message
    assert not isinstance(info.value, PayloadTooLargeError)


# --------------------------------------------------------------------------------------------
# Encoding format


def test_encoding_format() -> None:
    order = Order(
        id=uuid.UUID(int=1),
        lines=[Line("a", Money(100))],
        color=Color.RED,
        placed=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        tags={"b", "a"},
        _internal=7,
    )
    assert orjson.loads(conv.encode(order, what="v")) == {
        "id": "00000000-0000-0000-0000-000000000001",
        "lines": [{"sku": "a", "price": {"amount": 100, "currency": "EUR"}, "qty": 1}],
        "color": "red",
        "placed": "2024-01-02T03:04:05+00:00",
        "note": None,
        "tags": ["a", "b"],
        "_internal": 7,
    }
    assert conv.encode(dt.timedelta(days=1, milliseconds=5), what="v") == b"86400.005"
    assert conv.encode(Decimal("1.10"), what="v") == b'"1.10"'
    assert conv.encode(b"\x00\xff", what="v") == b'"AP8="'
    assert conv.encode((1, "a"), what="v") == b'[1,"a"]'
    assert conv.encode(Point(1, 2.5), what="v") == b"[1,2.5]"
    assert conv.encode({1: "a", Level.HIGH: "b"}, what="v") == b'{"1":"a","2":"b"}'
    assert conv.encode({"b": 1, "a": 2}, what="v") == b'{"b":1,"a":2}'  # insertion order kept
    assert conv.encode({1, "a"}, what="v") in (b'[1,"a"]', b'["a",1]')


def test_unsortable_sets_are_still_deterministic() -> None:
    assert conv.encode({1, "a", None}, what="v") == conv.encode({None, "a", 1}, what="v")


def test_datetime_offsets_are_kept_to_the_second() -> None:
    odd = dt.timezone(dt.timedelta(minutes=19, seconds=32))
    value = dt.datetime(1900, 1, 1, 12, 0, 0, 5, tzinfo=odd)
    back = conv.decode(conv.encode(value, what="v"), dt.datetime, what="v")
    assert back == value and back.utcoffset() == value.utcoffset()
    tiny = dt.timezone(-dt.timedelta(microseconds=1))  # fromisoformat alone would drop this
    for moment in (dt.datetime(2000, 1, 1, tzinfo=tiny), dt.time(1, 2, tzinfo=tiny)):
        again = conv.decode(conv.encode(moment, what="v"), type(moment), what="v")
        assert again == moment and again.utcoffset() == moment.utcoffset()


def test_zoneinfo_datetime_keeps_instant_and_offset() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        zone = zoneinfo.ZoneInfo("Europe/Amsterdam")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database")
    value = dt.datetime(2024, 7, 1, 12, 30, tzinfo=zone)
    back = conv.decode(conv.encode(value, what="v"), dt.datetime, what="v")
    assert back == value and back.utcoffset() == dt.timedelta(hours=2)


def test_naive_datetime_stays_naive() -> None:
    value = dt.datetime(2024, 1, 1, 9, 30)
    back = conv.decode(conv.encode(value, what="v"), dt.datetime, what="v")
    assert back == value and back.tzinfo is None


def test_z_suffix_is_accepted() -> None:
    back = conv.decode(b'"2024-01-01T00:00:00Z"', dt.datetime, what="v")
    assert back == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), -float("inf"), [1.0, float("nan")], {"a": {"b": float("inf")}}],
)
def test_nan_and_infinity_are_refused(value: Any) -> None:
    with pytest.raises(PayloadError, match="NaN and infinity"):
        conv.encode(value, what="v")


def test_nan_inside_a_dataclass_is_located() -> None:
    with pytest.raises(PayloadError) as info:
        conv.encode_args(["x", Box([1.0, math.nan])], what="activity 'charge'")
    assert str(info.value).startswith(
        "cannot serialize argument 2 of activity 'charge': float nan in field 'item[1]'"
    )


def test_nan_dict_key_is_refused_but_none_values_pass() -> None:
    with pytest.raises(PayloadError):
        conv.encode({math.nan: 1}, what="v")
    assert conv.encode({"a": None, "null": [None]}, what="v") == b'{"a":null,"null":[null]}'


def test_unserializable_message_matches_the_documented_shape() -> None:
    with pytest.raises(PayloadError) as info:
        conv.encode_args(["o-1", Unserializable()], what="activity 'charge'")
    assert str(info.value) == (
        "cannot serialize argument 2 of activity 'charge': object of type Unserializable is not "
        "JSON-serializable; use a dataclass, dict, list, str, int, float, bool, None, datetime, "
        "date, UUID, Enum or Decimal-as-str"
    )


def test_encode_args_accepts_the_arguments_of_prefix() -> None:
    with pytest.raises(PayloadError, match=r"^cannot serialize argument 1 of activity 'a':"):
        conv.encode_args([Unserializable()], what="arguments of activity 'a'")


def test_other_unwritable_values() -> None:
    with pytest.raises(PayloadError, match="64-bit"):
        conv.encode({"n": 2**64}, what="v")
    with pytest.raises(PayloadError, match="surrogates"):
        conv.encode("\ud800", what="v")
    with pytest.raises(PayloadError, match="dict key of type tuple"):
        conv.encode({(1, 2): 1}, what="v")
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(PayloadError, match="nested too deeply"):
        conv.encode(cyclic, what="v")
    with pytest.raises(PayloadError, match="object of type type"):
        conv.encode(Money, what="v")


def test_too_large_message() -> None:
    small = PayloadConverter(max_payload_size=100)
    with pytest.raises(PayloadTooLargeError) as info:
        small.encode("x" * 200, what="result of workflow 'orders.process'")
    message = str(info.value)
    assert "result of workflow 'orders.process'" in message
    assert "202 bytes" in message and "100 bytes" in message
    assert "reference" in message
    with pytest.raises(PayloadTooLargeError, match="arguments of activity 'a'"):
        small.encode_args(["x" * 200], what="activity 'a'")
    assert isinstance(info.value, PayloadError)
    assert default_converter().max_payload_size == 2 * 1024 * 1024
    with pytest.raises(ValueError):
        PayloadConverter(max_payload_size=0)


# --------------------------------------------------------------------------------------------
# Typed decoding


def test_nested_dataclasses_round_trip() -> None:
    order = Order(
        id=uuid.uuid4(),
        lines=[Line("a", Money(100)), Line("b", Money(5, "USD"), qty=3)],
        color=Color.GREEN,
        placed=dt.datetime.now(dt.timezone.utc),
        note="gift",
        tags={"x"},
        _internal=4,
    )
    assert conv.decode(conv.encode(order, what="v"), Order, what="v") == order


def test_recursive_dataclass() -> None:
    tree = Node("root", [Node("a", [Node("a1")]), Node("b")])
    assert conv.decode(conv.encode(tree, what="v"), Node, what="v") == tree


def test_defaults_fill_missing_fields_and_unknown_fields_are_ignored() -> None:
    assert conv.decode(b'{"sku":"a","price":{"amount":1},"gone":1}', Line, what="v") == Line(
        "a", Money(1)
    )


def test_union_of_dataclasses_picks_the_fitting_one() -> None:
    hint = Card | Bank
    assert conv.decode(b'{"iban":"NL01","kind":"bank"}', hint, what="v") == Bank("NL01")
    assert conv.decode(b'{"number":"4111"}', hint, what="v") == Card("4111")
    with pytest.raises(PayloadError, match="field 'kind' expected"):
        conv.decode(b'{"iban":"NL01","kind":"card"}', hint, what="v")
    with pytest.raises(PayloadError, match=re.escape("expected Card | Bank")):
        conv.decode(b"[1]", hint, what="v")


def test_scalar_unions_prefer_the_exact_json_type() -> None:
    assert conv.decode(b"1.0", int | float, what="v") == 1.0
    assert type(conv.decode(b"1", float | int, what="v")) is int
    assert conv.decode(b'"x"', int | str | None, what="v") == "x"
    assert conv.decode(b"null", int | str | None, what="v") is None
    assert type(conv.decode(b"1", float, what="v")) is float


def test_assorted_types() -> None:
    def rt(value: Any, hint: Any) -> Any:
        return conv.decode(conv.encode(value, what="v"), hint, what="v")

    assert rt(Point(1, 2.5), Point) == Point(1, 2.5)
    assert conv.decode(b"[1]", Point, what="v") == Point(1, 0.0)
    assert conv.decode(b'{"x":1,"y":2}', Point, what="v") == Point(1, 2.0)
    assert rt({"title": "Heat", "year": 1995}, Movie) == {"title": "Heat", "year": 1995}
    assert rt(Box(Money(3)), Box[Money]) == Box(Money(3))
    assert rt(Box([1, 2]), Box[list[int]]) == Box([1, 2])
    assert rt(Box("x"), Box) == Box("x")
    assert rt({Color.RED: 1}, dict[Color, int]) == {Color.RED: 1}
    assert rt({Level.HIGH: 1}, dict[Level, int]) == {Level.HIGH: 1}
    assert rt({True: 1}, dict[bool, int]) == {True: 1}
    assert rt({1.5: 1}, dict[float, int]) == {1.5: 1}
    assert rt({dt.date(2024, 1, 2): 1}, dict[dt.date, int]) == {dt.date(2024, 1, 2): 1}
    assert rt({"a": 1}, dict[Literal["a", "b"], int]) == {"a": 1}
    assert rt(OrderId("o-1"), OrderId) == "o-1"
    assert rt(3, Annotated[int, "meta"]) == 3
    assert rt((1, 2), Sequence[int]) == [1, 2]
    assert rt((), tuple[()]) == ()
    assert rt(bytearray(b"ab"), bytearray) == bytearray(b"ab")
    assert rt(dt.time(1, 2, 3, tzinfo=dt.timezone.utc), dt.time) == dt.time(
        1, 2, 3, tzinfo=dt.timezone.utc
    )
    assert rt(Level.HIGH, Level) is Level.HIGH
    assert rt(Color.RED, Literal[Color.RED]) is Color.RED
    assert rt([1, 2], tuple) == (1, 2)
    assert rt(Decimal("0.1"), Decimal) == Decimal("0.1")
    assert conv.decode(b"5", Decimal, what="v") == Decimal(5)
    assert conv.decode(b"true", int, what="v") is True  # bool is an int, as in typing


@pytest.mark.parametrize(
    ("data", "hint", "message"),
    [
        (b'"100"', int, "v: expected int, got str '100'"),
        (b'{"amount":"1"}', Money, "v: field 'amount' expected int, got str '1'"),
        (b'{"currency":"EUR"}', Money, "v: field 'amount' is missing (required by Money)"),
        (b'[{"sku":"a","price":{"amount":true}}, {"sku":1}]', list[Line], "v: item [1].sku "),
        (b'{"a":[1,"x"]}', dict[str, list[int]], "v: item ['a'][1] expected int, got str 'x'"),
        (b'{"x":1}', dict[int, int], "v: item ['x'] expected int key, got str 'x'"),
        (b'"purple"', Color, "v: expected Color (one of 'red', 'green'), got str 'purple'"),
        (b'"2024-13-01"', dt.date, "v: expected date (ISO 8601 string), got str"),
        (b'"zz"', uuid.UUID, "v: expected UUID (string)"),
        (b'"%%"', bytes, "v: expected bytes (base64 string)"),
        (b'"1.2.3"', Decimal, "v: expected Decimal (string)"),
        (b"1e300", dt.timedelta, "v: expected timedelta"),
        (b"[1,2,3]", tuple[int, int], "v: expected tuple[int, int] (2 items), got 3 items"),
        (b'{"value":-1}', Positive, "v: could not be decoded into Positive (ValueError: value"),
        (b'"c"', Literal["a", "b"], "v: expected Literal['a', 'b'], got str 'c'"),
        (b"[[1]]", set[list[int]], "v: expected set of hashable items"),
        (b"{", int, "cannot decode v: not valid JSON"),
        (b"1", Unserializable, "v: cannot decode into Unserializable: unsupported type"),
    ],
)
def test_decode_errors_name_what_and_where(data: bytes, hint: Any, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        conv.decode(data, hint, what="v")
    assert str(info.value).startswith(message), str(info.value)


def test_deeply_nested_data_is_a_payload_error() -> None:
    deep = b"[" * 2000 + b"]" * 2000
    with pytest.raises(PayloadError):
        conv.decode(deep, Any, what="v")
    levels = 500  # JSON depth 1001: orjson reads it, the typed decoder must not crash
    nested = b'{"name":"n","children":[' * levels + b'{"name":"n"}' + b"]}" * levels
    try:
        conv.decode(nested, Node, what="v")
    except PayloadError as exc:
        assert "nested too deeply" in str(exc)


# --------------------------------------------------------------------------------------------
# Functions: decode_args / decode_result / check_call


async def charge(order_id: str, amount: int) -> Money:
    return Money(amount)


def with_defaults(order_id: OrderId, lines: list[Line], note: str | None = None) -> None:
    return None


def untyped(a, b=2):  # type: ignore[no-untyped-def]
    return a


def var_args(first: str, *rest: Money) -> list[Money]:
    return list(rest)


def keyword_only(a: str, *, b: int = 1) -> None:
    return None


def positional_only(a: str, /, b: int) -> None:
    return None


class Service:
    def __init__(self) -> None:
        self.calls = 0

    def lookup(self, key: str, count: int = 1) -> Money:
        return Money(count)

    __hash__ = None  # type: ignore[assignment]  # unhashable owners must still work


def test_decode_args_by_annotations() -> None:
    data = conv.encode_args(["o-1", 100], what="activity 'charge'")
    assert data == b'["o-1",100]'
    assert conv.decode_args(data, charge, what="activity 'charge'") == ["o-1", 100]
    with pytest.raises(PayloadError) as info:
        conv.decode_args(b'["o-1","100"]', charge, what="activity 'charge'")
    assert str(info.value) == "argument 2 of activity 'charge': expected int, got str '100'"
    with pytest.raises(PayloadError, match=r"^argument 2 of activity 'charge':"):
        conv.decode_args(b'["o-1","100"]', charge, what="arguments of activity 'charge'")


def test_decode_args_builds_nested_values() -> None:
    lines = [Line("a", Money(1))]
    data = conv.encode_args(["o-1", lines], what="w")
    assert conv.decode_args(data, with_defaults, what="w") == ["o-1", lines]
    with pytest.raises(PayloadError) as info:
        conv.decode_args(b'["o-1",[{"sku":"a","price":{"amount":"x"}}]]', with_defaults, what="w")
    assert str(info.value) == ("argument 2 of w: item [0].price.amount expected int, got str 'x'")


def test_decode_args_counts() -> None:
    assert conv.decode_args(b"[1]", untyped, what="w") == [1]
    assert conv.decode_args(b"[1,2]", untyped, what="w") == [1, 2]
    with pytest.raises(
        PayloadError, match=re.escape("takes 1 to 2 arguments (a, b=2) but the payload holds 3")
    ):
        conv.decode_args(b"[1,2,3]", untyped, what="w")
    with pytest.raises(PayloadError, match="holds 0"):
        conv.decode_args(b"[]", charge, what="w")
    with pytest.raises(PayloadError, match="expected a JSON array"):
        conv.decode_args(b'{"a":1}', charge, what="w")
    with pytest.raises(PayloadError, match="not valid JSON"):
        conv.decode_args(b"[", charge, what="w")


def test_decode_args_var_positional_and_bound_methods() -> None:
    data = conv.encode_args(["x", Money(1), Money(2)], what="w")
    assert conv.decode_args(data, var_args, what="w") == ["x", Money(1), Money(2)]
    service = Service()
    assert conv.decode_args(b'["k"]', service.lookup, what="w") == ["k"]
    assert conv.decode_result(b'{"amount":3}', service.lookup, what="w") == Money(3)
    with pytest.raises(PayloadError, match="argument 2 of w: expected int"):
        conv.decode_args(b'["k","x"]', Service().lookup, what="w")


def test_decode_result() -> None:
    assert conv.decode_result(b'{"amount":5}', charge, what="r") == Money(5)
    assert conv.decode_result(b"null", with_defaults, what="r") is None
    assert conv.decode_result(b'{"x":[1]}', untyped, what="r") == {"x": [1]}
    with pytest.raises(PayloadError, match=r"^result of activity 'charge': field 'amount'"):
        conv.decode_result(b'{"amount":"5"}', charge, what="result of activity 'charge'")
    with pytest.raises(PayloadError, match=r"^r: expected None, got int 5"):
        conv.decode_result(b"5", with_defaults, what="r")


def test_unresolvable_annotation_falls_back_to_json_with_a_warning() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\ndef late(x: Missing, y: int) -> Missing: return x\n",
        namespace,
    )
    with pytest.warns(UserWarning, match="Missing"):
        assert conv.decode_args(b'[{"a":1},2]', namespace["late"], what="w") == [{"a": 1}, 2]
    assert conv.decode_result(b'{"a":1}', namespace["late"], what="w") == {"a": 1}


def test_check_call_binds_keywords_and_fills_defaults() -> None:
    assert check_call(charge, ["o-1", 5], {}, kind="activity", name="charge") == ["o-1", 5]
    assert check_call(
        charge, [], {"amount": 5, "order_id": "o"}, kind="activity", name="charge"
    ) == [
        "o",
        5,
    ]
    assert check_call(with_defaults, ["o", []], {}, kind="workflow", name="w") == ["o", [], None]
    assert check_call(untyped, [1], {"b": 3}, kind="workflow", name="w") == [1, 3]
    assert check_call(var_args, ["a", 1, 2], {}, kind="workflow", name="w") == ["a", 1, 2]
    assert check_call(Service().lookup, ["k"], {}, kind="activity", name="lookup") == ["k", 1]


CHARGE = "activity 'charge' takes 2 arguments (order_id, amount)"


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "message"),
    [
        (charge, ["o", 1, 2], {}, f"{CHARGE} but 3 were given"),
        (charge, ["o"], {}, f"{CHARGE} but 1 was given; missing: amount"),
        (charge, [], {"order_id": "o"}, f"{CHARGE} but 1 was given; missing: amount"),
        (charge, ["o"], {"order_id": "o"}, "activity 'charge' got multiple values for argument"),
        (charge, ["o", 1], {"tip": 1}, "activity 'charge' got an unexpected keyword argument"),
        (untyped, [], {}, "activity 'charge' takes 1 to 2 arguments (a, b=2) but 0 were given"),
        (var_args, [], {}, "activity 'charge' takes at least 1 argument (first, *args) but 0"),
        (keyword_only, ["a"], {}, "activity 'charge' has keyword-only parameters (b)"),
        (positional_only, [], {"a": "x", "b": 1}, "activity 'charge': parameter 'a' is posit"),
        (Service().lookup, [1, 2, 3], {}, "activity 'charge' takes 1 to 2 arguments (key, co"),
    ],
)
def test_check_call_errors(fn: Any, args: list[Any], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError) as info:
        check_call(fn, args, kwargs, kind="activity", name="charge")
    assert str(info.value).startswith(message), str(info.value)
