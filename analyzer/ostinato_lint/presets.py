"""Framework presets: what a workflow is, what schedules an activity, and which rules apply.

A preset is data.  ``ostinato`` is the default; ``temporal`` (temporalio) and ``dbos`` bring
those frameworks' decorators and calls.  A project chooses presets with ``preset = [...]`` in
``[tool.ostinato.lint]``; without that, each file gets the presets of the frameworks it imports
(ostinato when it imports none of them).

Rules a preset switches off are the ones its runtime makes safe: ostinato's workflow loop hands
back ``asyncio.wait``'s ``done``/``pending`` as insertion-ordered sets (OST112), and its payload
converter writes sets sorted (OST113).  temporalio and DBOS do neither.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    name: str
    modules: tuple[str, ...]  # top-level import names that auto-detect the preset
    workflow_decorators: frozenset[str]
    activity_decorators: frozenset[str]
    # activities that the framework expects to be called directly (DBOS steps): never OST110
    direct_call_decorators: frozenset[str] = frozenset()
    # calls whose first argument is an activity/child reference and the rest its input
    schedulers: frozenset[str] = frozenset()
    # keyword arguments of those calls that carry input (the others are options)
    input_keywords: frozenset[str] = frozenset()
    # calls whose arguments run once and are recorded (not workflow code)
    side_effects: frozenset[str] = frozenset()
    # rules this framework's runtime makes unnecessary
    disabled: frozenset[str] = frozenset()
    # what to use instead, in this framework's words (by rule code), when it is the only preset
    advice: Mapping[str, str] = field(default_factory=dict)


_TEMPORAL_SCHEDULERS = frozenset(
    f"temporalio.workflow.{verb}_{kind}"
    for verb in ("execute", "start")
    for kind in (
        "activity",
        "activity_method",
        "activity_class",
        "local_activity",
        "local_activity_method",
        "local_activity_class",
        "child_workflow",
    )
)
_DBOS_STEPS = frozenset({"dbos.DBOS.step", "dbos.DBOS.transaction", "dbos.DBOS.communicator"})

PRESETS: dict[str, Preset] = {
    "ostinato": Preset(
        name="ostinato",
        modules=("ostinato",),
        workflow_decorators=frozenset({"ostinato.workflow.defn"}),
        activity_decorators=frozenset({"ostinato.activity.defn"}),
        schedulers=frozenset(
            {
                "ostinato.workflow.execute_activity",
                "ostinato.workflow.start_activity",
                "ostinato.workflow.execute_child",
                "ostinato.workflow.start_child",
            }
        ),
        side_effects=frozenset({"ostinato.workflow.side_effect"}),
        disabled=frozenset({"OST112", "OST113"}),
    ),
    "temporal": Preset(
        name="temporal",
        modules=("temporalio",),
        workflow_decorators=frozenset({"temporalio.workflow.defn"}),
        activity_decorators=frozenset({"temporalio.activity.defn"}),
        schedulers=_TEMPORAL_SCHEDULERS,
        input_keywords=frozenset({"arg", "args"}),
    ),
    "dbos": Preset(
        name="dbos",
        modules=("dbos",),
        advice={
            "OST101": "read the clock in a @DBOS.step() (its result is recorded)",
            "OST102": "draw random values in a @DBOS.step() (its result is recorded)",
            "OST103": "use DBOS.sleep(seconds) (a durable sleep)",
            "OST104": "move it into a @DBOS.step() and call that",
            "OST105": "move the work into a @DBOS.step()",
            "OST106": "pass it in as a workflow argument, or read it in a @DBOS.step()",
        },
        workflow_decorators=frozenset({"dbos.DBOS.workflow"}),
        activity_decorators=_DBOS_STEPS,
        direct_call_decorators=_DBOS_STEPS,
        schedulers=frozenset(
            {
                "dbos.DBOS.start_workflow",
                "dbos.DBOS.start_workflow_async",
                "dbos.DBOS.enqueue",
            }
        ),
    ),
}
DEFAULT_PRESET = "ostinato"


@dataclass(frozen=True)
class Profile:
    """The presets in force for one file, merged with the project's own decorators."""

    presets: tuple[str, ...]
    workflow_decorators: frozenset[str]
    activity_decorators: frozenset[str]
    direct_call_decorators: frozenset[str]
    schedulers: frozenset[str]
    input_keywords: frozenset[str]
    side_effects: frozenset[str]
    disabled: frozenset[str]
    advice: Mapping[str, str]

    @functools.cached_property
    def scheduler_names(self) -> frozenset[str]:
        """The last parts of the scheduling calls (a cheap test before resolving a call)."""
        return frozenset(name.rpartition(".")[2] for name in self.schedulers)


def merge(
    names: Iterable[str],
    workflow_decorators: frozenset[str] = frozenset(),
    activity_decorators: frozenset[str] = frozenset(),
) -> Profile:
    """One profile for several presets: their decorators and calls add up; a rule is off only
    when every preset switches it off (a file mixing frameworks gets every applicable check)."""
    chosen = [PRESETS[name] for name in sorted(set(names))]
    disabled: frozenset[str] = frozenset.intersection(*(p.disabled for p in chosen))
    return Profile(
        presets=tuple(p.name for p in chosen),
        workflow_decorators=workflow_decorators.union(*(p.workflow_decorators for p in chosen)),
        activity_decorators=activity_decorators.union(*(p.activity_decorators for p in chosen)),
        direct_call_decorators=frozenset().union(*(p.direct_call_decorators for p in chosen)),
        schedulers=frozenset().union(*(p.schedulers for p in chosen)),
        input_keywords=frozenset().union(*(p.input_keywords for p in chosen)),
        side_effects=frozenset().union(*(p.side_effects for p in chosen)),
        disabled=disabled,
        advice=chosen[0].advice if len(chosen) == 1 else {},
    )


def detect(imported: Iterable[str]) -> set[str]:
    """The presets whose framework one of the dotted import paths ``imported`` belongs to."""
    roots = {name.partition(".")[0] for name in imported}
    return {preset.name for preset in PRESETS.values() if roots.intersection(preset.modules)}
