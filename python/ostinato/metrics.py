"""Prometheus ``/metrics`` for the web process of your choice (docs/metrics.md).

A worker reports its metrics to a ``prometheus_client`` registry when it is given
``metrics_port=`` (it then serves them itself) or ``prometheus_registry=``. To serve them from
an app you already run (the web UI, a FastAPI or Flask service in the same process as the
worker), mount one of these apps at ``/metrics``::

    app.mount("/metrics", ostinato.metrics.prometheus_asgi_app())

``prometheus_client`` is imported when an app is made, never by ``import ostinato``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._metrics import INSTRUMENTS, Instrument, prometheus_sink

__all__ = ["INSTRUMENTS", "Instrument", "prometheus_asgi_app", "prometheus_wsgi_app"]


def _registry(registry: Any) -> Any:
    # Registers ostinato's metrics in the registry (once), so a scrape lists them even
    # before a worker of this process reported anything.
    return prometheus_sink(registry).registry


def prometheus_asgi_app(registry: Any = None) -> Callable[..., Any]:
    """An ASGI app serving ``registry`` (default: ``prometheus_client.REGISTRY``) in the
    Prometheus text format."""
    import prometheus_client

    return prometheus_client.make_asgi_app(_registry(registry))


def prometheus_wsgi_app(registry: Any = None) -> Callable[..., Any]:
    """A WSGI app serving ``registry`` (default: ``prometheus_client.REGISTRY``)."""
    import prometheus_client

    return prometheus_client.make_wsgi_app(_registry(registry))
