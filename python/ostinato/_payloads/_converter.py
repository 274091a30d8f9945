"""The converter facade: :class:`PayloadConverter` and :func:`default_converter`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from .._errors import PayloadError, PayloadTooLargeError
from ._decode import _compile, _Decoder, _got, _Mismatch
from ._encode import _dumps, _find_problem, _location, _Problem, _render_path
from ._signatures import _PLANS, _count_message, _plan

DEFAULT_MAX_PAYLOAD_SIZE = 2 * 1024 * 1024

_json_loads = orjson.loads


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


_DEFAULT = PayloadConverter()


def default_converter() -> PayloadConverter:
    """The shared converter with the default 2 MiB payload limit."""
    return _DEFAULT
