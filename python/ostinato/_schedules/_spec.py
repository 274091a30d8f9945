"""What a schedule is: its spec (cron or interval, time zone, policies), checked at the call,
and the pure arithmetic of its fire times.

Times are the backend clock's: float seconds since the Unix epoch, UTC. Cron expressions are
parsed and evaluated by ``cronsim`` in the schedule's ``zoneinfo`` time zone, so daylight
saving changes follow Debian cron: a time skipped by a spring-forward change fires once, right
after the change; a time repeated by a fall-back change fires once, the first time.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .._checks import check_text

__all__ = [
    "OVERLAP_POLICIES",
    "ScheduleSpec",
    "fire_instance_id",
]

#: What a fire does while the schedule's previous run is still open.
OVERLAP_POLICIES = ("skip", "buffer_one", "allow_all", "cancel_other", "terminate_other")

_MIN_EVERY = 1.0  # seconds; a faster schedule is a loop, not a schedule
_MAX_SPAN = 100 * 365.25 * 86400.0  # the longest duration any option takes, as elsewhere


def _seconds(value: object, what: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise TypeError(
            f"{what} must be a timedelta or a number of seconds, not {type(value).__name__}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds) or seconds < minimum or seconds > _MAX_SPAN:
        raise ValueError(f"{what} must be between {minimum:g}s and 100 years, not {value!r:.80}")
    return seconds


def _zone(name: object) -> ZoneInfo:
    check_text(name, "timezone")
    assert isinstance(name, str)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r:.80}: use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def _check_cron(expr: object, zone: ZoneInfo) -> str:
    check_text(expr, "cron")
    assert isinstance(expr, str)
    expr = " ".join(expr.split())
    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=zone))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {expr!r:.80}: {exc}") from None
    if len(expr.split()) != 5:
        raise ValueError(
            f"invalid cron expression {expr!r:.80}: it needs five fields "
            "(minute hour day-of-month month day-of-week)"
        )
    return expr


@dataclass(frozen=True)
class ScheduleSpec:
    """When a schedule fires and what it does on overlap; immutable, checked when built."""

    cron: str | None = None
    every: float | None = None  # seconds
    timezone: str = "UTC"
    overlap: str = "skip"
    catchup_window: float = 60.0  # seconds
    jitter: float = 0.0  # seconds

    @classmethod
    def build(
        cls,
        *,
        cron: object = None,
        every: object = None,
        timezone: object = "UTC",
        overlap: object = "skip",
        catchup_window: object = timedelta(minutes=1),
        jitter: object = None,
    ) -> ScheduleSpec:
        """A spec from user arguments, each checked with an error naming it."""
        if (cron is None) == (every is None):
            raise ValueError("give exactly one of cron= and every=")
        zone = _zone(timezone)
        checked_cron = _check_cron(cron, zone) if cron is not None else None
        checked_every = _seconds(every, "every", minimum=_MIN_EVERY) if every is not None else None
        if overlap not in OVERLAP_POLICIES:
            raise ValueError(
                f"overlap must be one of {', '.join(map(repr, OVERLAP_POLICIES))}, "
                f"not {overlap!r:.80}"
            )
        assert isinstance(overlap, str) and isinstance(timezone, str)
        window = _seconds(catchup_window, "catchup_window")
        spread = 0.0 if jitter is None else _seconds(jitter, "jitter")
        return cls(checked_cron, checked_every, timezone, overlap, window, spread)

    def replace(self, **changes: object) -> ScheduleSpec:
        """This spec with some arguments changed (``cron`` and ``every`` replace each other)."""
        current: dict[str, object] = dict(self.to_json())
        if changes.get("cron") is not None:
            current["every"] = None
        if changes.get("every") is not None:
            current["cron"] = None
        current.update({k: v for k, v in changes.items() if v is not None})
        return ScheduleSpec.build(**current)

    # ---- storage -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "cron": self.cron,
            "every": self.every,
            "timezone": self.timezone,
            "overlap": self.overlap,
            "catchup_window": self.catchup_window,
            "jitter": self.jitter,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleSpec:
        return cls.build(
            cron=data.get("cron"),
            every=data.get("every"),
            timezone=data.get("timezone", "UTC"),
            overlap=data.get("overlap", "skip"),
            catchup_window=data.get("catchup_window", 60.0),
            jitter=data.get("jitter") or None,
        )

    # ---- fire times ----------------------------------------------------------------------

    def next_fire(self, after: float) -> float | None:
        """The first nominal fire time strictly after ``after`` (None: never again)."""
        for fire in self.fires(after):
            return fire
        return None

    def fires(self, after: float) -> Iterator[float]:
        """Nominal fire times strictly after ``after``, in order.

        ``every`` fires are aligned on the Unix epoch (every 5 minutes fires at :00, :05, ...
        UTC whatever the time zone), so every process computes the same times.
        """
        if self.every is not None:
            k = math.floor(after / self.every) + 1
            while True:
                yield k * self.every
                k += 1
        assert self.cron is not None
        zone = ZoneInfo(self.timezone)
        start = datetime.fromtimestamp(math.floor(after), tz=timezone.utc).astimezone(zone)
        for fire in CronSim(self.cron, start):
            ts = fire.timestamp()
            if ts > after:
                yield ts

    def describe(self) -> str:
        """The spec in words, for ``describe()`` and the CLI."""
        if self.every is not None:
            return f"every {span(self.every)}"
        return f"cron {self.cron!r} in {self.timezone}"

    def jitter_offset(self, schedule_id: str, fire: float) -> float:
        """A delay in ``[0, jitter)`` fixed by the schedule and the fire time, so that every
        worker agrees on when a jittered fire is due."""
        if not self.jitter:
            return 0.0
        digest = hashlib.blake2b(f"{schedule_id}\x00{fire!r}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64 * self.jitter


def span(seconds: float) -> str:
    """A duration in words: ``5 min``, ``1 d``, ``90 s``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def fire_instance_id(schedule_id: str, fire: float) -> str:
    """The instance id of the run a fire starts: the schedule id and the fire time (UTC), so
    a fire computed twice (two workers, a restart) names the same run and starts it once."""
    moment = datetime.fromtimestamp(fire, tz=timezone.utc)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        stamp += f".{moment.microsecond:06d}"
    return f"{schedule_id}@{stamp}Z"
