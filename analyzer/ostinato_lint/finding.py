"""One reported problem, in the shape both front ends (flake8 and the runner) print."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    col: int  # 1-based, as flake8 and editors print it
    code: str
    message: str  # without the code
    workflow: str  # the workflow through which the code was reached

    def format(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Note(NamedTuple):
    """Something the user should know about how a file was checked (printed once per ``key``)."""

    key: str
    message: str
