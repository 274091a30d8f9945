"""The worker under faults (issue 10): the close status comes from what closed the run, the
worker's lifecycle (shutdown at once, the caller's cancellation), KeyboardInterrupt/SystemExit
in workflow code, poison commits, and a workflow result that cannot be serialized.

Workflow tests run on each backend, with the sticky cache and with ``workflow_cache_size=0``
(every task replays the full history), and replay every finished history.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import orjson
import ostinato
import pytest
from e2e_support import Harness, harness
from ostinato import ApplicationError, activity, workflow
from ostinato.testing import replay

T = TypeVar("T")


@pytest.fixture(params=[1000, 0], ids=["sticky", "replay"])
def cache_size(request: pytest.FixtureRequest) -> int:
    return int(request.param)


async def wait_for_description(handle: Any, check: Any, what: str) -> Any:
    """Poll describe() until ``check(description)`` holds (bounded by the test timeout)."""
    for _ in range(1000):
        desc = await handle.describe()
        if check(desc):
            return desc
        await asyncio.sleep(0.02)
    raise AssertionError(f"never saw {what}; last: {desc}")


# ---- item 3: the close status --------------------------------------------------------------


@workflow.defn(name="wk.pretends_to_time_out")
async def pretends_to_time_out() -> None:
    raise ApplicationError("not really", type="WorkflowTimedOutError")


@workflow.defn(name="wk.sleeps_long")
async def sleeps_long() -> None:
    await workflow.sleep(3600)


async def test_close_status_comes_from_what_closed_the_run(
    backend_url: str, cache_size: int
) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([pretends_to_time_out, sleeps_long]):
        handle = await h.client.start_workflow(pretends_to_time_out)
        with pytest.raises(ostinato.WorkflowFailedError) as failed:
            await handle.result(timeout=20)
        assert not isinstance(failed.value, ostinato.WorkflowTimedOutError)
        assert (await handle.describe()).status == "failed"
        replay(pretends_to_time_out, await handle.history())

        timed = await h.client.start_workflow(sleeps_long, execution_timeout=0.2)
        with pytest.raises(ostinato.WorkflowTimedOutError):
            await timed.result(timeout=20)
        assert (await timed.describe()).status == "timed_out"


# ---- item 7: the worker's lifecycle --------------------------------------------------------


@workflow.defn(name="wk.noop")
async def noop() -> str:
    return "ok"


async def finishes(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` without cancelling it: fail if it has not finished after a long while
    (a hang detector; the worker stops within milliseconds)."""
    task = asyncio.create_task(coro)
    done, _ = await asyncio.wait({task}, timeout=15)
    if not done:
        task.cancel()
        raise AssertionError("leaving `async with Worker(...)` hung")
    return task.result()


async def test_worker_block_that_returns_or_raises_at_once_does_not_hang(
    backend_url: str,
) -> None:
    backend = ostinato.connect(backend_url)
    await backend.open()
    try:

        async def returns_at_once() -> str:
            async with ostinato.Worker(backend, workflows=[noop]):
                pass
            return "left"

        async def raises_at_once() -> None:
            async with ostinato.Worker(backend, workflows=[noop]):
                raise KeyError("boom")

        assert await finishes(returns_at_once()) == "left"
        with pytest.raises(KeyError):
            await finishes(raises_at_once())
        worker = ostinato.Worker(backend, workflows=[noop])
        await worker.shutdown()  # never started: nothing to wait for
        # A worker can be run again after it was shut down.
        async with ostinato.Worker(backend, workflows=[noop], poll_interval=0.05):
            handle = await ostinato.Client(backend).start_workflow(noop)
            assert await handle.result(timeout=20) == "ok"
    finally:
        await backend.close()


STARTED: dict[str, asyncio.Event] = {}


@activity.defn(name="wk.busy")
async def busy(key: str) -> str:
    STARTED[key].set()
    await asyncio.sleep(60)
    return "done"


@workflow.defn(name="wk.waits_for_busy")
async def waits_for_busy(key: str) -> str:
    return await workflow.execute_activity(busy, key)


async def test_shutdown_propagates_the_callers_cancellation(backend_url: str) -> None:
    key = f"cancel-{backend_url.split(':')[0]}"
    STARTED[key] = asyncio.Event()
    async with harness(backend_url, 1000) as h:

        async def main() -> str:
            async with h.worker([waits_for_busy], [busy], graceful_shutdown_timeout=60):
                await h.client.start_workflow(waits_for_busy, key, id=key)
                await STARTED[key].wait()
            # Leaving the block waits for the running activity (graceful shutdown) ...
            return "returned normally"

        # ... and the caller's cancellation (wait_for's timeout) interrupts that wait.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(main(), 1)
        # The activity was given back, not lost: another worker finishes it.
        STARTED[key] = asyncio.Event()
        async with h.worker([waits_for_busy], [busy], graceful_shutdown_timeout=0.1):
            await STARTED[key].wait()
        handle = h.client.get_handle(key)
        assert (await handle.describe()).status == "running"


# ---- item 8: KeyboardInterrupt / SystemExit in workflow code -------------------------------


@workflow.defn(name="wk.exits")
async def exits() -> None:
    await workflow.sleep(0.01)
    sys.exit(3)


async def test_system_exit_in_workflow_code_blocks_the_run_not_the_worker(
    backend_url: str, cache_size: int
) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([exits, noop]):
        handle = await h.client.start_workflow(exits)
        desc = await wait_for_description(
            handle, lambda d: d.blocked_reason is not None, "the blocked reason"
        )
        assert desc.status == "running"
        assert desc.blocked_reason.startswith("workflow code raised SystemExit(3)")
        # The worker is alive and serves other runs.
        assert await (await h.client.start_workflow(noop)).result(timeout=20) == "ok"


KEYBOARD_INTERRUPT_APP = textwrap.dedent(
    """
    import asyncio, sys
    import ostinato
    from ostinato import workflow

    @workflow.defn(name="wk.interrupts")
    async def interrupts() -> None:
        await workflow.sleep(0.01)
        raise KeyboardInterrupt

    async def main(url: str) -> None:
        backend = ostinato.connect(url)
        async with ostinato.Worker(backend, workflows=[interrupts], poll_interval=0.05):
            handle = await ostinato.Client(backend).start_workflow(interrupts, id="ki")
            for _ in range(1000):
                desc = await handle.describe()
                if desc.blocked_reason:
                    print("BLOCKED:", desc.status, desc.blocked_reason, flush=True)
                    return
                await asyncio.sleep(0.02)

    asyncio.run(main(sys.argv[1]))
    print("ALIVE", flush=True)
    """
)


def test_keyboard_interrupt_in_workflow_code_does_not_kill_the_worker_process(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text(KEYBOARD_INTERRUPT_APP)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, str(app), f"sqlite:///{tmp_path}/ki.db"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "BLOCKED: running workflow code raised KeyboardInterrupt" in done.stdout
    assert done.stdout.rstrip().endswith("ALIVE")


# ---- item 9: poison commits ----------------------------------------------------------------


@workflow.defn(name="wk.bad_names")
async def bad_names() -> list[str]:
    attempts = [
        lambda: workflow.set_var("lone \ud800 surrogate", 1),
        lambda: workflow.set_var(42, 1),  # type: ignore[arg-type]
        lambda: workflow.start_activity("wk.any", queue="q\x00"),
        lambda: workflow.start_activity("wk.any", queue=7),  # type: ignore[arg-type]
        lambda: workflow.start_activity("wk.\udcff"),
        lambda: workflow.start_child("wk.noop", id="child\x00id"),
        lambda: workflow.start_child("wk.noop", id=b"bytes"),  # type: ignore[arg-type]
        lambda: workflow.start_child("wk.noop", queue="\ud83d"),
        lambda: workflow.signal_channel("\udc80"),
    ]
    errors = []
    for attempt in attempts:
        try:
            attempt()
        except (TypeError, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    for instance_id, name in (("x\x00", "s"), ("x", "\ud800"), (None, "s")):
        try:
            await workflow.signal_external(instance_id, name)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    workflow.set_var("fine \x00 name", "kept")  # NUL is storable in variable names
    return errors


async def test_unstorable_names_fail_at_the_call(backend_url: str, cache_size: int) -> None:
    async with harness(backend_url, cache_size) as h:
        errors = await h.run(bad_names, id="bad-names", timeout=10)
        assert await h.client.get_vars("bad-names") == {"fine \x00 name": "kept"}
    expected = [
        "ValueError: set_var() name is not valid text",
        "TypeError: set_var() name must be a string",
        "ValueError: start_activity() queue must not contain a NUL",
        "TypeError: start_activity() queue must be a string",
        "ValueError: start_activity() activity name is not valid text",
        "ValueError: start_child() id must not contain a NUL",
        "TypeError: start_child() id must be a string",
        "ValueError: start_child() queue is not valid text",
        "ValueError: signal_channel() name is not valid text",
        "ValueError: signal_external() instance_id must not contain a NUL",
        "ValueError: signal_external() name is not valid text",
        "TypeError: signal_external() instance_id must be a string",
    ]
    assert len(errors) == len(expected), errors
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start), (error, start)


@workflow.defn(name="wk.sets_poison")
async def sets_poison() -> str:
    workflow.set_var("poison", 1)
    return "committed"


def refuse_var_writes(h: Harness, refuse: bool) -> None:
    """A store that refuses this commit: a trigger, as a constraint added by a DBA would."""
    if h.url.startswith("sqlite"):
        with sqlite3.connect(h.url[len("sqlite:///") :]) as db:
            if refuse:
                db.execute(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON vars "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
                )
            else:
                db.execute("DROP TRIGGER refuse_poison")
        return
    import psycopg

    with psycopg.connect(h.url, autocommit=True) as conn:
        if refuse:
            conn.execute(
                "CREATE FUNCTION ostinato.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON ostinato.vars "
                "FOR EACH ROW EXECUTE FUNCTION ostinato.refuse_poison()"
            )
        else:
            conn.execute("DROP TRIGGER refuse_poison ON ostinato.vars")
            conn.execute("DROP FUNCTION ostinato.refuse_poison()")


async def test_refused_commit_backs_off_and_shows_why(backend_url: str, cache_size: int) -> None:
    if backend_url.startswith("memory"):
        pytest.skip("the in-memory store has no way to refuse a commit")
    async with harness(backend_url, cache_size) as h:
        refuse_var_writes(h, True)
        async with h.worker([sets_poison]):
            handle = await h.client.start_workflow(sets_poison)
            desc = await wait_for_description(
                handle, lambda d: d.blocked_reason is not None, "the blocked reason"
            )
            assert desc.status == "running"
            assert desc.blocked_reason.startswith("committing the workflow task failed: ")
            assert "refused by the test trigger" in desc.blocked_reason
            refuse_var_writes(h, False)
            assert await handle.result(timeout=30) == "committed"
        replay(sets_poison, await handle.history())


# ---- item 16: a result that cannot be serialized -------------------------------------------


@workflow.defn(name="wk.bad_result")
async def bad_result(kind: str) -> Any:
    if kind == "object":
        return object()
    if kind == "nan":
        return float("nan")
    if kind == "continue_as_new":
        workflow.continue_as_new(object())
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    return deep


@pytest.mark.parametrize("kind", ["object", "nan", "deep", "continue_as_new"])
async def test_unserializable_result_fails_the_run(
    backend_url: str, cache_size: int, kind: str
) -> None:
    async with harness(backend_url, cache_size) as h, h.worker([bad_result]):
        handle = await h.client.start_workflow(bad_result, kind)
        with pytest.raises(ostinato.WorkflowFailedError) as failed:
            await handle.result(timeout=20)
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "PayloadError"
        what = "argument 1 of continue_as_new arguments" if kind == "continue_as_new" else "result"
        assert f"cannot serialize {what} of workflow 'wk.bad_result'" in str(cause)
        desc = await handle.describe()
        assert desc.status == "failed"
        assert desc.failure.startswith(f"PayloadError: cannot serialize {what}")
        replay(bad_result, await handle.history())
        if backend_url.startswith("sqlite") and kind == "object":
            cli = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "ostinato", "describe", backend_url, handle.id, "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
            )
            assert cli.returncode == 0, cli.stderr
            shown = orjson.loads(cli.stdout)
            assert shown["status"] == "failed"
            assert shown["failure"].startswith("PayloadError: cannot serialize result")
