"""Schedules: the spec (cron, every, time zones and DST), the overlap and catch-up rules, and
schedules fired by workers on every backend."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import ostinato
import pytest
from ostinato import workflow
from ostinato._schedules import ScheduleSpec, fire_instance_id
from ostinato._schedules._plan import ScheduleState, next_wakeup, plan
from ostinato.testing import WorkflowEnvironment

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2030, 1, 1, tzinfo=timezone.utc)


@workflow.defn
async def report(region: str) -> str:
    return f"{region}@{workflow.now().isoformat()}"


@workflow.defn
async def long_report(region: str) -> str:
    await workflow.sleep(timedelta(hours=2))
    return region


def ts(*args: int, tz: ZoneInfo | timezone = timezone.utc) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc]


# ---- the spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({}, ValueError, "exactly one of cron= and every="),
        ({"cron": "* * * * *", "every": 60}, ValueError, "exactly one"),
        ({"cron": "61 * * * *"}, ValueError, "invalid cron expression"),
        ({"cron": "* * * *"}, ValueError, "invalid cron expression"),
        ({"cron": "0 0 * * * *"}, ValueError, "five fields"),
        ({"cron": 5}, TypeError, "cron must be a string"),
        ({"every": 0.5}, ValueError, "every must be between 1s"),
        ({"every": timedelta(seconds=-5)}, ValueError, "every must be between"),
        ({"every": "5m"}, TypeError, "every must be a timedelta"),
        ({"every": 60, "timezone": "Mars/Olympus"}, ValueError, "unknown timezone"),
        ({"every": 60, "timezone": "../etc/passwd"}, ValueError, "unknown timezone"),
        ({"every": 60, "overlap": "queue"}, ValueError, "overlap must be one of"),
        ({"every": 60, "catchup_window": -1}, ValueError, "catchup_window"),
        ({"every": 60, "jitter": float("nan")}, ValueError, "jitter"),
    ],
)
def test_bad_specs_are_refused_with_the_argument_named(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ScheduleSpec.build(**options)


def test_every_is_aligned_on_the_epoch() -> None:
    spec = ScheduleSpec.build(every=timedelta(minutes=5))
    after = ts(2030, 1, 1, 10, 2, 30)
    assert list(itertools.islice(spec.fires(after), 3)) == [
        ts(2030, 1, 1, 10, 5),
        ts(2030, 1, 1, 10, 10),
        ts(2030, 1, 1, 10, 15),
    ]
    assert spec.next_fire(ts(2030, 1, 1, 10, 5)) == ts(2030, 1, 1, 10, 10)  # strictly after


def test_cron_fires_in_its_time_zone() -> None:
    spec = ScheduleSpec.build(cron="0 9 * * MON-FRI", timezone="Europe/Paris")
    fires = list(itertools.islice(spec.fires(ts(2030, 1, 4, 12)), 2))  # a Friday
    assert fires == [ts(2030, 1, 7, 9, tz=PARIS), ts(2030, 1, 8, 9, tz=PARIS)]


def _fires_on(spec: ScheduleSpec, day: datetime) -> list[datetime]:
    start, end = day.timestamp(), (day + timedelta(days=1)).timestamp()
    out = []
    for fire in spec.fires(start - 1):
        if fire >= end:
            return out
        out.append(datetime.fromtimestamp(fire, tz=PARIS))
    return out


def test_a_daily_0230_fires_once_on_the_spring_forward_day() -> None:
    # 2030-03-31 in Paris: 02:00 jumps to 03:00, so 02:30 does not exist that day.
    spec = ScheduleSpec.build(cron="30 2 * * *", timezone="Europe/Paris")
    for day in (30, 31, 1):
        month = 4 if day == 1 else 3
        fires = _fires_on(spec, datetime(2030, month, day, tzinfo=PARIS))
        assert len(fires) == 1, (day, fires)
    (shifted,) = _fires_on(spec, datetime(2030, 3, 31, tzinfo=PARIS))
    assert (shifted.hour, shifted.minute) == (3, 0)  # right after the change


def test_a_daily_0230_fires_once_on_the_fall_back_day() -> None:
    # 2030-10-27 in Paris: 03:00 goes back to 02:00, so 02:30 happens twice.
    spec = ScheduleSpec.build(cron="30 2 * * *", timezone="Europe/Paris")
    fires = _fires_on(spec, datetime(2030, 10, 27, tzinfo=PARIS))
    assert len(fires) == 1
    assert fires[0].utcoffset() == timedelta(hours=2)  # the first 02:30 (summer time)


def test_jitter_is_fixed_per_fire_and_within_bounds() -> None:
    spec = ScheduleSpec.build(every=60, jitter=timedelta(seconds=30))
    offsets = [spec.jitter_offset("s", f) for f in itertools.islice(spec.fires(0), 50)]
    assert all(0 <= o < 30 for o in offsets)
    assert len(set(offsets)) > 40  # spread, not constant
    assert offsets == [spec.jitter_offset("s", f) for f in itertools.islice(spec.fires(0), 50)]


def test_fire_ids_name_the_schedule_and_the_fire_time() -> None:
    assert fire_instance_id("nightly", ts(2030, 1, 2, 3, 4, 5)) == "nightly@2030-01-02T03:04:05Z"
    assert fire_instance_id("s", ts(2030, 1, 2) + 0.25) == "s@2030-01-02T00:00:00.250000Z"


# ---- the plan -----------------------------------------------------------------------------

EVERY_MIN = ScheduleSpec.build(every=60, catchup_window=timedelta(minutes=5))
T0 = ts(2030, 1, 1)


def _plan(
    spec: ScheduleSpec, state: ScheduleState, now: float, running_open: bool = False
) -> list[tuple[str, str]]:
    actions = plan("s", spec, state, paused=False, now=now, running_open=running_open)
    return [(a.do, a.instance_id) for a in actions]


def test_a_due_fire_starts_its_run_once() -> None:
    state = ScheduleState(last_fire=T0)
    assert _plan(EVERY_MIN, state, T0 + 60.5) == [("start", fire_instance_id("s", T0 + 60))]
    assert _plan(EVERY_MIN, state, T0 + 61) == []  # the same fire is not planned again
    assert state.started == 1 and state.running == fire_instance_id("s", T0 + 60)
    assert next_wakeup("s", EVERY_MIN, state, paused=False, now=T0 + 61) == T0 + 120


def test_fires_later_than_the_catchup_window_are_missed_and_counted() -> None:
    state = ScheduleState(last_fire=T0)
    # No worker for an hour: 60 fires due, the 5 within the window are caught up, but
    # the default overlap policy (skip) starts only the first and skips the others.
    now = T0 + 3600 + 1
    actions = _plan(EVERY_MIN, state, now)
    assert state.missed == 55
    assert actions == [("start", fire_instance_id("s", T0 + 3600 - 240))]
    assert state.skipped == 4
    assert state.recent[-1][2] == "catchup"


@pytest.mark.parametrize(
    ("overlap", "expected", "buffered", "skipped"),
    [
        ("skip", [], None, 1),
        ("allow_all", [("start", "s@2030-01-01T00:02:00Z")], None, 0),
        ("buffer_one", [], T0 + 120, 0),
        ("cancel_other", [("cancel", "prev")], T0 + 120, 0),
        (
            "terminate_other",
            [("terminate", "prev"), ("start", "s@2030-01-01T00:02:00Z")],
            None,
            0,
        ),
    ],
)
def test_overlap_policies(
    overlap: str, expected: list[tuple[str, str]], buffered: float | None, skipped: int
) -> None:
    spec = ScheduleSpec.build(every=60, overlap=overlap)
    state = ScheduleState(last_fire=T0 + 60, running="prev")
    assert _plan(spec, state, T0 + 120, running_open=True) == expected
    assert (state.buffered, state.skipped) == (buffered, skipped)
    if buffered is not None:
        # The previous run closed: the buffered fire starts, under its own fire time.
        assert _plan(spec, state, T0 + 130, running_open=False) == [
            ("start", "s@2030-01-01T00:02:00Z")
        ]
        assert state.buffered is None and state.recent[-1][2] == "buffered"


def test_buffer_one_keeps_one_fire_and_skips_the_rest() -> None:
    spec = ScheduleSpec.build(every=60, overlap="buffer_one", catchup_window=3600)
    state = ScheduleState(last_fire=T0, running="prev")
    assert _plan(spec, state, T0 + 180, running_open=True) == []
    assert (state.buffered, state.skipped) == (T0 + 60, 2)


def test_a_paused_schedule_plans_nothing_and_wakes_no_one() -> None:
    state = ScheduleState(last_fire=T0)
    assert plan("s", EVERY_MIN, state, paused=True, now=T0 + 600, running_open=False) == []
    assert state.last_fire == T0
    assert next_wakeup("s", EVERY_MIN, state, paused=True, now=T0 + 600) is None


# ---- fired by a worker ----------------------------------------------------------------------


async def test_a_schedule_fires_on_the_virtual_clock(backend_url: str) -> None:
    async with WorkflowEnvironment(
        workflows=[report], backend=backend_url, start_time=START
    ) as env:
        handle = await env.client.create_schedule(
            "nightly", report, "eu", cron="0 2 * * *", timezone="Europe/Paris"
        )
        await env.sleep(timedelta(days=3))
        desc = await handle.describe()
        assert desc.runs_started == 3
        assert [r.instance_id for r in desc.recent_runs] == [
            "nightly@2030-01-01T01:00:00Z",
            "nightly@2030-01-02T01:00:00Z",
            "nightly@2030-01-03T01:00:00Z",
        ]
        assert [r.status for r in desc.recent_runs] == ["completed"] * 3
        assert [r.cause for r in desc.recent_runs] == ["schedule"] * 3
        result = await env.client.get_handle("nightly@2030-01-02T01:00:00Z").result()
        assert result == "eu@2030-01-02T01:00:00+00:00"
        assert desc.next_fires[0] == datetime(2030, 1, 4, 1, tzinfo=timezone.utc)
        assert desc.spec == "cron '0 2 * * *' in Europe/Paris"
        assert (desc.missed_fires, desc.skipped_fires) == (0, 0)


async def test_pause_unpause_trigger_update_delete(backend_url: str) -> None:
    async with WorkflowEnvironment(
        workflows=[report], backend=backend_url, start_time=START
    ) as env:
        client = env.client
        handle = await client.create_schedule("hourly", report, "us", every=timedelta(hours=1))
        await env.sleep(timedelta(hours=1, minutes=30))
        assert (await handle.describe()).runs_started == 1

        await handle.pause("maintenance")
        desc = await handle.describe()
        assert desc.paused and desc.pause_reason == "maintenance" and desc.next_fires == []
        await env.sleep(timedelta(hours=3))
        assert (await handle.describe()).runs_started == 1  # nothing fired while paused

        started = await handle.trigger()  # fires even while paused
        assert started is not None
        assert await started.result() == f"us@{env.now().isoformat()}"

        await handle.unpause()
        await handle.update(every=timedelta(hours=2), args=["apac"])
        await env.sleep(timedelta(hours=2))
        desc = await handle.describe()
        assert not desc.paused and desc.every == timedelta(hours=2)
        assert desc.runs_started == 3
        last = await client.get_handle(desc.recent_runs[-1].instance_id).result()
        assert last.startswith("apac@")
        # Fires during the pause were dropped, not caught up.
        assert desc.missed_fires == 0

        listed = await client.list_schedules()
        assert [s.schedule_id for s in listed] == ["hourly"]
        await handle.delete()
        assert await client.list_schedules() == []
        with pytest.raises(ostinato.ScheduleNotFoundError, match="no schedule with id 'hourly'"):
            await handle.describe()
        with pytest.raises(ostinato.ScheduleNotFoundError):
            await client.get_schedule("hourly")
        # The runs it started are kept.
        assert (await client.list_workflows())[0]


async def test_bad_schedules_store_nothing(backend_url: str) -> None:
    async with WorkflowEnvironment(workflows=[report], backend=backend_url) as env:
        client = env.client
        with pytest.raises(ValueError, match="invalid cron"):
            await client.create_schedule("s", report, "eu", cron="every day")
        with pytest.raises(ValueError, match="unknown timezone"):
            await client.create_schedule("s", report, "eu", every=60, timezone="Nowhere/City")
        with pytest.raises(TypeError, match="report"):
            await client.create_schedule("s", report, every=60)  # missing argument
        with pytest.raises(ValueError, match="must not contain '@'"):
            await client.create_schedule("a@b", report, "eu", every=60)
        assert await client.list_schedules() == []
        await client.create_schedule("s", report, "eu", every=60)
        with pytest.raises(ostinato.ScheduleAlreadyExistsError, match="already exists"):
            await client.create_schedule("s", report, "eu", every=120)
        desc = await (await client.get_schedule("s")).describe()
        assert desc.every == timedelta(seconds=60)


async def test_overlap_skip_and_buffer_one_with_a_long_run(backend_url: str) -> None:
    async with WorkflowEnvironment(
        workflows=[long_report], backend=backend_url, start_time=START
    ) as env:
        skip = await env.client.create_schedule(
            "skip", long_report, "a", every=timedelta(hours=1), overlap="skip"
        )
        buffer = await env.client.create_schedule(
            "buffer", long_report, "b", every=timedelta(hours=1), overlap="buffer_one"
        )
        await env.sleep(timedelta(hours=4, minutes=30))
        s, b = await skip.describe(), await buffer.describe()
        # Each run takes 2 h: under skip, fires at 1 h and 3 h start runs (2 h and 4 h
        # are skipped); under buffer_one the 2 h fire waits and starts at 3 h.
        assert [r.fire_time.hour for r in s.recent_runs] == [1, 3]
        assert s.skipped_fires == 2
        assert [(r.fire_time.hour, r.cause) for r in b.recent_runs][:2] == [
            (1, "schedule"),
            (2, "buffered"),
        ]


async def test_two_drivers_never_start_one_fire_twice(backend_url: str) -> None:
    async with WorkflowEnvironment(
        workflows=[report], backend=backend_url, start_time=START
    ) as env:
        await env.client.create_schedule(
            "race", report, "x", every=60, overlap="allow_all", catchup_window=3600
        )
        env.clock.set(START.timestamp() + 600)
        # Four drivers (and the environment's worker) race over ten due fires.
        drivers = [ostinato._schedules.ScheduleDriver(env.client) for _ in range(4)]
        results = await asyncio.gather(*(d.run_pass("race") for d in drivers))
        started = [i for r in results for i in r]
        assert len(started) == len(set(started))
        await env.idle()
        runs, _ = await env.client.list_workflows(limit=100)
        assert sorted(r.instance_id for r in runs) == [
            f"race@2030-01-01T00:{m:02d}:00Z" for m in range(1, 11)
        ]
        desc = await (await env.client.get_schedule("race")).describe()
        assert desc.runs_started == 10


def test_the_sync_client_manages_schedules(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/sync.db"
    with ostinato.SyncClient(url) as sync:
        schedule = sync.create_schedule("s", report, "eu", cron="*/5 * * * *")
        assert sync.get_schedule("s").describe().cron == "*/5 * * * *"
        schedule.pause("why not")
        assert schedule.describe().pause_reason == "why not"
        started = schedule.trigger()
        assert started is not None and started.id.startswith("s@")
        schedule.update(every=60, paused=False)
        assert [d.every for d in sync.list_schedules()] == [timedelta(seconds=60)]
        schedule.delete()
        with pytest.raises(ostinato.ScheduleNotFoundError):
            sync.get_schedule("s")
