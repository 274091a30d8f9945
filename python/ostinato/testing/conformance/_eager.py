"""Conformance tests of eager dispatch (``WorkflowCommit.eager``) and continuing locally
(``complete_activity(claim=)``), for backends with ``eager_dispatch``."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ..._backends._queue_limits import QueueLimits, QueueLimitStore
from ..._errors import LeaseLostError
from ...backends import (
    Backend,
    EagerActivities,
    LocalClaim,
    RunClose,
    RunStatus,
    WorkflowTask,
)
from ._support import (
    T0,
    BackendFactory,
    FakeClock,
    activity,
    claim_for,
    claim_one,
    ev,
    full_commit,
    inbox_kinds,
    opened,
    signal_event,
    start,
)

__all__ = ["EagerDispatchTests"]


def _needs_eager(b: Backend) -> None:
    if not b.eager_dispatch:
        pytest.skip(f"{type(b).__name__} has no eager dispatch (Backend.eager_dispatch)")


def _scheduled(*ids: int) -> list[dict[str, object]]:
    return [{"kind": "activity_scheduled", "id": i, "name": "act"} for i in ids]


async def _cached_by(b: Backend, instance_id: str, worker: str, *acts: int) -> WorkflowTask:
    """Commit the run's first task as ``worker`` (which keeps it cached), scheduling
    ``acts`` on the default queue, all leased to it eagerly; returns the committed task."""
    task = await claim_for(b, instance_id)
    commit = full_commit(
        task,
        *_scheduled(*acts),
        activities=[activity(i) for i in acts],
        sticky_worker=worker,
        eager=EagerActivities(tuple(acts), 30.0),
    )
    leased = await b.commit_workflow_task(task, commit)
    assert [t.activity_id for t in leased] == list(acts)
    return task


class EagerDispatchTests:
    """Eager dispatch and continuing locally: the round trips a worker serving both a run and
    its activities saves, with every fence of the normal claims."""

    async def test_a_commit_leases_the_activities_its_worker_asks_for(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            _needs_eager(b)
            run = await start(b, "eager", name="orders")
            task = await claim_one(b)
            clock.advance(1)
            acts = [activity(1), activity(2), activity(3, queue="other")]
            commit = full_commit(
                task, *_scheduled(1, 2, 3), activities=acts, eager=EagerActivities((3, 1), 10.0)
            )
            leased = await b.commit_workflow_task(task, commit)
            assert sorted(t.activity_id for t in leased) == [1, 3]
            for t in leased:
                assert (t.instance_id, t.run_id, t.workflow_name) == ("eager", run.run_id, "orders")
                assert (t.attempt, t.scheduled_at, t.heartbeat_details) == (1, T0 + 1, None)
                assert t.lease_token
            first = next(t for t in leased if t.activity_id == 1)
            assert (first.name, first.queue, first.input) == ("act", "default", acts[0].input)
            # Leased: a claim finds only the activity nobody asked for.
            [claimed] = await b.claim_activity_tasks(["default", "other"], 30, 10)
            assert claimed.activity_id == 2
            states = await b.activity_states("eager", run.run_id)
            assert [(s.activity_id, s.attempt, s.running) for s in states] == [
                (1, 1, True),
                (2, 1, True),
                (3, 1, True),
            ]
            # Fenced like a claimed task: heartbeats and completion with its token only.
            assert await b.heartbeat_activity(first, None, 10) is False
            done = ev("activity_completed", id=1, result=1, attempt=1)
            await b.complete_activity(first, done)
            with pytest.raises(LeaseLostError):
                await b.complete_activity(first, done)
            # A worker that dies holding one: the task comes back when the lease runs out,
            # as the next attempt.
            clock.advance(11)
            [again] = await b.claim_activity_tasks(["other"], 30, 10)
            assert (again.activity_id, again.attempt) == (3, 2)
            lost = next(t for t in leased if t.activity_id == 3)
            with pytest.raises(LeaseLostError):
                await b.complete_activity(lost, ev("activity_completed", id=3, result=3))

    async def test_no_commit_leases_without_asking_and_none_asks_for_others(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            _needs_eager(b)
            await start(b, "plain")
            task = await claim_one(b)
            commit = full_commit(task, *_scheduled(1), activities=[activity(1)])
            assert await b.commit_workflow_task(task, commit) == []
            [claimed] = await b.claim_activity_tasks(["default"], 30, 10)
            assert claimed.attempt == 1
            await start(b, "bad")
            task = await claim_for(b, "bad")
            bad = full_commit(
                task, *_scheduled(1), activities=[activity(1)], eager=EagerActivities((2,), 10)
            )
            with pytest.raises(ValueError, match="eager activity ids"):
                await b.commit_workflow_task(task, bad)
            bad.eager = EagerActivities((1,), 0.0)
            with pytest.raises(ValueError, match="lease_seconds"):
                await b.commit_workflow_task(task, bad)
            assert await b.claim_activity_tasks(["default"], 30, 10) == []  # nothing written

    async def test_limited_queues_and_paused_runs_are_not_leased_eagerly(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            _needs_eager(b)
            if isinstance(b, QueueLimitStore):
                await b.set_queue_limits("limited", QueueLimits(max_concurrent=1))
                await start(b, "lim")
                task = await claim_one(b)
                acts = [activity(1, queue="limited"), activity(2)]
                commit = full_commit(
                    task, *_scheduled(1, 2), activities=acts, eager=EagerActivities((1, 2), 10)
                )
                leased = await b.commit_workflow_task(task, commit)
                assert [t.activity_id for t in leased] == [2]
                [claimed] = await b.claim_activity_tasks(["limited"], 30, 10)
                assert (claimed.activity_id, claimed.attempt) == (1, 1)
            await start(b, "paused")
            task = await claim_for(b, "paused")
            await b.pause("paused")
            commit = full_commit(
                task, *_scheduled(1), activities=[activity(1)], eager=EagerActivities((1,), 10)
            )
            assert await b.commit_workflow_task(task, commit) == []
            assert await b.claim_activity_tasks(["default"], 30, 10) == []
            await b.resume("paused")
            [claimed] = await b.claim_activity_tasks(["default"], 30, 10)
            assert (claimed.instance_id, claimed.attempt) == ("paused", 1)

    async def test_a_sequence_of_activities_needs_no_claim_after_the_first(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            _needs_eager(b)
            await start(b, "chain")
            task = await claim_one(b)
            for step in (1, 2, 3):
                commit = full_commit(
                    task,
                    *_scheduled(step),
                    activities=[activity(step)],
                    sticky_worker="w1",
                    eager=EagerActivities((step,), 30),
                )
                [act] = await b.commit_workflow_task(task, commit)
                done = ev("activity_completed", id=step, result=step, attempt=1)
                follow = await b.complete_activity(act, done, claim=LocalClaim("w1", 30))
                assert follow is not None, f"step {step}: the run was not handed over"
                assert inbox_kinds(follow) == ["activity_completed"]
                task = follow
            close = {"kind": "workflow_completed", "result": None}
            await b.commit_workflow_task(
                task, full_commit(task, close, close=RunClose(RunStatus.COMPLETED, b"3"))
            )
            history = await b.history("chain")
            assert [orjson.loads(e)["kind"] for e in history].count("activity_completed") == 3
            assert (await b.describe("chain")).status is RunStatus.COMPLETED
            assert await b.claim_activity_tasks(["default"], 30, 10) == []

    async def test_continuing_locally_takes_the_run_only_from_nobody(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            _needs_eager(b)
            # Sticky to w1: w1's completion takes the run, with every visible inbox event.
            await start(b, "mine")
            task = await claim_for(b, "mine")
            await b.signal("mine", signal_event("early"))
            commit = full_commit(task, *_scheduled(1), activities=[activity(1)], sticky_worker="w1")
            assert await b.commit_workflow_task(task, commit) == []
            [act] = await b.claim_activity_tasks(["default"], 30, 10)
            done = ev("activity_completed", id=1, result=1, attempt=1)
            follow = await b.complete_activity(act, done, claim=LocalClaim("w1", 30))
            assert follow is not None
            assert (follow.instance_id, follow.run_id) == ("mine", task.run_id)
            assert follow.history_length == len(commit.new_events)
            assert inbox_kinds(follow) == ["signal_received", "activity_completed"]
            assert await b.claim_workflow_tasks(["default"], 30, 10, worker="w1") == []
            await b.commit_workflow_task(follow, full_commit(follow))  # fenced by its lease
            with pytest.raises(LeaseLostError):
                await b.complete_activity(act, done, claim=LocalClaim("w1", 30))

            # Sticky to another worker: the completion is recorded, the run left to it.
            await start(b, "theirs")
            task = await claim_for(b, "theirs")
            commit = full_commit(task, *_scheduled(1), activities=[activity(1)], sticky_worker="w2")
            await b.commit_workflow_task(task, commit)
            [act] = await b.claim_activity_tasks(["default"], 30, 10)
            assert await b.complete_activity(act, done, claim=LocalClaim("w1", 30)) is None
            [theirs] = await b.claim_workflow_tasks(["default"], 30, 10, worker="w2")
            assert inbox_kinds(theirs) == ["activity_completed"]

            # Leased by another task of the run meanwhile: not taken, the event waits.
            await start(b, "busy")
            await _cached_by(b, "busy", "w1", 1, 2)
            states = await b.activity_states("busy", (await b.describe("busy")).run_id)
            assert len(states) == 2
            await b.signal("busy", signal_event("go"))
            [busy] = await b.claim_workflow_tasks(["default"], 60, 10, worker="w1")
            assert busy.instance_id == "busy"
            clock.advance(31)  # the eager leases ran out: the activities are claimed again
            acts = await b.claim_activity_tasks(["default"], 60, 10)
            assert sorted((a.activity_id, a.attempt) for a in acts) == [(1, 2), (2, 2)]
            first = next(a for a in acts if a.activity_id == 1)
            assert await b.complete_activity(first, done, claim=LocalClaim("w1", 30)) is None
            await b.commit_workflow_task(busy, full_commit(busy, sticky_worker="w1"))
            # Paused: not taken either.
            await b.pause("busy")
            second = next(a for a in acts if a.activity_id == 2)
            two = ev("activity_completed", id=2, result=2, attempt=2)
            assert await b.complete_activity(second, two, claim=LocalClaim("w1", 30)) is None
            await b.resume("busy")
            resumed = await claim_for(b, "busy")
            assert inbox_kinds(resumed) == ["activity_completed", "activity_completed"]

    async def test_completions_arriving_together_hand_each_run_over_once(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            _needs_eager(b)
            acts = []
            for name, ids in (("one", (1,)), ("two", (1,)), ("both", (1, 2))):
                await start(b, name)
                task = await claim_for(b, name)
                commit = full_commit(
                    task,
                    *_scheduled(*ids),
                    activities=[activity(i) for i in ids],
                    sticky_worker="w1",
                    eager=EagerActivities(ids, 30),
                )
                acts += await b.commit_workflow_task(task, commit)
            claim = LocalClaim("w1", 30)
            follows = await asyncio.gather(
                *(
                    b.complete_activity(
                        a, ev("activity_completed", id=a.activity_id, result=0), claim=claim
                    )
                    for a in acts
                )
            )
            by_run: dict[str, list[WorkflowTask]] = {}
            for act, follow in zip(acts, follows, strict=True):
                if follow is not None:
                    assert follow.instance_id == act.instance_id
                    by_run.setdefault(follow.instance_id, []).append(follow)
            assert sorted(by_run) == ["both", "one", "two"]
            assert all(len(tasks) == 1 for tasks in by_run.values())
            assert inbox_kinds(by_run["one"][0]) == ["activity_completed"]
            # The run completed twice: its task has one or both events; any other waits.
            [both] = by_run["both"]
            await b.commit_workflow_task(both, full_commit(both, sticky_worker="w1"))
            left = 2 - len(both.inbox)
            if left:
                again = await claim_for(b, "both")
                assert inbox_kinds(again) == ["activity_completed"] * left
