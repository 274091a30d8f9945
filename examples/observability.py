"""A worker with tracing, metrics and structured logs on.

An order is placed inside a (pretend) web request span. The workflow charges the card (the
first attempt fails and is retried), waits for a warehouse signal, ships through a child
workflow and sleeps a moment before its follow-up. The example then prints:

- the trace, as a tree: the request, ``StartWorkflow``, ``RunWorkflow`` with its signal and
  timer events, each ``RunActivity`` attempt, the child's ``RunWorkflow`` under its parent's;
- a few lines of a real scrape of the worker's Prometheus endpoint;
- and, as it goes, JSON log lines that carry the run's and activity's ids.

Needs ``pip install 'ostinato[otel]' opentelemetry-sdk``.

    python examples/observability.py --db observability.db [--metrics-port 9464]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.config
import urllib.request
from datetime import timedelta
from typing import Any

import ostinato
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from ostinato import ApplicationError, RetryPolicy, activity, workflow

log = logging.getLogger("shop")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the ostinato ids when the record has them."""

    FIELDS = (
        "ostinato_instance_id",
        "ostinato_run_id",
        "ostinato_workflow_name",
        "ostinato_activity_name",
        "ostinato_attempt",
    )

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                out[field.removeprefix("ostinato_")] = value
        return json.dumps(out)


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ostinato": {"()": "ostinato.LogContextFilter"}},
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            # Stamps the records of your own loggers too (shop, here); ostinato's carry the
            # ids without it.
            "filters": ["ostinato"],
        }
    },
    "loggers": {"shop": {"level": "INFO"}, "ostinato": {"level": "INFO"}},
    "root": {"handlers": ["stdout"], "level": "WARNING"},
}

_charges: dict[str, int] = {}


@activity.defn
async def charge(order_id: str, cents: int) -> str:
    _charges[order_id] = _charges.get(order_id, 0) + 1
    if _charges[order_id] == 1:
        raise ApplicationError("card network busy", type="CardNetworkBusy")
    log.info("charged %d cents", cents)
    return f"receipt-{order_id}"


@activity.defn
async def book_courier(order_id: str) -> str:
    log.info("courier booked")
    return f"parcel-{order_id}"


@workflow.defn
async def ship(order_id: str) -> str:
    return await workflow.execute_activity(book_courier, order_id)


@workflow.defn
async def place_order(order_id: str, cents: int) -> str:
    workflow.logger.info("order received")
    receipt = await workflow.execute_activity(
        charge, order_id, cents, retry=RetryPolicy(initial_interval=timedelta(milliseconds=50))
    )
    await workflow.signal_channel("packed", str).receive()
    parcel = await workflow.execute_child(ship, order_id, id=f"{order_id}-ship")
    await workflow.sleep(timedelta(milliseconds=100))
    return f"{receipt} {parcel}"


def print_tree(spans: list[ReadableSpan]) -> None:
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent else None
        children.setdefault(parent, []).append(span)
    known = {span.context.span_id for span in spans}

    def show(span: ReadableSpan, depth: int) -> None:
        attrs = span.attributes or {}
        duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        detail = [f"{duration_ms:.1f} ms"]
        if "ostinato.activity.attempt" in attrs:
            detail.append(f"attempt {attrs['ostinato.activity.attempt']}")
            detail.append(str(attrs.get("ostinato.activity.outcome")))
        if "ostinato.status" in attrs:
            detail.append(str(attrs["ostinato.status"]))
        events = ", ".join(e.name for e in span.events)
        if events:
            detail.append(f"events: {events}")
        print(f"{'    ' * depth}{span.name}  ({'; '.join(detail)})")
        for child in sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time):
            show(child, depth + 1)

    for root in spans:
        if root.parent is None or root.parent.span_id not in known:
            show(root, 0)


async def main(db: str, metrics_port: int) -> None:
    logging.config.dictConfig(LOGGING)
    exporter = InMemorySpanExporter()  # in production: a BatchSpanProcessor and OTLP
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    backend = ostinato.connect(f"sqlite:///{db}")
    client = ostinato.Client(backend, tracer_provider=tracing)
    async with ostinato.Worker(
        backend,
        workflows=[place_order, ship],
        activities=[charge, book_courier],
        tracer_provider=tracing,
        metrics_port=metrics_port,
    ) as worker:
        with tracing.get_tracer("shop").start_as_current_span("POST /orders"):
            handle = await client.start_workflow(place_order, "o-17", 4_200, id="o-17")
        await asyncio.sleep(0.2)
        await handle.signal("packed", "shelf 4")
        print("result:", await handle.result(timeout=30))
        url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
        scrape = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read().decode())
    await backend.close()

    print("\ntrace:")
    print_tree(list(exporter.get_finished_spans()))
    print(f"\nmetrics (from {url}):")
    for line in scrape.splitlines():
        if line.startswith(("ostinato_workflows_closed_total", "ostinato_activity_attempts_total")):
            print(" ", line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="observability.db")
    parser.add_argument("--metrics-port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    asyncio.run(main(args.db, args.metrics_port))
