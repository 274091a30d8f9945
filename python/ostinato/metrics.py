"""Prometheus ``/metrics`` for the web process of your choice (docs/metrics.md).

A worker reports its metrics to a ``prometheus_client`` registry when it is given
``metrics_port=`` (it then serves them itself) or ``prometheus_registry=``. To serve them from
an app you already run (a FastAPI or Flask service in the same process as the worker), mount
one of these apps at ``/metrics``; the web UI (``ostinato.ui.create_app``) mounts it itself::

    app.mount("/metrics", ostinato.metrics.prometheus_asgi_app())

Given a backend, the ASGI app also reads ``backend.stats()`` at each scrape and reports the
backlog of every queue and the latest runs by workflow and status: what the store holds, seen
from any process, not only from the workers'.

``prometheus_client`` is imported when an app is made, never by ``import ostinato``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from ._backends._contract import Backend
from ._backends._types import BackendStats
from ._metrics import INSTRUMENTS, Instrument, prometheus_sink

__all__ = [
    "INSTRUMENTS",
    "STORE_METRICS",
    "Instrument",
    "prometheus_asgi_app",
    "prometheus_wsgi_app",
]

log = logging.getLogger("ostinato.metrics")

# The gauges the ASGI app adds when given a backend: (name, labels, help).
STORE_METRICS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "ostinato_queue_backlog",
        ("queue", "kind"),
        "Tasks a worker of the queue could claim now, by kind (workflow, activity).",
    ),
    (
        "ostinato_queue_oldest_ready_seconds",
        ("queue",),
        "How long the longest-waiting claimable task of the queue has waited.",
    ),
    (
        "ostinato_runs",
        ("workflow", "status", "blocked"),
        "Instances by the workflow and status of their latest run (blocked: true/false).",
    ),
    ("ostinato_store_up", (), "1 when the last read of the store's statistics succeeded."),
)


def _registry(registry: Any) -> Any:
    # Registers ostinato's metrics in the registry (once), so a scrape lists them even
    # before a worker of this process reported anything.
    return prometheus_sink(registry).registry


class _StoreCollector:
    """The ``STORE_METRICS`` of one ``backend.stats()`` snapshot (None: the read failed)."""

    def __init__(self, stats: BackendStats | None) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        families = {
            name: GaugeMetricFamily(name, doc, labels=labels) for name, labels, doc in STORE_METRICS
        }
        stats = self.stats
        families["ostinato_store_up"].add_metric([], 0.0 if stats is None else 1.0)
        if stats is not None:
            for queue in stats.backlog:
                backlog = families["ostinato_queue_backlog"]
                backlog.add_metric([queue.queue, "workflow"], queue.workflow_tasks)
                backlog.add_metric([queue.queue, "activity"], queue.activity_tasks)
                if queue.held_by_limits:
                    backlog.add_metric([queue.queue, "held_by_limits"], queue.held_by_limits)
                if queue.oldest_ready_at is not None:
                    families["ostinato_queue_oldest_ready_seconds"].add_metric(
                        [queue.queue], max(stats.now - queue.oldest_ready_at, 0.0)
                    )
            # Paused runs are counted apart by the store; the metric keeps its labels.
            counted: dict[tuple[str, str, str], int] = {}
            for runs in stats.runs:
                key = (runs.workflow_name, runs.status.value, str(runs.blocked).lower())
                counted[key] = counted.get(key, 0) + runs.count
            for labels, count in counted.items():
                families["ostinato_runs"].add_metric(list(labels), count)
        yield from families.values()


class _PrometheusASGI:
    """The ASGI app (a class, so that routers treat it as an app, not as an endpoint)."""

    def __init__(self, registry: Any, backend: Backend | None) -> None:
        self.registry = registry
        self.backend = backend

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # served on its own: nothing to start or stop
            while True:
                message = await receive()
                kind = message["type"] + ".complete"
                await send({"type": kind})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        status, body = 200, generate_latest(self.registry)
        if scope.get("method") not in ("GET", "HEAD"):
            status, body = 405, b"method not allowed\n"
        elif self.backend is not None:
            stats: BackendStats | None = None
            try:
                await self.backend.open()
                stats = await self.backend.stats()
            except Exception as exc:
                log.warning("could not read the store's statistics for /metrics: %s", exc)
            store = CollectorRegistry(auto_describe=False)
            store.register(_StoreCollector(stats))
            body += generate_latest(store)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body}
        )


def prometheus_asgi_app(registry: Any = None, *, backend: Backend | None = None) -> Any:
    """An ASGI app serving ``registry`` (default: ``prometheus_client.REGISTRY``) in the
    Prometheus text format; with ``backend``, also the store's backlog per queue and runs by
    status (``STORE_METRICS``), read at each scrape."""
    if backend is not None and not isinstance(backend, Backend):
        raise TypeError(f"backend must be an ostinato backend, not {type(backend).__name__}")
    return _PrometheusASGI(_registry(registry), backend)


def prometheus_wsgi_app(registry: Any = None) -> Callable[..., Any]:
    """A WSGI app serving ``registry`` (default: ``prometheus_client.REGISTRY``)."""
    import prometheus_client

    return prometheus_client.make_wsgi_app(_registry(registry))
