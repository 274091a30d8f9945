"""Tests for failure payloads: exceptions -> JSON -> rebuilt exceptions."""

from __future__ import annotations

import traceback
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ostinato._errors import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowCancelledError,
)
from ostinato._failure import (
    MAX_CAUSE_DEPTH,
    MAX_TRACEBACK_CHARS,
    decode_failure,
    encode_failure,
    failure_message,
)
from ostinato._payloads import PayloadConverter

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


def raised(exc: BaseException) -> BaseException:
    """``exc`` after a real raise, so it carries a traceback."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def declined_card() -> None:
    raise ValueError("card declined")


def caught(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


class Unserializable:
    def __repr__(self) -> str:
        return "<Unserializable thing>"


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_plain_exception_round_trip() -> None:
    exc = caught(declined_card)
    data = encode_failure(exc)
    doc = orjson.loads(data)
    assert doc["type"] == "ValueError"
    assert doc["message"] == "card declined"
    assert doc["module"] == "builtins"
    assert doc["non_retryable"] is False
    assert doc["details"] == [] and doc["cause"] is None
    expected_tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert doc["traceback"] == expected_tb
    assert "declined_card" in doc["traceback"]

    back = decode_failure(data)
    assert isinstance(back, ApplicationError)
    assert back.type == "ValueError" and str(back) == "card declined"
    assert back.remote_traceback == expected_tb
    assert back.non_retryable is False and tuple(back.details) == ()
    assert failure_message(data) == "ValueError: card declined"


def test_application_error_fields_round_trip() -> None:
    exc = raised(
        ApplicationError(
            "no funds", {"balance": 3}, [1, 2], type="Insufficient", non_retryable=True
        )
    )
    back = decode_failure(encode_failure(exc))
    assert isinstance(back, ApplicationError)
    assert back.type == "Insufficient" and back.message == "no funds"
    assert back.non_retryable is True
    assert list(back.details) == [{"balance": 3}, [1, 2]]


def test_application_error_subclass_keeps_its_name_and_module() -> None:
    class PaymentDeclined(ApplicationError):
        pass

    doc = orjson.loads(encode_failure(raised(PaymentDeclined("nope"))))
    assert doc["type"] == "PaymentDeclined" and doc["module"] == __name__


def test_unserializable_details_become_repr_strings() -> None:
    exc = ApplicationError("x", Unserializable(), float("nan"), 1, "ok")
    back = decode_failure(encode_failure(exc))
    assert isinstance(back, ApplicationError)
    assert list(back.details) == ["<Unserializable thing>", "nan", 1, "ok"]


def test_too_large_details_are_replaced_not_fatal() -> None:
    small = PayloadConverter(max_payload_size=50)
    exc = ApplicationError("x", "y" * 1000, 2)
    doc = orjson.loads(encode_failure(exc, converter=small))
    assert doc["details"][1] == 2
    assert isinstance(doc["details"][0], str)


def test_cause_chain_is_preserved() -> None:
    def outer() -> None:
        try:
            declined_card()
        except ValueError as inner:
            raise RuntimeError("charge failed") from inner

    exc = caught(outer)
    data = encode_failure(exc)
    back = decode_failure(data)
    assert isinstance(back, ApplicationError) and back.type == "RuntimeError"
    cause = back.__cause__
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ValueError" and cause.message == "card declined"
    assert cause.remote_traceback is not None and "declined_card" in cause.remote_traceback
    # Each level's traceback describes only that exception; the chain lives in "cause".
    assert back.remote_traceback is not None and "declined_card" not in back.remote_traceback
    assert failure_message(data) == "RuntimeError: charge failed <- ValueError: card declined"


def test_cause_cycles_and_long_chains_are_cut() -> None:
    a, b = ValueError("a"), KeyError("b")
    a.__cause__, b.__cause__ = b, a
    back = decode_failure(encode_failure(a))
    assert isinstance(back.__cause__, ApplicationError)
    assert back.__cause__.__cause__ is None

    exc: BaseException = ValueError("0")
    for level in range(1, 30):
        new = ValueError(str(level))
        new.__cause__ = exc
        exc = new
    rebuilt: BaseException | None = decode_failure(encode_failure(exc))
    depth = 0
    while rebuilt is not None:
        depth += 1
        rebuilt = rebuilt.__cause__
    assert depth == MAX_CAUSE_DEPTH


def test_activity_error_round_trip() -> None:
    cause = caught(declined_card)
    exc = ActivityError(
        "activity 'charge' failed",
        activity_name="charge",
        activity_id=7,
        attempt=3,
        retry_state="maximum_attempts_reached",
        cause=cause,
    )
    data = encode_failure(exc)
    back = decode_failure(data)
    assert isinstance(back, ActivityError)
    assert (back.activity_name, back.activity_id, back.attempt, back.retry_state) == (
        "charge",
        7,
        3,
        "maximum_attempts_reached",
    )
    assert isinstance(back.cause, ApplicationError) and back.cause is back.__cause__
    assert back.cause.type == "ValueError"
    assert failure_message(data) == (
        "ActivityError: activity 'charge' failed <- ValueError: card declined"
    )


def test_child_workflow_error_round_trip() -> None:
    inner = ActivityError(
        "activity 'a' failed", activity_name="a", activity_id=1, attempt=1, retry_state="x"
    )
    exc = ChildWorkflowError("child failed", workflow_name="w", instance_id="c-1", cause=inner)
    back = decode_failure(encode_failure(exc))
    assert isinstance(back, ChildWorkflowError)
    assert (back.workflow_name, back.instance_id) == ("w", "c-1")
    assert isinstance(back.cause, ActivityError) and back.cause.activity_name == "a"


@pytest.mark.parametrize(
    "marker", ["WorkflowCancelledError", "WorkflowTerminatedError", "WorkflowTimedOutError"]
)
def test_markers_come_back_as_typed_application_errors(marker: str) -> None:
    back = decode_failure(orjson.dumps({"type": marker, "message": "stopped"}))
    assert isinstance(back, ApplicationError)
    assert back.type == marker and back.message == "stopped"
    assert back.remote_traceback is None


def test_workflow_failed_error_fields_are_recorded() -> None:
    exc = WorkflowCancelledError("cancelled", instance_id="i", run_id="r")
    doc = orjson.loads(encode_failure(exc))
    assert doc["type"] == "WorkflowCancelledError"
    assert (doc["instance_id"], doc["run_id"]) == ("i", "r")


def test_re_encoding_a_rebuilt_failure_keeps_it() -> None:
    original = encode_failure(caught(declined_card))
    again = encode_failure(decode_failure(original))
    assert orjson.loads(again) == orjson.loads(original)


def test_reraised_rebuilt_failure_keeps_both_tracebacks() -> None:
    rebuilt = decode_failure(encode_failure(caught(declined_card)))
    doc = orjson.loads(encode_failure(raised(rebuilt)))
    assert "declined_card" in doc["traceback"] and "Raised again from" in doc["traceback"]


def test_traceback_is_clipped() -> None:
    def ping(n: int) -> None:  # alternating frames: Python cannot fold them into one line
        if n == 0:
            raise ValueError("bottom")
        pong(n - 1)

    def pong(n: int) -> None:
        ping(n - 1)

    exc = caught(lambda: ping(400))
    text = orjson.loads(encode_failure(exc))["traceback"]
    assert len(text) <= MAX_TRACEBACK_CHARS
    assert text.startswith("Traceback (most recent call last):")
    assert text.endswith("ValueError: bottom\n")
    assert "characters omitted" in text


def test_awkward_exceptions_still_encode() -> None:
    doc = orjson.loads(encode_failure(raised(BadStr())))
    assert doc["type"] == "BadStr" and "str() failed" in doc["message"]
    doc = orjson.loads(encode_failure(KeyboardInterrupt()))
    assert doc["type"] == "KeyboardInterrupt" and doc["message"] == ""
    doc = orjson.loads(encode_failure(ValueError("x" * 100_000)))
    assert len(doc["message"]) < 40_000
    assert failure_message(encode_failure(ValueError())) == "ValueError"


def test_retry_state_from_the_worker_is_exposed() -> None:
    failure = orjson.loads(encode_failure(ValueError("x")))
    failure["retry_state"] = "non_retryable"
    back = decode_failure(orjson.dumps(failure))
    assert getattr(back, "retry_state", None) == "non_retryable"


def test_minimal_and_odd_payloads() -> None:
    back = decode_failure(b"{}")
    assert isinstance(back, ApplicationError) and back.type == "Error"
    back = decode_failure(b'"just text"')
    assert isinstance(back, ApplicationError) and back.message == "just text"
    back = decode_failure(b'{"type":"ActivityError","message":"m","activity_name":"a",'
                          b'"activity_id":"not a number"}')  # fmt: skip
    assert isinstance(back, ApplicationError) and back.type == "ActivityError"
    assert failure_message(b'{"type":"X","message":"line one\\nline two"}') == (
        "X: line one line two"
    )


@given(data=st.binary(max_size=100))
def test_garbage_never_raises(data: bytes) -> None:
    assert isinstance(decode_failure(data), BaseException)
    assert isinstance(failure_message(data), str)


@given(value=JSON)
def test_any_json_never_raises(value: Any) -> None:
    data = orjson.dumps(value)
    assert isinstance(decode_failure(data), BaseException)
    assert isinstance(failure_message(data), str)


@given(
    message=st.text(max_size=200),
    details=st.lists(JSON, max_size=4),
    kind=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True),
    non_retryable=st.booleans(),
    cause_message=st.none() | st.text(max_size=50),
)
def test_failure_round_trip_property(
    message: str,
    details: list[Any],
    kind: str,
    non_retryable: bool,
    cause_message: str | None,
) -> None:
    exc = ApplicationError(message, *details, type=kind, non_retryable=non_retryable)
    if cause_message is not None:
        exc.__cause__ = raised(KeyError(cause_message))
    exc = raised(exc)
    data = encode_failure(exc)
    back = decode_failure(data)
    assert isinstance(back, ApplicationError)
    assert (back.type, back.message, back.non_retryable) == (kind, message, non_retryable)
    assert list(back.details) == details
    expected_tb = "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False)
    )
    assert back.remote_traceback == expected_tb
    if cause_message is None:
        assert back.__cause__ is None
    else:
        assert isinstance(back.__cause__, ApplicationError)
        assert back.__cause__.type == "KeyError"
        assert back.__cause__.message == str(KeyError(cause_message))
    line = failure_message(data)
    assert line.startswith(kind) and "\n" not in line
