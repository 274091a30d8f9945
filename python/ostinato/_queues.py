"""Queue limits on the client side (docs/queues.md): checking what the caller asked for, and
finding the backend's ``QueueLimitStore``. The backends enforce the limits in their claims."""

from __future__ import annotations

from datetime import timedelta

from ._backends._queue_limits import QueueLimits, QueueLimitStore
from ._checks import check_text
from ._retry import to_seconds

__all__ = ["QueueLimits", "limits_from", "limits_store"]

# Limits above this are a typo, not a limit (and must fit PostgreSQL's integer).
MAX_LIMIT = 1_000_000_000


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} ({value!r:.80})")
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"{what} must be between 1 and {MAX_LIMIT}, not {value}")
    return value


def limits_from(
    queue: object,
    max_concurrent: object,
    rate_limit: object,
    max_concurrent_per_key: object,
) -> tuple[str, QueueLimits]:
    """The queue name and its limits, or a ``TypeError`` / ``ValueError`` naming the bad
    argument (before anything is stored)."""
    name = check_text(queue, "queue")
    concurrent = None if max_concurrent is None else _count(max_concurrent, "max_concurrent")
    per_key = (
        None
        if max_concurrent_per_key is None
        else _count(max_concurrent_per_key, "max_concurrent_per_key")
    )
    rate_count: int | None = None
    rate_period: float | None = None
    if rate_limit is not None:
        if not isinstance(rate_limit, tuple) or len(rate_limit) != 2:
            raise TypeError(
                "rate_limit must be a (count, period) tuple, e.g. (50, timedelta(seconds=1)), "
                f"not {rate_limit!r:.80}"
            )
        count, period = rate_limit
        rate_count = _count(count, "rate_limit count")
        if not isinstance(period, (int, float, timedelta)) or isinstance(period, bool):
            raise TypeError(
                "rate_limit period must be seconds (int/float) or a timedelta, "
                f"not {type(period).__name__} ({period!r:.80})"
            )
        seconds = to_seconds(period, "rate_limit period")
        assert seconds is not None
        if seconds <= 0:
            raise ValueError(f"rate_limit period must be more than 0 seconds, not {period!r}")
        rate_period = seconds
    return name, QueueLimits(concurrent, rate_count, rate_period, per_key)


def limits_store(backend: object) -> QueueLimitStore:
    if not isinstance(backend, QueueLimitStore):
        raise TypeError(
            f"{type(backend).__name__} does not store queue limits: it must implement "
            "ostinato.backends.QueueLimitStore (docs/queues.md)"
        )
    return backend
