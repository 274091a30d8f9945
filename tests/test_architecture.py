"""docs/internals/architecture.md stays true: its module list matches the package, every file
and function its walk-through names exists, and no module grows past ~900 lines."""

from __future__ import annotations

import re
from pathlib import Path

import ostinato

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(ostinato.__file__).parent
DOC = (ROOT / "docs" / "internals" / "architecture.md").read_text()
MAX_LINES = 950  # "about 900": a module past this is split


def test_every_module_and_package_is_on_the_map() -> None:
    table = DOC[DOC.index("## The modules") :]
    listed = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    present = {
        p.name + ("/" if p.is_dir() else "")
        for p in PACKAGE.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix in (".py", ".pyi")
    }
    assert listed == present, (
        f"on the map but gone: {sorted(listed - present)}; "
        f"missing from the map: {sorted(present - listed)}"
    )


def test_the_walk_through_names_real_files_and_functions() -> None:
    walk = DOC[DOC.index("## The path of one workflow task") : DOC.index("## Where new things go")]
    for path in set(re.findall(r"`((?:python|rust)/[\w/.]+)`", walk)):
        assert (ROOT / path).exists(), path
    source = "\n".join(
        p.read_text() for p in [*PACKAGE.rglob("*.py"), *(ROOT / "rust").rglob("*.rs")]
    )
    for qualified in set(re.findall(r"`(\w+)\.(\w+)`", walk)):
        owner, name = qualified
        if owner in ("_events", "_payloads", "_apply", "_commit", "Backend", "Reducer"):
            assert re.search(rf"\bdef {name}\b|\bfn {name}\b", source), f"{owner}.{name}"
        elif owner[0].isupper():
            assert re.search(rf"\bclass {owner}\b", source), owner
            assert re.search(rf"\bdef {name}\b", source), f"{owner}.{name}"


def test_no_module_is_too_long() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules: {long}"
