"""Call plans: per-function parameter and result decoders (the hot path), and the arity
check of a call against a function's signature."""

from __future__ import annotations

import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._decode import (
    _compile,
    _compile_hint_only,
    _dec_bare_dict,
    _dec_bare_list,
    _dec_bool,
    _dec_float,
    _dec_int,
    _dec_none,
    _dec_str,
    _Decoder,
)
from ._encode import _MAX_CACHE, _NoneType


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
