"""Helpers imported from other modules of the same project, followed (a bounded number of hops).

``from .pricing import quote`` in a workflow module, or ``from myapp.pricing import quote`` in a
package: the analyzer finds ``myapp/pricing.py`` next to the linted file (the import root is the
directory above its outermost package), checks ``quote`` and the same-module code it reaches,
and reports what it finds at the call site in the workflow's file (flake8 reports per file).
Only ``.py`` files of the project are read; installed packages and the standard library are
never resolved here (the banned-call table covers those).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

MAX_HOPS = 2  # workflow module -> helper module -> its helper module


@dataclass(frozen=True)
class Reached:
    """Something nondeterministic that a call into another project module leads to."""

    code: str
    detail: str  # "time.time() reads the clock, which differs on every replay"
    advice: str
    where: str  # "pricing.py:12"


def import_root(path: Path) -> tuple[Path, tuple[str, ...]]:
    """The directory imports are resolved from, and the dotted package of ``path``."""
    return _import_root(path.parent)


@functools.lru_cache(maxsize=1024)
def _import_root(directory: Path) -> tuple[Path, tuple[str, ...]]:
    directory = directory.resolve()
    package: list[str] = []
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        package.insert(0, directory.name)
        directory = directory.parent
    return directory, tuple(package)


@functools.lru_cache(maxsize=4096)
def _has_top_level(root: str, name: str) -> bool:
    base = Path(root, name)
    return base.is_dir() or base.with_suffix(".py").is_file()


@functools.lru_cache(maxsize=1024)
def _module_file(root: Path, dotted: tuple[str, ...]) -> Path | None:
    if not dotted:
        return None
    base = root.joinpath(*dotted)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def locate(
    qualname: str, path: Path, root: tuple[Path, tuple[str, ...]] | None = None
) -> tuple[Path, str] | None:
    """The project file and function name an imported dotted name refers to, if it is a plain
    function of a project module: ``myapp.pricing.quote`` -> (``.../myapp/pricing.py``,
    ``quote``); ``.pricing.quote`` is relative to ``path``'s package."""
    root_dir, package = root or import_root(path)
    level = len(qualname) - len(qualname.lstrip("."))
    parts = tuple(qualname.lstrip(".").split("."))
    if len(parts) < 2:
        return None
    if level:
        if level - 1 > len(package):
            return None
        parts = package[: len(package) - (level - 1)] + parts
    if not _has_top_level(str(root_dir), parts[0]):
        return None  # the standard library, an installed package: not this project's code
    module = _module_file(root_dir, parts[:-1])
    if module is None or module.resolve() == path.resolve():
        return None
    return module, parts[-1]


@functools.lru_cache(maxsize=256)
def parse(path: Path, mtime_ns: int) -> tuple[ast.Module, str] | None:
    try:
        source = importlib.util.decode_source(path.read_bytes())
        return ast.parse(source, filename=str(path)), source
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
