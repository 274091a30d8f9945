"""A virtual clock: a backend's ``clock`` that only moves when told to."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .._retry import Duration, to_seconds

__all__ = ["VirtualClock", "to_timestamp"]


def to_timestamp(when: datetime | float) -> float:
    """Seconds since the epoch for a datetime (naive means UTC) or a number."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    return float(when)


class VirtualClock:
    """A callable returning seconds since the epoch, frozen between explicit moves.

    Pass it as ``clock=`` to a backend. It never moves backwards: ``set`` to an earlier
    time is refused, because timers and leases already stored would then be in the future.
    """

    __slots__ = ("_now",)

    def __init__(self, start: datetime | float) -> None:
        self._now = to_timestamp(start)

    def __call__(self) -> float:
        return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self.now().isoformat()})"

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, tz=timezone.utc)

    def set(self, when: datetime | float) -> None:
        ts = to_timestamp(when)
        if ts < self._now:
            raise ValueError(
                f"the virtual clock cannot go back from {self.now().isoformat()} to "
                f"{datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()}"
            )
        self._now = ts

    def advance(self, duration: Duration | timedelta) -> None:
        seconds = to_seconds(duration, "duration")
        assert seconds is not None
        if seconds < 0:
            raise ValueError(f"cannot advance the clock by a negative duration ({seconds}s)")
        self._now += seconds
