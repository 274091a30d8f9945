"""Retry policy for activities and duration helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

__all__ = ["Duration", "RetryPolicy", "to_seconds"]

Duration = float | int | timedelta


def to_seconds(value: Duration | None, what: str) -> float | None:
    """Durations are accepted everywhere as seconds (int/float) or timedelta."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be seconds (int/float) or a timedelta, got {value!r}")
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class RetryPolicy:
    """How the engine retries a failing activity (with exponential back-off).

    The default allows 10 attempts (about five minutes of back-off: 1, 2, 4 ... seconds), so a
    broken activity fails visibly instead of retrying forever. ``max_interval`` caps the
    back-off; by default at 100 times ``initial_interval``. ``max_attempts=0``
    means unlimited (bounded by ``schedule_to_close_timeout``). An
    ``ApplicationError(non_retryable=True)`` or an error whose type name is in
    ``non_retryable_error_types`` stops retrying at once.
    """

    initial_interval: Duration = 1.0
    backoff_coefficient: float = 2.0
    max_interval: Duration | None = None
    max_attempts: int = 10
    non_retryable_error_types: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        to_seconds(self.initial_interval, "RetryPolicy.initial_interval")
        to_seconds(self.max_interval, "RetryPolicy.max_interval")
        if self.backoff_coefficient < 1:
            raise ValueError("RetryPolicy.backoff_coefficient must be >= 1")
        if self.max_attempts < 0:
            raise ValueError("RetryPolicy.max_attempts must be >= 0 (0 = unlimited)")

    def to_json(self) -> dict[str, Any]:
        return {
            "initial_interval": to_seconds(self.initial_interval, "initial_interval"),
            "backoff_coefficient": self.backoff_coefficient,
            "max_interval": to_seconds(self.max_interval, "max_interval"),
            "max_attempts": self.max_attempts,
            "non_retryable_error_types": list(self.non_retryable_error_types),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RetryPolicy:
        if not data:
            return cls()
        return cls(
            initial_interval=data.get("initial_interval", 1.0),
            backoff_coefficient=data.get("backoff_coefficient", 2.0),
            max_interval=data.get("max_interval"),
            max_attempts=data.get("max_attempts", 10),
            non_retryable_error_types=tuple(data.get("non_retryable_error_types", ())),
        )

    def backoff(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` after attempt ``attempt`` failed."""
        initial = to_seconds(self.initial_interval, "initial_interval") or 0.0
        delay = initial * (self.backoff_coefficient ** max(attempt - 1, 0))
        cap = to_seconds(self.max_interval, "max_interval")
        if cap is None:
            cap = 100 * initial
        return min(delay, cap)

    def allows_another(self, attempt: int) -> bool:
        return self.max_attempts == 0 or attempt < self.max_attempts
