"""Smoke and property tests of the compiled reducer, ``ostinato._core``.

They drive the binding the way the runtime does (bytes in, bytes out) and check that the
Python surface behaves like the contract in docs/internals/reducer.md says. The reducer's own
logic is tested in Rust (rust/core/tests); these tests are about the boundary.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ostinato import _core

STARTED = b'{"kind":"workflow_started","name":"orders","input":["o-1"],"info":{"id":"order-1"}}'


def completed(id: int, result: str) -> bytes:
    return f'{{"kind":"activity_completed","id":{id},"result":{result},"attempt":1}}'.encode()


def run_order_workflow(activity: str = "charge") -> tuple[list[bytes], list[_core.Command]]:
    """start -> schedule activity -> activity completes -> complete, one batch at a time."""
    r = _core.Reducer()
    r.add_new_batch(1_000, [STARTED])
    a = r.next_activation()
    assert a is not None and not a.replaying and not r.replaying
    assert a.time == 1_000
    [job] = a.jobs
    assert (job.kind, job.seq, job.name, job.payload, job.info) == (
        "workflow_started",
        2,
        "orders",
        b'["o-1"]',
        b'{"id":"order-1"}',
    )
    assert r.schedule_activity(activity, b'["o-1",100]', b'{"start_to_close":30}') == 1
    r.finish_activation()
    assert r.next_activation() is None
    history = r.take_new_events()
    tasks = r.take_commands()
    r.add_new_batch(2_000, [completed(1, '"receipt-7"')])
    a = r.next_activation()
    assert a is not None
    [job] = a.jobs
    assert (job.kind, job.id, job.payload, job.attempt) == (
        "activity_completed",
        1,
        b'"receipt-7"',
        1,
    )
    assert job.payload is not None
    r.complete(job.payload)
    r.finish_activation()
    assert r.finished
    history += r.take_new_events()
    tasks += r.take_commands()
    assert r.history_length == len(history) == 6
    return history, tasks


def test_start_schedule_complete() -> None:
    history, tasks = run_order_workflow()
    events = [json.loads(e) for e in history]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e["kind"] for e in events] == [
        "task_started",
        "workflow_started",
        "activity_scheduled",
        "task_started",
        "activity_completed",
        "workflow_completed",
    ]
    assert history[2] == (
        b'{"seq":3,"kind":"activity_scheduled","id":1,"name":"charge",'
        b'"input":["o-1",100],"options":{"start_to_close":30}}'
    )
    activity, complete = tasks
    assert (activity.kind, activity.id, activity.name) == ("activity", 1, "charge")
    assert (activity.payload, activity.options) == (b'["o-1",100]', b'{"start_to_close":30}')
    assert (complete.kind, complete.payload, complete.options) == ("complete", b'"receipt-7"', None)


def test_full_replay_writes_nothing() -> None:
    history, _ = run_order_workflow()
    r = _core.Reducer()
    r.load_history(history)
    assert r.history_length == 6
    a = r.next_activation()
    assert a is not None and a.replaying and r.replaying
    assert [j.kind for j in a.jobs] == ["workflow_started"]
    assert r.schedule_activity("charge", b"[]", b"{}") == 1
    r.finish_activation()
    assert not r.replaying
    a = r.next_activation()
    assert a is not None and a.replaying
    r.complete(b"null")  # payloads are not compared on replay
    r.finish_activation()
    assert r.next_activation() is None
    assert r.finished
    assert r.take_new_events() == []
    assert r.take_commands() == []


def test_changed_activity_name_is_nondeterminism() -> None:
    history, _ = run_order_workflow()
    r = _core.Reducer()
    r.load_history(history)
    assert r.next_activation() is not None
    with pytest.raises(_core.NondeterminismError) as caught:
        r.schedule_activity("refund", b"[]", b"{}")
    error = caught.value
    assert (error.seq, error.expected, error.got) == (
        3,
        "activity_scheduled 'charge'",
        "schedule_activity 'refund'",
    )
    assert str(error) == (
        "history event #3 is activity_scheduled 'charge' but the workflow code issued "
        "schedule_activity 'refund'"
    )
    # The failed call changed nothing: the right code can carry on.
    assert r.schedule_activity("charge", b"[]", b"{}") == 1
    r.finish_activation()


def test_missing_command_is_nondeterminism() -> None:
    history, _ = run_order_workflow()
    r = _core.Reducer()
    r.load_history(history)
    r.next_activation()
    with pytest.raises(_core.NondeterminismError) as caught:
        r.finish_activation()
    assert (caught.value.seq, caught.value.got) == (3, "no further command")


def test_corrupt_event_bytes() -> None:
    history, _ = run_order_workflow()
    r = _core.Reducer()
    with pytest.raises(_core.HistoryCorruptError) as caught:
        r.load_history([*history[:3], history[3][:-5], *history[4:]])
    assert caught.value.seq == 4
    assert "#4" in str(caught.value)
    with pytest.raises(_core.HistoryCorruptError) as caught:
        r.load_history([history[0], b"\xff\xfe not json"])
    assert caught.value.seq == 2
    # Nothing was loaded by the failed calls.
    assert r.history_length == 0
    r.load_history(history)
    assert r.history_length == 6


def test_engine_bugs() -> None:
    r = _core.Reducer()
    with pytest.raises(_core.EngineBugError):
        r.start_timer(5)
    with pytest.raises(_core.EngineBugError):
        r.finish_activation()
    r.add_new_batch(1, [STARTED])
    r.next_activation()
    with pytest.raises(_core.EngineBugError):
        r.side_effect(None)
    with pytest.raises(_core.EngineBugError):
        r.schedule_activity("a", b"not json", b"{}")
    r.complete(b"1")
    with pytest.raises(_core.EngineBugError):
        r.start_timer(5)


def test_value_classes_are_frozen_and_named() -> None:
    history, tasks = run_order_workflow()
    r = _core.Reducer()
    r.load_history(history)
    a = r.next_activation()
    assert a is not None
    for obj, attr in ((a, "time"), (a.jobs[0], "payload"), (tasks[0], "name")):
        with pytest.raises(AttributeError):
            setattr(obj, attr, None)
    for cls in (_core.Job, _core.Activation, _core.Command, _core.Reducer, _core.EngineBugError):
        assert cls.__module__ == "ostinato._core"
    assert isinstance(_core.__version__, str) and _core.__version__
    assert "activity_completed" not in repr(a)  # repr is short and does not raise


def test_patched_side_effect_and_signals() -> None:
    r = _core.Reducer()
    r.add_new_batch(1, [STARTED])
    r.next_activation()
    assert r.patched("fix-1") is True
    assert r.side_effect(b" 0.5 ") == (2, b"0.5")
    assert r.start_child("child", b"[]", b'{"instance_id":"c-1"}') == 3
    assert r.signal_external("ping", b"1", b'{"instance_id":"other"}') == 4
    r.finish_activation()
    history = r.take_new_events()
    r.add_new_batch(
        2,
        [
            b'{"kind":"signal_external_completed","id":4,"failure":null}',
            b'{"kind":"signal_received","name":"go","payload":{"n":1}}',
            b'{"kind":"cancel_requested","reason":"user asked"}',
        ],
    )
    a = r.next_activation()
    assert a is not None
    sent, signal, cancel = a.jobs
    assert (sent.kind, sent.id, sent.payload) == ("signal_external_completed", 4, None)
    assert (signal.name, signal.payload) == ("go", b'{"n":1}')
    assert (cancel.kind, cancel.name, cancel.payload) == (
        "cancel_requested",
        "user asked",
        b'"user asked"',
    )
    r.cancel()
    r.finish_activation()
    history += r.take_new_events()
    kinds = [t.kind for t in r.take_commands()]
    assert kinds == ["start_child", "signal_external", "cancel_child", "canceled"]

    replay = _core.Reducer()
    replay.load_history(history)
    replay.next_activation()
    assert replay.patched("fix-1") is True
    assert replay.side_effect(None) == (2, b"0.5")
    replay.start_child("child", b"[]", b"{}")
    replay.signal_external("ping", b"1", b"{}")
    replay.finish_activation()
    replay.next_activation()
    replay.cancel()
    replay.finish_activation()
    assert replay.take_new_events() == []


# --------------------------------------------------------------------------------------------
# Property: a random command script run incrementally, then replayed, sees and does the same.

OPS = st.one_of(
    st.tuples(st.just("activity"), st.integers(0, 3)),
    st.tuples(st.just("timer"), st.integers(0, 3)),
    st.tuples(st.just("side_effect"), st.integers(0, 3)),
    st.tuples(st.just("patched"), st.integers(0, 2)),
    st.tuples(st.just("child"), st.integers(0, 2)),
    st.tuples(st.just("signal"), st.integers(0, 2)),
    st.tuples(st.just("cancel_last"), st.just(0)),
    st.tuples(st.just("await"), st.just(0)),
)


@dataclass
class Driver:
    """Workflow code that follows a script, blocking at each ``await``."""

    script: list[tuple[str, int]]
    pc: int = 0
    open: list[tuple[int, str]] = field(default_factory=list)
    log: list[object] = field(default_factory=list)

    def activate(self, r: _core.Reducer, a: _core.Activation) -> None:
        self.log.append(("activation", a.time))
        for job in a.jobs:
            self.log.append((job.kind, job.seq, job.id, job.name, job.payload, job.attempt))
            self.open = [(i, k) for i, k in self.open if i != job.id]
        while True:
            if self.pc == len(self.script):
                r.complete(b'"done"')
                self.log.append("complete")
                return
            op, n = self.script[self.pc]
            self.pc += 1
            if op == "await":
                return
            if op == "activity":
                id = r.schedule_activity(f"act-{n}", b"[]", b"{}")
                self.open.append((id, "activity"))
            elif op == "timer":
                id = r.start_timer(n * 1_000)
                self.open.append((id, "timer"))
            elif op == "side_effect":
                id, value = r.side_effect(None if r.replaying else str(n).encode())
                self.log.append(value)
            elif op == "patched":
                id = int(r.patched(f"p{n}"))
            elif op == "child":
                id = r.start_child(f"child-{n}", b"[]", f'{{"instance_id":"c{n}"}}'.encode())
                self.open.append((id, "child"))
            elif op == "signal":
                id = r.signal_external(f"sig-{n}", b"1", b"{}")
            else:  # cancel_last
                if not self.open:
                    continue
                id, kind = self.open.pop()
                {"activity": r.cancel_activity, "timer": r.cancel_timer, "child": r.cancel_child}[
                    kind
                ](id)
            self.log.append((op, id))


def outcome(task: _core.Command, rnd: random.Random) -> bytes | None:
    ok = rnd.random() < 0.7
    if task.kind == "activity":
        if ok:
            return completed(task.id, str(rnd.randrange(100)))
        return f'{{"kind":"activity_failed","id":{task.id},"failure":{{}},"attempt":2}}'.encode()
    if task.kind == "timer":
        return f'{{"kind":"timer_fired","id":{task.id}}}'.encode()
    if task.kind == "start_child":
        return f'{{"kind":"child_completed","id":{task.id},"result":1}}'.encode()
    if task.kind == "signal_external":
        failure = "null" if ok else '{"type":"NotFound"}'
        return f'{{"kind":"signal_external_completed","id":{task.id},"failure":{failure}}}'.encode()
    return None


@settings(max_examples=60, deadline=None)
@given(script=st.lists(OPS, max_size=25), seed=st.integers(0, 2**32))
def test_incremental_run_and_replay_agree(script: list[tuple[str, int]], seed: int) -> None:
    rnd = random.Random(seed)
    r = _core.Reducer()
    live = Driver(script)
    history: list[bytes] = []
    pending: list[_core.Command] = []
    inbox = [STARTED]
    time = 0
    while not r.finished:
        time += 1 + rnd.randrange(1_000)
        r.add_new_batch(time, inbox)
        a = r.next_activation()
        assert a is not None
        live.activate(r, a)
        r.finish_activation()
        history += r.take_new_events()
        for task in r.take_commands():
            if task.kind.startswith("cancel_"):
                pending = [t for t in pending if t.id != task.id]
            else:
                pending.append(task)
        rnd.shuffle(pending)
        cut = rnd.randrange(len(pending) + 1)
        inbox = [e for e in (outcome(t, rnd) for t in pending[:cut]) if e is not None]
        pending = pending[cut:]
        if not inbox:
            inbox = [b'{"kind":"signal_received","name":"tick","payload":null}']

    assert [json.loads(e)["seq"] for e in history] == list(range(1, len(history) + 1))
    replayed = _core.Reducer()
    replayed.load_history(history)
    again = Driver(script)
    while (a := replayed.next_activation()) is not None:
        assert a.replaying
        again.activate(replayed, a)
        replayed.finish_activation()
    assert again.log == live.log
    assert replayed.finished
    assert replayed.take_new_events() == []
    assert replayed.take_commands() == []
    assert replayed.history_length == len(history)


def test_view_history_says_what_the_run_waits_for() -> None:
    r = _core.Reducer()
    r.add_new_batch(5, [STARTED])
    r.next_activation()
    r.schedule_activity("charge", b"[]", b"{}")
    r.start_timer(1_000)
    r.start_child("kid", b"[]", b'{"instance_id":"k-1"}')
    r.finish_activation()
    history = r.take_new_events()
    view = _core.view_history(history)
    assert view.pending_activities == [(1, "charge")]
    assert view.pending_timers == [(2, 1_000)]
    assert view.pending_children == [(3, "kid", b'{"instance_id":"k-1"}')]
    assert (view.batches, view.corrupt_seq) == (1, None)
    # A corrupt event ends the view; it never raises.
    damaged = _core.view_history([*history[:3], b"{}", *history[4:]])
    assert damaged.corrupt_seq == 4
    assert damaged.pending_activities == [(1, "charge")]
    assert damaged.pending_timers == []
