"""Conformance tests of wake-ups: waking waiting workers, sticky runs left to the worker
that has them cached, and the optional time-skipping protocol."""

from __future__ import annotations

import asyncio
import time

import pytest

from ...backends import (
    Backend,
    NewTimer,
    RunStatus,
    TimeSkipping,
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
    run_to_close,
    signal_event,
    start,
)

__all__ = ["WakeUpTests"]


async def sticky_to(b: Backend, instance_id: str, worker: str) -> None:
    """Start ``instance_id`` and commit its first task as kept cached by ``worker``."""
    await start(b, instance_id)
    task = await claim_for(b, instance_id)
    await b.commit_workflow_task(task, full_commit(task, sticky_worker=worker))


class WakeUpTests:
    """Waking waiting workers, sticky runs left to the worker that has them cached, and the
    optional time-skipping protocol (``TimeSkipping``)."""

    # ---- wake-ups ----------------------------------------------------------------------------

    async def test_wait_closed_wakes_on_commit(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            run = await start(b, "w")
            waiter = asyncio.create_task(b.wait_closed("w", run.run_id, 10))
            await asyncio.sleep(0.005)
            assert not waiter.done()
            started = time.monotonic()
            await run_to_close(b, "w")
            info = await asyncio.wait_for(waiter, 5)
            assert info.status is RunStatus.COMPLETED and info.result == b'"done"'
            assert time.monotonic() - started < 1.0
            # Already closed: returns at once.
            assert (await b.wait_closed("w", run.run_id, None)).status is RunStatus.COMPLETED

    async def test_wait_closed_times_out_with_open_info(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            run = await start(b, "open")
            info = await b.wait_closed("open", run.run_id, 0.01)
            assert info.status is RunStatus.RUNNING
            assert (await b.wait_closed("open", run.run_id, 0)).status is RunStatus.RUNNING

    async def test_wait_for_work_wakes_on_new_work(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            waiter = asyncio.create_task(b.wait_for_work("workflow", ["default"], 10))
            await asyncio.sleep(0.005)
            assert not waiter.done()
            await start(b, "ww")
            await asyncio.wait_for(waiter, 1)
            # Work already there: returns at once.
            await asyncio.wait_for(b.wait_for_work("workflow", ["default"], 10), 1)
            task = await claim_one(b)
            activity_waiter = asyncio.create_task(b.wait_for_work("activity", ["default"], 10))
            await asyncio.sleep(0.005)
            assert not activity_waiter.done()
            await b.commit_workflow_task(task, full_commit(task, activities=[activity(1)]))
            await asyncio.wait_for(activity_waiter, 1)
            [act] = await b.claim_activity_tasks(["default"], 30, 1)
            waiter = asyncio.create_task(b.wait_for_work("workflow", ["default"], 10))
            await asyncio.sleep(0.005)
            await b.complete_activity(act, ev("activity_completed", id=1, result=1, attempt=1))
            await asyncio.wait_for(waiter, 1)

    async def test_wait_for_work_times_out(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "other-queue", queue="elsewhere")
            started = time.monotonic()
            await b.wait_for_work("workflow", ["default"], 0.02)
            await b.wait_for_work("activity", ["default"], 0.02)
            assert time.monotonic() - started < 2

    async def test_wait_for_work_wakes_for_a_timer(self, make_backend: BackendFactory) -> None:
        # Real time here: the wait must end when the timer becomes visible.
        async with opened(make_backend, time.time) as b:
            await start(b, "tick")
            task = await claim_one(b)
            fire_at = time.time() + 0.03
            await b.commit_workflow_task(
                task, full_commit(task, timers=[NewTimer(1, fire_at, ev("timer_fired", id=1))])
            )
            await b.wait_for_work("workflow", ["default"], 5)
            assert time.time() >= fire_at - 0.005
            assert time.time() < fire_at + 1

    # ---- sticky runs: the next task is left to the worker that has the run cached ------------

    async def test_sticky_run_is_left_to_its_worker(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await sticky_to(b, "st", "worker-a")
            # No pending work: nobody claims anything.
            assert await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a") == []
            await b.signal("st", signal_event("go"))
            claim_b = b.claim_workflow_tasks
            assert await claim_b(["default"], 30, 10, worker="worker-b", sticky_wait=5) == []
            [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a")
            assert inbox_kinds(task) == ["signal_received"]
            await b.commit_workflow_task(task, full_commit(task, sticky_worker="worker-a"))

            # The owner may be gone: once the work waited sticky_wait, any worker takes it.
            await b.signal("st", signal_event("again"))
            clock.advance(4.9)
            assert await claim_b(["default"], 30, 10, worker="worker-b", sticky_wait=5) == []
            clock.advance(0.1)
            [task] = await claim_b(["default"], 30, 10, worker="worker-b", sticky_wait=5)
            assert inbox_kinds(task) == ["signal_received"]
            # The taker keeps it cached now: the former owner has to wait in its turn.
            await b.commit_workflow_task(task, full_commit(task, sticky_worker="worker-b"))
            await b.signal("st", signal_event("third"))
            assert (
                await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a", sticky_wait=5)
                == []
            )
            # A claim without a worker (no cache, no patience) takes it at once, as before.
            [task] = await b.claim_workflow_tasks(["default"], 30, 10)
            assert task.instance_id == "st"

    async def test_sticky_runs_do_not_hide_other_work(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await start(b, "free")
            await sticky_to(b, "mine", "worker-b")
            await sticky_to(b, "owned", "worker-a")
            await b.signal("owned", signal_event())
            await b.signal("mine", signal_event())
            tasks = await b.claim_workflow_tasks(
                ["default"], 30, 10, worker="worker-b", sticky_wait=5
            )
            assert sorted(t.instance_id for t in tasks) == ["free", "mine"]

    async def test_commit_without_sticky_worker_frees_the_run(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await sticky_to(b, "evicted", "worker-a")
            await b.signal("evicted", signal_event())
            [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a")
            await b.commit_workflow_task(task, full_commit(task))  # not kept cached
            await b.signal("evicted", signal_event())
            [task] = await b.claim_workflow_tasks(
                ["default"], 30, 10, worker="worker-b", sticky_wait=5
            )
            assert task.instance_id == "evicted"

    async def test_failed_or_released_task_frees_the_run(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await sticky_to(b, "failing", "worker-a")
            await b.signal("failing", signal_event())
            [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-a")
            # The worker that failed the task disposed of its copy: the retry goes to anyone.
            await b.fail_workflow_task(task, "boom", clock.now + 1)
            clock.advance(1)
            [task] = await b.claim_workflow_tasks(
                ["default"], 30, 10, worker="worker-b", sticky_wait=5
            )
            await b.commit_workflow_task(task, full_commit(task, sticky_worker="worker-b"))
            await b.signal("failing", signal_event())
            [task] = await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b")
            await b.release_workflow_task(task)
            [task] = await b.claim_workflow_tasks(
                ["default"], 30, 10, worker="worker-a", sticky_wait=5
            )
            assert task.instance_id == "failing"

    async def test_release_sticky_hands_runs_over(
        self, make_backend: BackendFactory, clock: FakeClock
    ) -> None:
        async with opened(make_backend, clock) as b:
            await sticky_to(b, "leaving-1", "worker-a")
            await sticky_to(b, "leaving-2", "worker-a")
            await sticky_to(b, "staying", "worker-c")
            for instance_id in ("leaving-1", "staying"):
                await b.signal(instance_id, signal_event())
            await b.release_sticky("worker-a", ["default"])
            # Also runs with no work pending at the time.
            await b.signal("leaving-2", signal_event())
            tasks = await b.claim_workflow_tasks(
                ["default"], 30, 10, worker="worker-b", sticky_wait=5
            )
            assert sorted(t.instance_id for t in tasks) == ["leaving-1", "leaving-2"]
            # Only the given queues: another queue's runs stay with the worker.
            await b.release_sticky("worker-c", ["elsewhere"])
            assert (
                await b.claim_workflow_tasks(["default"], 30, 10, worker="worker-b", sticky_wait=5)
                == []
            )

    async def test_wait_for_work_waits_out_another_workers_sticky_run(
        self, make_backend: BackendFactory
    ) -> None:
        # Real time: worker-b's wait ends when the run's work has waited sticky_wait, not at once
        # (a busy loop of empty claims) and not only at the timeout.
        async with opened(make_backend, time.time) as b:
            await sticky_to(b, "patience", "worker-a")
            await b.signal("patience", signal_event())
            visible = time.time()
            # The owner finds it at once.
            await asyncio.wait_for(
                b.wait_for_work("workflow", ["default"], 5, worker="worker-a"), 1
            )
            await b.wait_for_work("workflow", ["default"], 5, worker="worker-b", sticky_wait=0.3)
            assert time.time() >= visible + 0.3 - 0.01
            assert time.time() < visible + 3
            [task] = await b.claim_workflow_tasks(
                ["default"], 30, 10, worker="worker-b", sticky_wait=0.3
            )
            assert task.instance_id == "patience"

    # ---- optional capabilities ---------------------------------------------------------------

    async def test_next_visible_time(self, make_backend: BackendFactory, clock: FakeClock) -> None:
        async with opened(make_backend, clock) as b:
            if not isinstance(b, TimeSkipping):
                pytest.skip("backend has no time-skipping support (ostinato.backends.TimeSkipping)")
            next_visible_time = b.next_visible_time
            assert await next_visible_time() is None
            await start(b, "nv", visible_at=T0 + 50)
            assert await next_visible_time() == T0 + 50
            clock.advance(50)
            task = await claim_one(b, lease=30)
            # Its lease running out makes the work claimable again (a worker that vanished
            # holding it): a time-skipping driver must stop there, not at a later timer.
            assert await next_visible_time() == T0 + 80
            await b.commit_workflow_task(
                task,
                full_commit(
                    task,
                    activities=[activity(1)],
                    timers=[NewTimer(1, T0 + 80, ev("timer_fired", id=1))],
                ),
            )
            assert await next_visible_time() == T0 + 80
            [act] = await b.claim_activity_tasks(["default"], 20, 1)
            assert await next_visible_time() == T0 + 70  # the activity's lease
            await b.retry_activity(act, T0 + 60)
            assert await next_visible_time() == T0 + 60
