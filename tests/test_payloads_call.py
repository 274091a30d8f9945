"""Unit tests of ``prepare_call``: one reference (function or name) + arguments -> the registered
name, the checked and encoded arguments, and the decoder of the result."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import orjson
import ostinato._payloads as payloads
import pytest
from ostinato import activity, workflow
from ostinato._errors import PayloadError, RegistrationError
from ostinato._payloads import PayloadConverter, default_converter, prepare_call

conv = default_converter()


@dataclasses.dataclass
class Receipt:
    order: str
    cents: int


@workflow.defn(name="orders.process")
async def process(order: str, attempts: int = 3) -> Receipt:
    return Receipt(order, attempts)


@activity.defn(name="charge")
async def charge(order: str, cents: int) -> Receipt:
    return Receipt(order, cents)


class Shop:
    @activity.defn(name="shop.refund")
    async def refund(self, order: str) -> int:
        return 0


def test_workflow_function_gives_name_full_args_payload_and_typed_decoder() -> None:
    call = prepare_call(conv, process, ["o-1"], kind="workflow")
    assert call.name == "orders.process"
    assert call.args == ["o-1", 3]  # the default is filled in, so the stored array is complete
    assert call.payload is not None and orjson.loads(call.payload) == ["o-1", 3]
    assert call.decode is not None
    assert call.decode(b'{"order": "o-1", "cents": 3}') == Receipt("o-1", 3)


def test_workflow_name_takes_args_as_given_and_decodes_plain_json() -> None:
    call = prepare_call(conv, "orders.other", ("a", 1, 2), kind="workflow")
    assert (call.name, call.args, call.decode) == ("orders.other", ["a", 1, 2], None)
    assert call.payload == b'["a",1,2]'


def test_activity_function_decoder_names_the_activity_result() -> None:
    call = prepare_call(conv, charge, ["o-1", 250], kind="activity")
    assert call.name == "charge"
    assert call.decode is not None
    with pytest.raises(PayloadError, match=r"result of activity 'charge'"):
        call.decode(b'"not a receipt"')


def test_child_workflow_decoder_names_the_child() -> None:
    call = prepare_call(conv, process, ["o-1"], kind="child workflow")
    assert call.decode is not None
    with pytest.raises(PayloadError, match=r"result of child workflow 'orders.process'"):
        call.decode(b"[]")


def test_method_activity_is_checked_without_self() -> None:
    call = prepare_call(conv, Shop.refund, ["o-1"], kind="activity")
    assert (call.name, call.args) == ("shop.refund", ["o-1"])
    with pytest.raises(TypeError, match=r"activity 'shop.refund' takes 1 argument"):
        prepare_call(conv, Shop.refund, ["o-1", "extra"], kind="activity")


@pytest.mark.parametrize("kind", ["workflow", "child workflow"])
def test_arity_is_checked_before_anything_is_encoded(kind: str) -> None:
    with pytest.raises(TypeError, match=r"workflow 'orders.process' takes 1 to 2 arguments"):
        prepare_call(conv, process, [], kind=kind)  # type: ignore[arg-type]


def test_encode_false_checks_but_defers_encoding() -> None:
    call = prepare_call(conv, process, [object()], kind="child workflow", encode=False)
    assert call.payload is None
    with pytest.raises(PayloadError, match=r"argument 1 of child workflow 'orders.process'"):
        call.encode(conv)


def test_encoding_errors_name_the_argument_and_the_callee() -> None:
    with pytest.raises(PayloadError, match=r"argument 2 of activity 'charge'"):
        prepare_call(conv, charge, ["o-1", float("nan")], kind="activity")


def test_the_converter_given_is_used() -> None:
    small = PayloadConverter(max_payload_size=8)
    with pytest.raises(PayloadError, match=r"payload too large for arguments of workflow"):
        prepare_call(small, "wf", ["x" * 20], kind="workflow")


def test_check_name_sees_workflow_names_and_activity_names_given_as_text() -> None:
    seen: list[str] = []
    prepare_call(conv, process, [1], kind="workflow", check_name=seen.append)
    prepare_call(conv, "by.name", [], kind="child workflow", check_name=seen.append)
    prepare_call(conv, "act.name", [], kind="activity", check_name=seen.append)
    prepare_call(conv, charge, ["o", 1], kind="activity", check_name=seen.append)  # decorated
    assert seen == ["orders.process", "by.name", "act.name"]

    def refuse(name: str) -> None:
        raise ValueError(f"bad name {name}")

    with pytest.raises(ValueError, match="bad name wf"):
        prepare_call(conv, "wf", [], kind="workflow", check_name=refuse)


def test_a_reference_that_is_not_registered_is_refused() -> None:
    async def plain(x: int) -> int:
        return x

    with pytest.raises(RegistrationError, match="not an activity"):
        prepare_call(conv, plain, [1], kind="activity")
    with pytest.raises(RegistrationError):
        prepare_call(conv, plain, [1], kind="workflow")
    with pytest.raises(RegistrationError, match="workflow name must be a non-empty string"):
        prepare_call(conv, " ", [], kind="workflow")


def test_payload_modules_stay_small() -> None:
    package = Path(payloads.__file__ or "").parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in package.glob("*.py")}
    assert {"_encode.py", "_decode.py", "_signatures.py", "_converter.py", "_call.py"} <= set(sizes)
    assert all(size <= 900 for size in sizes.values()), sizes


def test_the_internals_page_lists_every_payloads_module() -> None:
    page = Path(__file__).parent.parent / "docs" / "internals" / "payloads.md"
    listed = set(re.findall(r"^\| `(_\w+\.py)` \|", page.read_text(), re.MULTILINE))
    package = Path(payloads.__file__ or "").parent
    assert listed == {p.name for p in package.glob("_*.py") if p.name != "__init__.py"}
