"""Queue limits (docs/queues.md): bad input refused before anything is stored, limits stored
and cleared through the client on every backend, enforced for workers of one process on every
backend, and, on PostgreSQL and a shared SQLite file, for several worker processes at once:
the attempts in flight never exceed ``max_concurrent`` and the starts per window never exceed
the rate limit (within the stated tolerance)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import ostinato
import pytest
from ostinato import QueueLimits, activity, workflow

APP = Path(__file__).with_name("queue_app.py")


# ---- the client's checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"max_concurrent": 0}, ValueError, "max_concurrent must be between 1"),
        ({"max_concurrent": -3}, ValueError, "max_concurrent must be between 1"),
        ({"max_concurrent": 2.5}, TypeError, "max_concurrent must be an int"),
        ({"max_concurrent": True}, TypeError, "max_concurrent must be an int"),
        ({"max_concurrent": "5"}, TypeError, "max_concurrent must be an int"),
        ({"rate_limit": 50}, TypeError, r"rate_limit must be a \(count, period\) tuple"),
        ({"rate_limit": (50,)}, TypeError, r"rate_limit must be a \(count, period\) tuple"),
        ({"rate_limit": (0, 1)}, ValueError, "rate_limit count must be between 1"),
        ({"rate_limit": (1.5, 1)}, TypeError, "rate_limit count must be an int"),
        ({"rate_limit": (5, 0)}, ValueError, "rate_limit period must be more than 0"),
        ({"rate_limit": (5, timedelta(0))}, ValueError, "rate_limit period must be more than 0"),
        ({"rate_limit": (5, -1)}, ValueError, "rate_limit period must be >= 0"),
        ({"rate_limit": (5, "1s")}, TypeError, "rate_limit period must be seconds"),
        ({"rate_limit": (5, float("nan"))}, ValueError, "rate_limit period must be a finite"),
        ({"max_concurrent_per_key": 0}, ValueError, "max_concurrent_per_key must be between"),
        ({"max_concurrent_per_key": 1.0}, TypeError, "max_concurrent_per_key must be an int"),
    ],
)
async def test_bad_limits_are_refused_and_nothing_is_stored(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    await client.set_queue_limits("pay", max_concurrent=4)
    with pytest.raises(error, match=match):
        await client.set_queue_limits("pay", **options)
    assert await client.get_queue_limits("pay") == QueueLimits(max_concurrent=4)


@pytest.mark.parametrize(
    ("queue", "error"), [(5, TypeError), ("", ValueError), ("a\x00b", ValueError)]
)
async def test_bad_queue_names_are_refused(queue: Any, error: type[Exception]) -> None:
    client = ostinato.Client(ostinato.connect("memory://"))
    with pytest.raises(error, match="queue"):
        await client.set_queue_limits(queue, max_concurrent=1)
    with pytest.raises(error, match="queue"):
        await client.get_queue_limits(queue)


async def test_limits_are_stored_replaced_and_cleared(backend_url: str) -> None:
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    try:
        assert await client.get_queue_limits("pay") is None
        await client.set_queue_limits("pay", 5, (50, timedelta(seconds=1)))
        assert await client.get_queue_limits("pay") == QueueLimits(5, 50, 1.0)
        await client.set_queue_limits("pay", rate_limit=(10, timedelta(minutes=1)))
        assert await client.get_queue_limits("pay") == QueueLimits(None, 10, 60.0)
        await client.clear_queue_limits("pay")
        assert await client.get_queue_limits("pay") is None
        await client.set_queue_limits("pay", max_concurrent_per_key=2)
        assert await client.get_queue_limits("pay") == QueueLimits(max_concurrent_per_key=2)
        await client.set_queue_limits("pay", max_concurrent=1)
        await client.set_queue_limits("pay")  # no limit given: none left
        assert await client.get_queue_limits("pay") is None
    finally:
        await backend.close()


# ---- enforced for the workers of one process ------------------------------------------------

_in_flight = 0
_spans: list[tuple[float, float]] = []


@activity.defn
async def charge(i: int) -> int:
    global _in_flight
    started = time.monotonic()
    _in_flight += 1
    try:
        await asyncio.sleep(0.02)
    finally:
        _in_flight -= 1
        _spans.append((started, time.monotonic()))
    return i


@workflow.defn
async def charge_all(count: int) -> int:
    results = await asyncio.gather(
        *(workflow.execute_activity(charge, i, queue="pay") for i in range(count))
    )
    return sum(results)


def most_in_flight(spans: list[tuple[float, float]]) -> int:
    """The largest number of spans open at one instant (an end before a start at a tie)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def most_starts_in(spans: list[tuple[float, float]], window: float) -> int:
    """The largest number of span starts within any half-open window of ``window`` seconds."""
    starts = sorted(s for s, _ in spans)
    most = 0
    for i, first in enumerate(starts):
        most = max(most, sum(1 for s in starts[i:] if s < first + window))
    return most


async def test_max_concurrent_holds_for_two_workers(backend_url: str) -> None:
    _spans.clear()
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    await client.set_queue_limits("pay", max_concurrent=3)
    workers = [
        ostinato.Worker(
            backend,
            workflows=[charge_all],
            activities=[charge],
            queues=("default", "pay"),
            max_concurrent_activities=10,
        )
        for _ in range(2)
    ]
    try:
        async with workers[0], workers[1]:
            handle = await client.start_workflow(charge_all, 24)
            assert await handle.result(timeout=60) == sum(range(24))
    finally:
        await backend.close()
    assert len(_spans) == 24
    # Never more than 3, and the limit was reached (the workers had 20 slots together).
    assert most_in_flight(_spans) == 3


async def test_rate_limit_holds_for_a_worker(backend_url: str) -> None:
    _spans.clear()
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    await client.set_queue_limits("pay", rate_limit=(5, timedelta(seconds=0.5)))
    worker = ostinato.Worker(
        backend,
        workflows=[charge_all],
        activities=[charge],
        queues=("default", "pay"),
        max_concurrent_activities=20,
    )
    began = time.monotonic()
    try:
        async with worker:
            handle = await client.start_workflow(charge_all, 15)
            assert await handle.result(timeout=60) == sum(range(15))
    finally:
        await backend.close()
    elapsed = time.monotonic() - began
    assert len(_spans) == 15
    # 15 starts at 5 per 0.5 s: the last five no sooner than 1 s after the first five.
    assert elapsed >= 1.0
    # Measured at the activity body, a start lags its claim a little: 50 ms of tolerance.
    assert most_starts_in(_spans, 0.5 - 0.05) <= 5


_by_key: dict[str, int] = {}
_most_by_key: dict[str, int] = {}


@activity.defn
async def call_customer(customer: str, i: int) -> int:
    _by_key[customer] = _by_key.get(customer, 0) + 1
    _most_by_key[customer] = max(_most_by_key.get(customer, 0), _by_key[customer])
    try:
        await asyncio.sleep(0.02)
    finally:
        _by_key[customer] -= 1
    return i


@workflow.defn
async def call_customers(customers: list[str], each: int) -> int:
    results = await asyncio.gather(
        *(
            workflow.execute_activity(call_customer, c, i, queue="pay", concurrency_key=c)
            for c in customers
            for i in range(each)
        )
    )
    return sum(results)


async def test_max_concurrent_per_key_holds_for_each_key(backend_url: str) -> None:
    _most_by_key.clear()
    backend = ostinato.connect(backend_url)
    client = ostinato.Client(backend)
    await client.set_queue_limits("pay", max_concurrent_per_key=2)
    worker = ostinato.Worker(
        backend,
        workflows=[call_customers],
        activities=[call_customer],
        queues=("default", "pay"),
        max_concurrent_activities=20,
    )
    try:
        async with worker:
            handle = await client.start_workflow(call_customers, ["ada", "bob", "cy"], 6)
            assert await handle.result(timeout=60) == 3 * sum(range(6))
    finally:
        await backend.close()
    # Each customer at most 2 at once, and reached it; the customers ran side by side.
    assert _most_by_key == {"ada": 2, "bob": 2, "cy": 2}


@workflow.defn
async def bad_key(key: object) -> str:
    try:
        await workflow.execute_activity(call_customer, "x", 1, concurrency_key=key)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "scheduled"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (42, "TypeError: start_activity() concurrency_key must be a string"),
        ("", "ValueError: start_activity() concurrency_key must not be empty"),
    ],
)
async def test_a_bad_concurrency_key_is_refused_where_the_activity_is_scheduled(
    key: object, expected: str
) -> None:
    backend = ostinato.connect("memory://")
    client = ostinato.Client(backend)
    async with ostinato.Worker(backend, workflows=[bad_key], activities=[call_customer]):
        handle = await client.start_workflow(bad_key, key)
        assert (await handle.result(timeout=30)).startswith(expected)
        history = await handle.history()
    assert not [e for e in history if e["kind"] == "activity_scheduled"]


async def test_a_concurrency_key_replays(tmp_path: Path) -> None:
    backend = ostinato.connect(f"sqlite:///{tmp_path / 'k.db'}")
    client = ostinato.Client(backend)
    await client.set_queue_limits("pay", max_concurrent_per_key=1)
    async with ostinato.Worker(
        backend, workflows=[call_customers], activities=[call_customer], queues=("default", "pay")
    ):
        handle = await client.start_workflow(call_customers, ["ada"], 2)
        assert await handle.result(timeout=30) == 1
        history = await handle.history()
    await backend.close()
    from ostinato.testing import replay

    replay(call_customers, history)


# ---- enforced across processes --------------------------------------------------------------


def spawn(url: str, logdir: Path, name: str) -> subprocess.Popen[bytes]:
    with open(logdir / f"{name}.err", "wb") as err:
        return subprocess.Popen(
            [sys.executable, str(APP), url, str(logdir), name],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


@contextlib.asynccontextmanager
async def worker_processes(url: str, logdir: Path, count: int) -> AsyncIterator[None]:
    procs = [spawn(url, logdir, f"w{n}") for n in range(count)]
    try:
        deadline = time.monotonic() + 60
        for n, proc in enumerate(procs):
            while not (logdir / f"w{n}.ready").exists():
                assert proc.poll() is None, (logdir / f"w{n}.err").read_text()
                assert time.monotonic() < deadline, f"worker w{n} not ready"
                await asyncio.sleep(0.02)
        yield
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for n, proc in enumerate(procs):
            assert await asyncio.to_thread(proc.wait, 30) == 0, (logdir / f"w{n}.err").read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def spans_of(logdir: Path) -> list[tuple[float, float]]:
    spans = []
    for path in logdir.glob("*.spans"):
        for line in path.read_text().splitlines():
            start, end = line.split()
            spans.append((float(start), float(end)))
    return spans


async def run_processes(
    url: str, logdir: Path, count: int, **limits: Any
) -> tuple[list[tuple[float, float]], float]:
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)
    try:
        await client.set_queue_limits("payments", **limits)
        async with worker_processes(url, logdir, 3):
            began = time.monotonic()
            handle = await client.start_workflow("pay_all", count)
            assert await handle.result(timeout=120) == sum(range(count))
            elapsed = time.monotonic() - began
    finally:
        await backend.close()
    spans = spans_of(logdir)
    assert len(spans) == count
    busy = [p.stem for p in logdir.glob("*.spans") if p.stat().st_size]
    assert len(busy) >= 2, f"only {busy} ran activities: the limit was not shared"
    return spans, elapsed


CROSS_PROCESS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("sqlite"),
]


def url_of(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.mark.parametrize("kind", CROSS_PROCESS)
async def test_max_concurrent_holds_across_processes(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = url_of(kind, request, tmp_path)
    spans, _ = await run_processes(url, tmp_path, 60, max_concurrent=4)
    most = most_in_flight(spans)
    print(f"\n60 attempts on 3 processes (30 slots), max_concurrent=4: at most {most} in flight")
    assert most == 4


@pytest.mark.parametrize("kind", CROSS_PROCESS)
async def test_rate_limit_holds_across_processes(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = url_of(kind, request, tmp_path)
    spans, elapsed = await run_processes(url, tmp_path, 40, rate_limit=(10, timedelta(seconds=0.5)))
    most = most_starts_in(spans, 0.5 - 0.05)
    print(f"\n40 attempts on 3 processes at 10 per 0.5 s: {elapsed:.2f}s, {most} in 0.45 s")
    assert elapsed >= 1.5  # four windows' worth of starts: at least three windows apart
    assert most <= 10
