"""The Rust core of ostinato: a pure reducer over workflow history.

See docs/internals/reducer.md for the event and command contract.
"""

from typing import final

__all__ = [
    "EngineBugError",
    "HistoryCorruptError",
    "Activation",
    "Job",
    "NondeterminismError",
    "Reducer",
    "Task",
    "__version__",
]

__version__: str

class NondeterminismError(Exception):
    """The workflow code no longer matches its recorded history."""

    seq: int
    expected: str
    got: str

class HistoryCorruptError(Exception):
    """A stored history event could not be decoded or is out of order."""

    seq: int

class EngineBugError(Exception):
    """An illegal transition that only a bug in ostinato can cause."""

@final
class Job:
    """One inbound event delivered to the workflow code."""

    @property
    def kind(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def payload(self) -> bytes | None: ...
    @property
    def attempt(self) -> int: ...
    @property
    def info(self) -> bytes | None: ...

@final
class Activation:
    """A batch of inbound events to run the workflow code against."""

    @property
    def time(self) -> int: ...
    @property
    def replaying(self) -> bool: ...
    @property
    def jobs(self) -> list[Job]: ...

@final
class Task:
    """Work for the backend produced by a workflow task."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def payload(self) -> bytes | None: ...
    @property
    def options(self) -> bytes | None: ...
    @property
    def time(self) -> int: ...

class Reducer:
    """The state of one workflow run, fed with history and commands."""

    def __init__(self) -> None: ...
    def load_history(self, events: list[bytes]) -> None:
        """Queue recorded events (with seq) for replay."""
    def add_new_batch(self, time: int, events: list[bytes]) -> None:
        """Start a new workflow task at `time` with inbox events (without seq)."""
    def next_activation(self) -> Activation | None: ...
    def finish_activation(self) -> None: ...
    def schedule_activity(self, name: str, input: bytes, options: bytes) -> int: ...
    def cancel_activity(self, id: int) -> None: ...
    def start_timer(self, fire_at: int) -> int: ...
    def cancel_timer(self, id: int) -> None: ...
    def side_effect(self, value: bytes | None) -> tuple[int, bytes]: ...
    def patched(self, change_id: str, deprecated: bool = False) -> bool: ...
    def start_child(self, name: str, input: bytes, options: bytes) -> int: ...
    def cancel_child(self, id: int) -> None: ...
    def signal_external(self, name: str, payload: bytes, options: bytes) -> int: ...
    def complete(self, result: bytes) -> None: ...
    def fail(self, failure: bytes) -> None: ...
    def cancel(self) -> None: ...
    def continue_as_new(self, input: bytes, options: bytes) -> None: ...
    def take_new_events(self) -> list[bytes]: ...
    def take_tasks(self) -> list[Task]: ...
    @property
    def replaying(self) -> bool:
        """True while the current activation replays recorded history."""
    @property
    def history_length(self) -> int:
        """Number of events in history, recorded and new."""
    @property
    def finished(self) -> bool:
        """True once the run has a closing command (complete, fail, cancel, continue)."""
