"""The Rust core of ostinato: a pure reducer over workflow history.

See docs/internals/reducer.md for the event and command contract.

Payloads, inputs, options, results and failures cross this boundary as JSON bytes; the core
checks that they are valid JSON and otherwise keeps them byte for byte. Times are integers:
microseconds since the Unix epoch, UTC. Every ``Reducer`` method either succeeds or raises one of
the three exceptions below and leaves the reducer exactly as it was before the call.
"""

from typing import final

__all__ = [
    "EngineBugError",
    "HistoryCorruptError",
    "HistoryView",
    "Activation",
    "Command",
    "Job",
    "NondeterminismError",
    "Reducer",
    "__version__",
    "view_history",
]

__version__: str

class NondeterminismError(Exception):
    """The workflow code no longer matches its recorded history.

    ``str(error)`` is a sentence such as ``history event #12 is activity_scheduled 'charge' but
    the workflow code issued start_timer``.
    """

    seq: int
    """The history event the code disagrees with (the next sequence number when history ran
    out)."""
    expected: str
    """What history has, e.g. ``activity_scheduled 'charge'`` (``no further command`` when the
    recorded workflow task has no more commands)."""
    got: str
    """What the code did, e.g. ``start_timer`` or ``schedule_activity 'refund'``
    (``no further command`` when it stopped issuing commands)."""

class HistoryCorruptError(Exception):
    """A stored history event could not be decoded or is out of order."""

    seq: int
    """The offending event's sequence number (the expected one when it is unreadable)."""

class EngineBugError(Exception):
    """An illegal transition that only a bug in ostinato can cause.

    For example a command outside an activation or after the run closed, an activation finished
    twice, cancelling a command that is already resolved, or a payload that is not valid JSON.
    """

@final
class Job:
    """One inbound event delivered to the workflow code.

    Fields by ``kind`` (the others are ``0``, ``""`` or ``None``):

    - ``workflow_started``: ``name`` (workflow name), ``payload`` = input (JSON array of
      arguments), ``info``
    - ``activity_completed``: ``id``, ``payload`` = result, ``attempt``
    - ``activity_failed``: ``id``, ``payload`` = failure, ``attempt``
    - ``timer_fired``: ``id``
    - ``signal_received``: ``name`` (signal name), ``payload``
    - ``child_completed``: ``id``, ``payload`` = result
    - ``child_failed``: ``id``, ``payload`` = failure
    - ``signal_external_completed``: ``id``, ``payload`` = failure, or ``None`` when delivered
    - ``cancel_requested``: ``name`` = reason (``payload`` = the reason as a JSON string)
    - ``timed_out``: nothing

    An outcome for a command the code already cancelled produces no job.
    """

    @property
    def kind(self) -> str:
        """The event kind (see the class docstring)."""
    @property
    def seq(self) -> int:
        """The event's sequence number in history."""
    @property
    def id(self) -> int:
        """The command id the event answers; 0 when the kind has none."""
    @property
    def name(self) -> str:
        """Workflow name, signal name or cancel reason; empty otherwise."""
    @property
    def payload(self) -> bytes | None:
        """JSON bytes: input, result, failure, signal payload or reason, by kind."""
    @property
    def attempt(self) -> int:
        """The activity attempt for activity outcomes; 0 otherwise."""
    @property
    def info(self) -> bytes | None:
        """``workflow_started`` info (JSON bytes); ``None`` otherwise."""

@final
class Activation:
    """A batch of inbound events to run the workflow code against."""

    @property
    def time(self) -> int:
        """The workflow task's ``task_started`` time: ``workflow.now()``."""
    @property
    def replaying(self) -> bool:
        """True for a batch loaded with ``load_history``."""
    @property
    def jobs(self) -> list[Job]:
        """One ``Job`` per inbound event that still matters, in history order."""

@final
class Command:
    """What a workflow task asks of the backend: one of the reducer's outputs.

    (The Rust core calls these tasks; in Python a *task* is work claimed from a backend.)

    Fields by ``kind`` (the others are ``0``, ``""`` or ``None``):

    - ``activity``: ``id``, ``name``, ``payload`` = input, ``options``
    - ``cancel_activity``: ``id``
    - ``timer``: ``id``, ``time`` = fire_at (deliver ``timer_fired`` then)
    - ``cancel_timer``: ``id``
    - ``start_child``: ``id``, ``name``, ``payload`` = input, ``options``
    - ``cancel_child``: ``id``, ``name``, ``options`` = the child's options (they name the
      child instance); also emitted for every running child when the run closes
    - ``signal_external``: ``id``, ``name``, ``payload``, ``options``
    - ``cancel_external``: ``id``, ``payload`` = reason (JSON string), ``options``
    - ``complete``: ``payload`` = result
    - ``fail``: ``payload`` = failure
    - ``canceled``: nothing
    - ``continue_as_new``: ``payload`` = input, ``options``
    """

    @property
    def kind(self) -> str:
        """The command kind (see the class docstring)."""
    @property
    def id(self) -> int:
        """The command id; 0 for run-level commands."""
    @property
    def name(self) -> str:
        """Activity, workflow or signal name; empty otherwise."""
    @property
    def payload(self) -> bytes | None:
        """JSON bytes: input, signal payload, result or failure, by kind."""
    @property
    def options(self) -> bytes | None:
        """JSON bytes: the command's options."""
    @property
    def time(self) -> int:
        """A timer's fire time; 0 otherwise."""

@final
class Reducer:
    """The state of one workflow run, fed with history and commands.

    Commands may only be issued between ``next_activation()`` and ``finish_activation()``.
    While an activation replays recorded history, each command must match the next recorded
    command event (kind and identity, in order) or ``NondeterminismError`` is raised; nothing
    new is recorded. Otherwise each command records a new event and, for most kinds, an output
    command for the backend (``take_commands``).
    """

    def __init__(self) -> None: ...
    def load_history(self, events: list[bytes]) -> None:
        """Queue recorded events (with seq) for replay.

        May be called several times with consecutive parts of a history, but not after
        ``add_new_batch``. Raises ``HistoryCorruptError`` for malformed or inconsistent events.
        """
    def add_new_batch(self, time: int, events: list[bytes]) -> None:
        """Start a new workflow task at `time` with inbox events (without seq).

        Records ``task_started`` and the events with fresh sequence numbers (see
        ``take_new_events``) and queues the batch after any recorded ones. Only one new batch
        may be pending; the first batch of a run must begin with ``workflow_started``.
        """
    def next_activation(self) -> Activation | None:
        """The next batch to run the workflow code against, or ``None`` when there is none.

        Raises ``NondeterminismError`` for an inbound event whose command id the code never
        issued (or issued as another kind of command).
        """
    def finish_activation(self) -> None:
        """End the current activation.

        For a replayed batch, a recorded command the code did not issue raises
        ``NondeterminismError``.
        """
    def schedule_activity(self, name: str, input: bytes, options: bytes) -> int:
        """Schedule activity `name`; returns its command id. Identity on replay: name."""
    def cancel_activity(self, id: int) -> None:
        """Stop waiting for activity `id` (a later outcome produces no job)."""
    def start_timer(self, fire_at: int) -> int:
        """Start a timer firing at `fire_at`; returns its command id.

        On replay the recorded fire time is kept.
        """
    def cancel_timer(self, id: int) -> None:
        """Cancel timer `id` (a later ``timer_fired`` produces no job)."""
    def side_effect(self, value: bytes | None) -> tuple[int, bytes]:
        """Record `value`; returns ``(id, value)``.

        While replaying, returns the recorded value (pass ``None`` to skip computing it);
        ``None`` outside replay is an ``EngineBugError``.
        """
    def patched(self, change_id: str, deprecated: bool = False) -> bool:
        """``workflow.patched(change_id)``; ``deprecated=True`` for ``deprecate_patch``.

        Not replaying: records a marker and returns True. Replaying: True (consuming the
        marker) if the next recorded command is a marker for `change_id`, else False. Once
        True, True for the rest of the run. A deprecated patch never records a marker,
        consumes a matching one while replaying, and always returns True.
        """
    def start_child(self, name: str, input: bytes, options: bytes) -> int:
        """Start child workflow `name`; returns its command id. Identity on replay: name."""
    def cancel_child(self, id: int) -> None:
        """Stop waiting for child `id` and ask the backend to cancel it."""
    def signal_external(self, name: str, payload: bytes, options: bytes) -> int:
        """Send signal `name` to the instance in `options`; returns its command id."""
    def cancel_external(self, options: bytes, reason: str) -> int:
        """Ask the instance named in ``options`` to cancel; returns the command id (answered
        by ``signal_external_completed``)."""
    def complete(self, result: bytes) -> None:
        """Close the run with `result`."""
    def fail(self, failure: bytes) -> None:
        """Close the run with `failure`."""
    def cancel(self) -> None:
        """Close the run as cancelled."""
    def continue_as_new(self, input: bytes, options: bytes) -> None:
        """Close the run and start a new one with `input`."""
    def take_new_events(self) -> list[bytes]:
        """Events to append to history (with seq), created since the last call."""
    def take_commands(self) -> list[Command]:
        """Commands for the backend, created since the last call."""
    def fail_task(self, time: int, events: list[bytes], failure: bytes) -> None:
        """Record a workflow task whose code is not run because the run fails instead (the
        worker option ``nondeterminism="fail"``).

        Appends ``task_started`` at `time`, the inbox `events` (without seq, checked as by
        ``add_new_batch``) and ``workflow_failed`` with `failure`, numbered after the history
        loaded so far, and the ``fail`` command; the run is closed (``close_status`` is
        ``"failed"``). Only on a reducer that has loaded the run's history and done nothing
        else: otherwise, or when that history already closes the run, ``EngineBugError``.
        """
    @property
    def replaying(self) -> bool:
        """True while the current activation replays recorded history."""
    @property
    def history_length(self) -> int:
        """Number of events in history, recorded and new."""
    @property
    def history_length_here(self) -> int:
        """Number of events in history when the running workflow task started
        (workflow.info()): the same value on every replay."""
    @property
    def finished(self) -> bool:
        """True once the run has a closing command (complete, fail, cancel, continue)."""
    @property
    def close_status(self) -> str | None:
        """How the run closed, decided by the reducer: ``completed``, ``failed``,
        ``timed_out`` (failed in or after the activation that delivered ``timed_out``: its
        execution deadline closed it), ``canceled`` or ``continued_as_new``; ``None`` while
        open."""

@final
class HistoryView:
    """What a recorded history says about its run, without running its code (``describe()``).

    The history is checked as ``Reducer.load_history`` checks it. A command is pending while
    its machine still waits: an activity scheduled and neither finished nor asked to cancel, a
    timer neither fired nor cancelled, a child neither finished nor asked to cancel. Attempts
    and retries of an activity are not history: the backend knows them.
    """

    @property
    def pending_activities(self) -> list[tuple[int, str]]:
        """``(command id, activity name)`` of each activity the run waits for."""
    @property
    def pending_timers(self) -> list[tuple[int, int]]:
        """``(command id, fire time)`` of each timer that has not fired (microseconds)."""
    @property
    def pending_children(self) -> list[tuple[int, str, bytes]]:
        """``(command id, workflow name, options JSON)`` of each child the run waits for; the
        options name the child instance."""
    @property
    def batches(self) -> int:
        """Number of workflow tasks (``task_started`` events) in the history."""
    @property
    def corrupt_seq(self) -> int | None:
        """The first corrupt event's sequence number, or ``None``; the view describes the
        events before it."""

def view_history(history: list[bytes]) -> HistoryView:
    """What ``history`` (stored events with seq, from the first) says about its run. Never
    raises for a corrupt history: see ``HistoryView.corrupt_seq``."""
