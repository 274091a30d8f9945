"""Preparing a call: a workflow or activity reference and its arguments -> the registered name,
the arity-checked (and encoded) arguments and the decoder of the result.

One helper for the three places that start something by reference: the client starting a
workflow, a workflow starting a child workflow, and a workflow scheduling an activity.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._definition import activity_definition, activity_name, workflow_definition, workflow_name
from ._converter import PayloadConverter
from ._signatures import check_call

__all__ = ["CallKind", "PreparedCall", "prepare_call"]

CallKind = Literal["workflow", "child workflow", "activity"]
"""What is called; it names the callee in error messages (``"child workflow 'orders.ship'"``)."""


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, and this is per call
class PreparedCall:
    """A call ready to be recorded.

    ``args`` is the full positional argument list (defaults filled in) when the target is a
    decorated function, or the arguments as given when it is a name. ``payload`` is ``args``
    encoded as one JSON array, or ``None`` when :func:`prepare_call` was told not to encode
    (see :meth:`encode`). ``decode`` turns the JSON result into the value the target's return
    annotation describes; ``None`` for a target given by name (the result is plain JSON).
    """

    kind: CallKind
    name: str
    args: list[object]
    payload: bytes | None
    decode: Callable[[bytes], Any] | None

    def encode(self, converter: PayloadConverter) -> bytes:
        """``args`` as one JSON array; errors name the argument (``"argument 2 of activity
        'charge'"``)."""
        return converter.encode_args(self.args, what=_args_what(self.kind, self.name))


def prepare_call(
    converter: PayloadConverter,
    target: object,
    args: Sequence[object],
    *,
    kind: CallKind,
    check_name: Callable[[str], object] | None = None,
    encode: bool = True,
) -> PreparedCall:
    """Resolve ``target`` (a decorated function, or a registered name) for a call with ``args``.

    A decorated function's signature is checked here, before anything is recorded
    (``TypeError`` naming the callee); a name is taken as it is and its arguments as given.
    ``check_name`` validates the resolved name: for workflows every name, for activities a
    name given as a string (an activity's decorated name is checked when it is decorated).
    With ``encode=False`` the arguments are checked but not encoded (``payload`` is ``None``):
    a replayed activity command does not read them, and a child workflow encodes them after it
    has taken its default id.
    """
    decode: Callable[[bytes], Any] | None = None
    if kind == "activity":
        if isinstance(target, str):
            name = activity_name(target)
            if check_name is not None:
                check_name(name)
            values = list(args)
        else:
            definition = activity_definition(target)
            name = definition.name
            fn = definition.fn
            values = check_call(_signature_view(fn), args, {}, kind="activity", name=name)
            decode = functools.partial(
                converter.decode_result, fn=fn, what=f"result of activity {name!r}"
            )
    else:
        name = workflow_name(target)
        if check_name is not None:
            check_name(name)
        if isinstance(target, str):
            values = list(args)
        else:
            fn = workflow_definition(target).fn
            values = check_call(fn, args, {}, kind="workflow", name=name)
            decode = functools.partial(
                converter.decode_result, fn=fn, what=f"result of {kind} {name!r}"
            )
    payload = converter.encode_args(values, what=_args_what(kind, name)) if encode else None
    return PreparedCall(kind, name, values, payload, decode)


def _args_what(kind: CallKind, name: str) -> str:
    return f"arguments of {kind} {name!r}"


@functools.lru_cache(maxsize=1024)
def _signature_view(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``Shop.charge`` passed from a workflow is the plain function behind a method: check
    arguments against the signature without ``self`` (the worker calls it bound).

    Cached: reading a signature costs more than the rest of a call's preparation, and the
    same partial each time lets ``check_call`` find its plan for it in its own cache."""
    if inspect.isfunction(fn) and "." in fn.__qualname__:
        params = list(inspect.signature(fn).parameters)
        if params and params[0] == "self":
            return functools.partial(fn, None)
    return fn
