"""Retry policy for activities and duration helpers."""

from __future__ import annotations

import contextvars
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

__all__ = ["Duration", "RetryPolicy", "to_seconds"]

Duration = float | int | timedelta

# The longest duration accepted anywhere (about 1000 years): far beyond any real timeout or
# sleep, and far below what timestamps in microseconds (and datetime) can represent.
MAX_DURATION_SECONDS = 1000 * 366 * 86400.0


def to_seconds(value: Duration | None, what: str) -> float | None:
    """Durations are accepted everywhere as seconds (int/float) or timedelta.

    Negative, NaN, infinite and absurdly long (more than about 1000 years) durations are
    refused with an error that names ``what``.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
    else:
        raise TypeError(f"{what} must be seconds (int/float) or a timedelta, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"{what} must be a finite number of seconds or a timedelta, got {value!r}")
    if seconds < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"{what} must be at most {MAX_DURATION_SECONDS:.0f} seconds (about 1000 years), "
            f"got {value!r}"
        )
    return seconds


_reading_stored_policy: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ostinato_reading_stored_policy", default=False
)


@dataclass(frozen=True)
class RetryPolicy:
    """How the engine retries a failing activity (with exponential back-off).

    The default allows 10 attempts (about five minutes of back-off: 1, 2, 4 ... seconds), so a
    broken activity fails visibly instead of retrying forever. ``max_interval`` caps the
    back-off; by default at 100 times ``initial_interval``. ``max_attempts=0``
    means unlimited (bounded by ``schedule_to_close_timeout``). An
    ``ApplicationError(non_retryable=True)`` or an error whose type name is in
    ``non_retryable_error_types`` stops retrying at once. ``pause_after=N`` pauses the run
    after every N failed attempts in a row instead of retrying on (the activity waits, its
    last failure kept, until ``handle.resume()`` retries it at once; see docs/pausing.md).

    Every value is checked here: ``initial_interval`` must be a finite duration > 0,
    ``max_interval`` (if given) one >= ``initial_interval``, ``backoff_coefficient`` a finite
    number >= 1, ``max_attempts`` an int >= 0, and ``non_retryable_error_types`` a sequence
    of type names (not one bare string). A ``ValueError``/``TypeError`` names the field.
    """

    initial_interval: Duration = 1.0
    backoff_coefficient: float = 2.0
    max_interval: Duration | None = None
    max_attempts: int = 10
    non_retryable_error_types: Sequence[str] = field(default_factory=tuple)
    pause_after: int | None = None

    def __post_init__(self) -> None:
        if self.initial_interval is None:
            raise TypeError("RetryPolicy.initial_interval must be a duration, got None")
        initial = to_seconds(self.initial_interval, "RetryPolicy.initial_interval")
        # Policies stored by earlier versions may have a zero initial_interval or a
        # max_interval below it (accepted then, harmless for a bounded number of attempts):
        # tasks scheduled with them keep running after an upgrade.
        legacy = _reading_stored_policy.get()
        if not initial and not legacy:
            raise ValueError(
                "RetryPolicy.initial_interval must be > 0 (a retry without back-off spins), "
                f"got {self.initial_interval!r}"
            )
        cap = to_seconds(self.max_interval, "RetryPolicy.max_interval")
        if cap is not None and cap < (initial or 0.0) and not legacy:
            raise ValueError(
                f"RetryPolicy.max_interval ({self.max_interval!r}) must be >= "
                f"initial_interval ({self.initial_interval!r})"
            )
        coefficient = self.backoff_coefficient
        if not isinstance(coefficient, (int, float)) or isinstance(coefficient, bool):
            raise TypeError(
                f"RetryPolicy.backoff_coefficient must be a number, got {coefficient!r}"
            )
        if not math.isfinite(coefficient) or coefficient < 1:
            raise ValueError(
                f"RetryPolicy.backoff_coefficient must be a finite number >= 1, got {coefficient!r}"
            )
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool):
            raise TypeError(f"RetryPolicy.max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 0:
            raise ValueError(
                f"RetryPolicy.max_attempts must be >= 0 (0 = unlimited), got {self.max_attempts!r}"
            )
        pause_after = self.pause_after
        if pause_after is not None:
            if not isinstance(pause_after, int) or isinstance(pause_after, bool):
                raise TypeError(f"RetryPolicy.pause_after must be an int, got {pause_after!r}")
            if pause_after < 1:
                raise ValueError(
                    f"RetryPolicy.pause_after must be >= 1 (or None), got {pause_after!r}"
                )
        types = self.non_retryable_error_types
        if (
            isinstance(types, (str, bytes))
            or not isinstance(types, Sequence | set | frozenset)
            or not all(isinstance(t, str) for t in types)
        ):
            raise TypeError(
                "RetryPolicy.non_retryable_error_types must be a sequence of type names "
                f"(str), got {types!r}"
            )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "initial_interval": to_seconds(self.initial_interval, "initial_interval"),
            "backoff_coefficient": self.backoff_coefficient,
            "max_interval": to_seconds(self.max_interval, "max_interval"),
            "max_attempts": self.max_attempts,
            "non_retryable_error_types": list(self.non_retryable_error_types),
        }
        if self.pause_after is not None:
            # Only when set: the options of activities scheduled before stay byte-identical.
            data["pause_after"] = self.pause_after
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RetryPolicy:
        if not data:
            return cls()
        token = _reading_stored_policy.set(True)
        try:
            return cls(
                initial_interval=data.get("initial_interval", 1.0),
                backoff_coefficient=data.get("backoff_coefficient", 2.0),
                max_interval=data.get("max_interval"),
                max_attempts=data.get("max_attempts", 10),
                non_retryable_error_types=tuple(data.get("non_retryable_error_types", ())),
                pause_after=data.get("pause_after"),
            )
        finally:
            _reading_stored_policy.reset(token)

    def backoff(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` after attempt ``attempt`` failed."""
        initial = to_seconds(self.initial_interval, "initial_interval") or 0.0
        cap = to_seconds(self.max_interval, "max_interval")
        if cap is None:
            cap = 100 * initial
        try:
            delay = initial * (self.backoff_coefficient ** max(attempt - 1, 0))
        except OverflowError:  # a huge attempt number: the cap applies anyway
            return cap
        return min(delay, cap)

    def allows_another(self, attempt: int) -> bool:
        return self.max_attempts == 0 or attempt < self.max_attempts

    def pauses_after(self, attempt: int) -> bool:
        """Whether the run pauses after attempt ``attempt`` failed (and another is allowed)."""
        return self.pause_after is not None and attempt % self.pause_after == 0
