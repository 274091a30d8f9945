"""Project configuration: the ``[tool.ostinato.lint]`` tables of the pyproject.toml files above
a linted file, merged (the nearest wins where they disagree; ``inherit = false`` stops the search).

```toml
[tool.ostinato.lint]
# more banned calls: dotted name -> "CODE: advice" ("mylib.*" bans a whole module)
extra-banned = { "mylib.fetch" = "OST104: call it from an activity" }
# names the table bans that this project knows to be safe
allow = ["random.Random"]
# extra decorators that mark workflow / activity functions (dotted import paths)
workflow-decorators = ["myapp.durable.workflow"]
activity-decorators = ["myapp.durable.task"]
# frameworks whose workflows to check (default: detected from each file's imports)
preset = ["ostinato", "temporal", "dbos"]
# a subproject's table adds to its parents' unless it says
inherit = false
```
"""

from __future__ import annotations

import functools
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .presets import DEFAULT_PRESET, PRESETS, Profile, detect, merge
from .rules import RULES_BY_CODE
from .table import Ban, BanTable

# The ostinato preset's decorators (kept for code that imported these names)
WORKFLOW_DECORATORS = PRESETS[DEFAULT_PRESET].workflow_decorators
ACTIVITY_DECORATORS = PRESETS[DEFAULT_PRESET].activity_decorators

_KEYS = frozenset(
    {"extra-banned", "allow", "workflow-decorators", "activity-decorators", "preset", "inherit"}
)
_BAN_VALUE = re.compile(r"^\s*(OST\d{3})\s*:\s*(\S.*?)\s*$")


class ConfigError(ValueError):
    """The ``[tool.ostinato.lint]`` table is malformed; the message says where and how."""


@dataclass(frozen=True)
class LintConfig:
    extra_banned: Mapping[str, Ban] = field(default_factory=dict)
    allow: frozenset[str] = frozenset()
    # the project's own decorators, added to those of the presets in force
    workflow_decorators: frozenset[str] = frozenset()
    activity_decorators: frozenset[str] = frozenset()
    presets: tuple[str, ...] = ()  # configured; empty means "detect from imports"
    source: Path | None = None  # the nearest pyproject.toml that contributed
    inherit: bool = True  # whether parent directories' tables apply too
    sources: tuple[Path, ...] = ()  # every pyproject.toml that contributed, outermost first

    @functools.cached_property
    def table(self) -> BanTable:
        return BanTable(self.extra_banned, self.allow)

    @functools.cached_property
    def cache_key(self) -> tuple[object, ...]:
        """Everything that changes what the checks find, as a hashable value."""
        return (
            self.presets,
            self.allow,
            self.workflow_decorators,
            self.activity_decorators,
            tuple(sorted(self.extra_banned.items())),
        )

    def presets_for(self, imported: frozenset[str]) -> tuple[str, ...]:
        """The presets in force for a file importing the dotted names ``imported``."""
        if self.presets:
            return self.presets
        return tuple(sorted(detect(imported) or {DEFAULT_PRESET}))

    def profile(self, presets: tuple[str, ...]) -> Profile:
        return _profile(presets, self.workflow_decorators, self.activity_decorators)


@functools.lru_cache(maxsize=256)
def _profile(
    presets: tuple[str, ...],
    workflow_decorators: frozenset[str],
    activity_decorators: frozenset[str],
) -> Profile:
    return merge(presets, workflow_decorators, activity_decorators)


DEFAULT_CONFIG = LintConfig()


def _load_toml(path: Path) -> dict[str, Any] | None:
    """Parse a TOML file, or return None when this Python has no TOML parser (3.10 w/o tomli)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10 (tests simulate it)
        try:
            import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            warnings.warn(
                f"ostinato-lint: cannot read [tool.ostinato.lint] from {path}: Python 3.10 "
                "needs the 'tomli' package for that (pip install 'ostinato-lint[toml]'); "
                "using the default rules",
                stacklevel=2,
            )
            return None
    with path.open("rb") as handle:
        try:
            data: dict[str, Any] = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return data


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in ``start`` (a file or directory) or one of its parents."""
    directory = start.resolve()
    if not directory.is_dir():
        directory = directory.parent
    for candidate in (directory, *directory.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return path
    return None


def _string_list(path: Path, key: str, value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: [tool.ostinato.lint] {key} must be a list of strings")
    return frozenset(value)


def _presets(path: Path, value: object) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(item, str) for item in names):
        raise ConfigError(
            f"{path}: [tool.ostinato.lint] preset must be a string or a list of strings "
            f"(known: {', '.join(PRESETS)})"
        )
    for name in names:
        if name not in PRESETS:
            raise ConfigError(
                f"{path}: [tool.ostinato.lint] preset {name!r} is not known "
                f"(known: {', '.join(PRESETS)})"
            )
    return tuple(sorted(set(names)))


def parse_config(table: Mapping[str, object], path: Path) -> LintConfig:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) in [tool.ostinato.lint]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KEYS))})"
        )
    extra: dict[str, Ban] = {}
    raw_banned = table.get("extra-banned", {})
    if not isinstance(raw_banned, Mapping):
        raise ConfigError(f"{path}: [tool.ostinato.lint] extra-banned must be a table")
    for name, value in raw_banned.items():
        match = _BAN_VALUE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                f'{path}: extra-banned {name!r} must map to "OSTnnn: advice", got {value!r}'
            )
        code, advice = match.groups()
        if code not in RULES_BY_CODE:
            raise ConfigError(
                f"{path}: extra-banned {name!r} uses unknown code {code} "
                f"(known: {', '.join(RULES_BY_CODE)})"
            )
        extra[name] = Ban(code, advice)
    inherit = table.get("inherit", True)
    if not isinstance(inherit, bool):
        raise ConfigError(f"{path}: [tool.ostinato.lint] inherit must be true or false")
    return LintConfig(
        inherit=inherit,
        sources=(path,),
        extra_banned=extra,
        presets=_presets(path, table.get("preset", [])),
        allow=_string_list(path, "allow", table.get("allow", [])),
        workflow_decorators=_string_list(
            path, "workflow-decorators", table.get("workflow-decorators", [])
        ),
        activity_decorators=_string_list(
            path, "activity-decorators", table.get("activity-decorators", [])
        ),
        source=path,
    )


@functools.lru_cache(maxsize=64)
def _config_from(path: Path, mtime_ns: int) -> LintConfig:
    data = _load_toml(path)
    if data is None:
        return DEFAULT_CONFIG
    tool = data.get("tool", {})
    section = tool.get("ostinato", {}).get("lint") if isinstance(tool, dict) else None
    if section is None:
        return DEFAULT_CONFIG
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.ostinato.lint] must be a table")
    return parse_config(section, path)


def _merge(outer: LintConfig, inner: LintConfig) -> LintConfig:
    """A subproject's table on top of its parent's: lists add up, the inner one wins otherwise."""
    return LintConfig(
        extra_banned={**outer.extra_banned, **inner.extra_banned},
        allow=outer.allow | inner.allow,
        workflow_decorators=outer.workflow_decorators | inner.workflow_decorators,
        activity_decorators=outer.activity_decorators | inner.activity_decorators,
        presets=inner.presets or outer.presets,
        source=inner.source,
        inherit=inner.inherit,
        sources=(*outer.sources, *inner.sources),
    )


def config_for(path: Path) -> LintConfig:
    """The configuration that applies to the file or directory ``path``: every
    ``[tool.ostinato.lint]`` from the nearest pyproject.toml up, until one says
    ``inherit = false``."""
    directory = path.resolve()
    if not directory.is_dir():
        directory = directory.parent
    found: list[LintConfig] = []
    for candidate in (directory, *directory.parents):
        pyproject = candidate / "pyproject.toml"
        try:
            mtime_ns = pyproject.stat().st_mtime_ns
        except OSError:
            continue
        config = _config_from(pyproject, mtime_ns)
        if config.source is None:
            continue  # a pyproject.toml without our table: keep looking upward
        found.append(config)
        if not config.inherit:
            break
    if not found:
        return DEFAULT_CONFIG
    merged = found[-1]
    for inner in reversed(found[:-1]):
        merged = _merge(merged, inner)
    return merged
