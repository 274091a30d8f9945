"""Bad input and failures: each gets a clear message and loses nothing.

Unknown workflow or activity, wrong arguments, unserializable and oversize payloads, a
corrupt history row, an activity that tries to take its worker down, nondeterministic code
(blocked, then healed by a fixed deploy), blocking calls in workflow code, and the runtime
guard."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import ostinato
import pytest
from e2e_support import harness
from ostinato import ActivityError, ApplicationError, activity, workflow


@activity.defn
async def echo(value: Any) -> Any:
    return value


@activity.defn(name="maybe.missing")
async def missing_activity() -> str:
    return "never registered in these tests"


@workflow.defn
async def calls_missing() -> str:
    try:
        await workflow.execute_activity(missing_activity)
    except ActivityError as err:
        assert isinstance(err.cause, ApplicationError)
        return f"{err.cause.type}: {err.cause.message}"
    return "no error"


@workflow.defn
async def two_args(a: int, b: int) -> int:
    return a + b


@workflow.defn
async def bad_activity_call() -> None:
    await workflow.execute_activity(echo, 1, 2)  # echo takes one argument


class NotJson:
    pass


@activity.defn
async def returns_garbage() -> Any:
    return NotJson()


@workflow.defn
async def garbage_result() -> str:
    try:
        await workflow.execute_activity(returns_garbage)
    except ActivityError as err:
        return str(err.cause)
    return "no error"


async def _nothing_stored(client: ostinato.Client) -> None:
    page, _ = await client.list_workflows()
    assert page == []


async def test_unknown_workflow_fails_clearly(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h, h.worker([two_args]):
        handle = await h.client.start_workflow("no.such.workflow", 1, id="unknown-wf")
        with pytest.raises(ostinato.WorkflowFailedError) as info:
            await handle.result(timeout=10)
    message = str(info.value)
    assert "'no.such.workflow' is not registered" in message and "two_args" in message


async def test_unknown_activity_fails_clearly(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        result = await h.run(calls_missing, activities=[echo])
    assert result.startswith("ActivityNotRegisteredError: activity 'maybe.missing' is not")
    assert "echo" in result


async def test_wrong_argument_count_raises_at_call_site(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        with pytest.raises(TypeError, match=r"two_args' takes 2 arguments .* 3 were given"):
            await h.client.start_workflow(two_args, 1, 2, 3)
        await _nothing_stored(h.client)
        with pytest.raises(ostinato.WorkflowFailedError, match="takes 1 argument"):
            await h.run(bad_activity_call, activities=[echo])


async def test_wrong_argument_types_by_name_fail_the_run(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h, h.worker([two_args]):
        handle = await h.client.start_workflow("two_args", "x", [1])
        with pytest.raises(ostinato.WorkflowFailedError, match="argument 1 of workflow"):
            await handle.result(timeout=10)


async def test_unserializable_values(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        with pytest.raises(ostinato.PayloadError, match="NotJson"):
            await h.client.start_workflow(two_args, NotJson(), 1)
        await _nothing_stored(h.client)
        result = await h.run(garbage_result, activities=[returns_garbage])
        assert "cannot serialize result of activity 'returns_garbage'" in result


async def test_oversize_payload_is_refused(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        client = ostinato.Client(
            h.backend, converter=ostinato.PayloadConverter(max_payload_size=1000)
        )
        with pytest.raises(ostinato.PayloadTooLargeError, match="limit"):
            await client.start_workflow(two_args, "x" * 2000, 1)
        await _nothing_stored(h.client)


async def test_duplicate_id_is_refused(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        await h.client.start_workflow(two_args, 1, 2, id="dup")
        with pytest.raises(ostinato.WorkflowAlreadyStartedError, match="'dup'"):
            await h.client.start_workflow(two_args, 1, 2, id="dup")


@activity.defn
def exits_thread() -> None:
    sys.exit(3)


@activity.defn
async def exits_loop() -> None:
    raise KeyboardInterrupt


@workflow.defn
async def survives_exits() -> list[str]:
    out = []
    for fn in (exits_thread, exits_loop):
        try:
            await workflow.execute_activity(fn, retry=ostinato.RetryPolicy(max_attempts=1))
        except ActivityError as err:
            assert isinstance(err.cause, ApplicationError)
            out.append(err.cause.type)
    return out


async def test_activity_that_kills_its_thread_or_loop(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        result = await h.run(survives_exits, activities=[exits_thread, exits_loop])
    assert result == ["SystemExit", "KeyboardInterrupt"]


async def test_corrupt_history_row_blocks_the_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/corrupt.db"
    async with harness(url, 0) as h:
        wf = _approval_v1
        async with h.worker([wf], [echo]):
            handle = await h.client.start_workflow(wf, id="corrupt")
            await _wait_for(lambda: _history_has(h, "corrupt", "activity_completed"))
        with sqlite3.connect(f"{tmp_path}/corrupt.db") as db:
            db.execute("UPDATE history SET event = ? WHERE seq = 3", (b'{"seq":3,"kind":"bogus"',))
        async with h.worker([wf], [echo]):
            await handle.signal("go", True)
            desc = await _wait_blocked(handle)
        assert "corrupt at event #3" in (desc.blocked_reason or "")
        assert desc.status == "running"
        history = await h.backend.history("corrupt")
        assert len(history) == desc.history_length  # nothing appended, nothing lost


# ---- nondeterminism: blocked, visible, healed by a fixed deploy ---------------------------


@workflow.defn(name="approval")
async def _approval_v1() -> str:
    await workflow.execute_activity(echo, "step 1")
    await workflow.signal_channel("go").receive()
    return str(await workflow.execute_activity(echo, "step 2"))


@activity.defn
async def other(value: Any) -> Any:
    return value


@workflow.defn(name="approval")
async def _approval_v2_incompatible() -> str:
    await workflow.execute_activity(other, "step 1")  # history recorded 'echo' here
    await workflow.signal_channel("go").receive()
    return str(await workflow.execute_activity(echo, "step 2"))


async def _history_has(h: Any, instance_id: str, kind: str) -> bool:
    return any(kind.encode() in e for e in await h.backend.history(instance_id))


async def _wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def _wait_blocked(handle: Any) -> Any:
    deadline = time.monotonic() + 10
    while True:
        desc = await handle.describe()
        if desc.blocked_reason:
            return desc
        assert time.monotonic() < deadline, "run never became blocked"
        await asyncio.sleep(0.02)


async def test_nondeterminism_blocks_then_heals(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        async with h.worker([_approval_v1], [echo, other]):
            handle = await h.client.start_workflow(_approval_v1, id="nd-1")
            await _wait_for(lambda: _history_has(h, "nd-1", "activity_completed"))
        # A deploy with incompatible code: the run stays running, blocked, with the reason.
        async with h.worker([_approval_v2_incompatible], [echo, other]):
            await handle.signal("go", True)
            desc = await _wait_blocked(handle)
        assert desc.status == "running"
        reason = desc.blocked_reason or ""
        assert "NonDeterminismError" in reason and "#3" in reason
        assert "'echo'" in reason and "'other'" in reason
        length = desc.history_length
        assert len(await handle.history()) == length
        # Deploying code that matches the history lets it continue.
        async with h.worker([_approval_v1], [echo, other]):
            assert await handle.result(timeout=20) == "step 2"
        assert (await handle.describe()).blocked_reason is None


async def test_nondeterminism_can_fail_the_run_instead(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h:
        async with h.worker([_approval_v1], [echo, other]):
            handle = await h.client.start_workflow(_approval_v1, id="nd-2")
            await _wait_for(lambda: _history_has(h, "nd-2", "activity_completed"))
        async with h.worker([_approval_v2_incompatible], [echo, other], nondeterminism="fail"):
            await handle.signal("go", True)
            with pytest.raises(ostinato.WorkflowFailedError) as info:
                await handle.result(timeout=20)
        assert "NonDeterminismError" in str(info.value)
        history = await handle.history()
        assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
        assert history[-1]["kind"] == "workflow_failed"


# ---- blocking calls and the runtime guard ----------------------------------------------------


@workflow.defn
async def blocks() -> None:
    time.sleep(0.5)


@workflow.defn
async def opens_file(path: str) -> str:
    with open(path) as f:
        return f.read()


async def test_blocking_call_is_reported_as_deadlock(backend_url: str) -> None:
    async with harness(backend_url, 1000) as h, h.worker([blocks], deadlock_timeout=0.1):
        handle = await h.client.start_workflow(blocks)
        desc = await _wait_blocked(handle)
    reason = desc.blocked_reason or ""
    assert "DeadlockError" in reason and "'blocks'" in reason and "without yielding" in reason


async def test_guard_warns_or_blocks_on_io(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello")
    async with harness("memory://", 1000) as h:
        with caplog.at_level(logging.WARNING, logger="ostinato.guard"):
            assert await h.run(opens_file, str(note)) == "hello"
        assert any("opens_file" in r.getMessage() for r in caplog.records)
        async with h.worker([opens_file], guard="raise"):
            handle = await h.client.start_workflow(opens_file, str(note))
            desc = await _wait_blocked(handle)
        assert "NondeterministicCallError" in (desc.blocked_reason or "")


@workflow.defn(name="approval")
async def _approval_v3_shortened() -> str:
    return "finished early"  # history still holds the activity the old code scheduled


async def test_code_that_finishes_early_is_nondeterminism(backend_url: str) -> None:
    async with harness(backend_url, 0) as h:
        async with h.worker([_approval_v1], [echo]):
            handle = await h.client.start_workflow(_approval_v1, id="nd-short")
            await _wait_for(lambda: _history_has(h, "nd-short", "activity_completed"))
        async with h.worker([_approval_v3_shortened], [echo]):
            await handle.signal("go", True)
            desc = await _wait_blocked(handle)
        reason = desc.blocked_reason or ""
        assert "NonDeterminismError" in reason and "#3" in reason
        assert desc.status == "running"
        async with h.worker([_approval_v1], [echo]):
            assert await handle.result(timeout=20) == "step 2"
