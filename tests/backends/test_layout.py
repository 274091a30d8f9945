"""The backends package keeps its shape: small modules of one concern each, every one named
in the map of docs/backends.md, and the algorithm written once."""

from __future__ import annotations

import re
from pathlib import Path

import ostinato._backends as backends_package

PACKAGE = Path(backends_package.__file__).parent
DOCS = (Path(__file__).parents[2] / "docs" / "backends.md").read_text()
MAX_LINES = 900


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_modules_are_small_and_on_the_map() -> None:
    modules = _modules()
    names = {p.relative_to(PACKAGE).as_posix() for p in modules}
    assert names >= {"_contract.py", "_types.py", "_apply.py", "memory.py", "sqlite.py"}
    assert names >= {"postgres/_sql.py", "postgres/_url.py", "postgres/_pool.py"}
    for module in modules:
        relative = module.relative_to(PACKAGE).as_posix()
        lines = len(module.read_text().splitlines())
        assert lines <= MAX_LINES, f"_backends/{relative} has {lines} lines: split it"
        assert f"`{relative}`" in DOCS, f"docs/backends.md does not name _backends/{relative}"


def test_memory_and_sqlite_apply_commits_through_the_shared_algorithm() -> None:
    # The steps of a commit, a close and a terminate live in _apply.py only: a backend that
    # grew its own copy again would drift from the other.
    for name in ("memory.py", "sqlite.py"):
        source = (PACKAGE / name).read_text()
        assert "apply_commit(" in source and "terminate_run(" in source, name
        for copy in ("child_start_refused_event", "signal_external_completed_event"):
            assert copy not in source, f"{name} builds {copy} itself"
        assert not re.search(r"def _(close|terminate|apply_commit)\b", source), name
