"""The rule registry: every rule, in code order.

Adding a rule means adding a module here with a ``RULE`` and listing it below; its docs page is
generated from the module docstring (``python analyzer/scripts/gen_docs.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from . import (
    ost101_wall_clock,
    ost102_randomness,
    ost103_blocking_sleep,
    ost104_io,
    ost105_threads,
    ost106_environment,
    ost107_set_iteration,
    ost108_object_id,
    ost109_module_state,
    ost110_direct_activity_call,
    ost111_swallowed_cancellation,
    ost112_asyncio_wait_order,
    ost113_set_payload,
    ost114_string_hash,
)
from ._rule import Check, CheckContext, Hit, Resolved, Rule

ALL_RULES: tuple[Rule, ...] = tuple(
    module.RULE
    for module in (
        ost101_wall_clock,
        ost102_randomness,
        ost103_blocking_sleep,
        ost104_io,
        ost105_threads,
        ost106_environment,
        ost107_set_iteration,
        ost108_object_id,
        ost109_module_state,
        ost110_direct_activity_call,
        ost111_swallowed_cancellation,
        ost112_asyncio_wait_order,
        ost113_set_payload,
        ost114_string_hash,
    )
)
RULES_BY_CODE: Mapping[str, Rule] = {rule.code: rule for rule in ALL_RULES}


def checks_by_node_type() -> dict[type[ast.AST], list[tuple[Rule, Check]]]:
    by_type: dict[type[ast.AST], list[tuple[Rule, Check]]] = {}
    for rule in ALL_RULES:
        for node_type, check in rule.checks.items():
            by_type.setdefault(node_type, []).append((rule, check))
    return by_type


__all__ = [
    "ALL_RULES",
    "RULES_BY_CODE",
    "Check",
    "CheckContext",
    "Hit",
    "Resolved",
    "Rule",
    "checks_by_node_type",
]
