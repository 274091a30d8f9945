"""ostinato's web UI mounted in your own ASGI service, next to your own routes.

The service below starts invoice workflows on ``POST /invoices`` and runs a worker in its
lifespan; ``/ostinato/`` shows every run, its timeline and history, live. FastAPI mounts the
same app the same way (``app.mount("/ostinato", ui)``). Needs ``pip install 'ostinato[ui]'``.

    python examples/web_ui.py --db invoices.db      # then open http://127.0.0.1:8000/ostinato/
    curl -X POST 'http://127.0.0.1:8000/invoices?customer=ada'

The UI is read-only here. ``create_app(backend, allow_actions=True)`` adds signal, cancel and
terminate buttons (each confirmed, CSRF-protected): put it behind your service's own
authentication first, because anyone who reaches it can then act on every workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import ostinato
from ostinato import activity, workflow
from ostinato.ui import create_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route


@activity.defn
async def render_invoice(customer: str) -> str:
    return f"invoice for {customer}: 3 items, 42.00 EUR"


@activity.defn
async def send_invoice(customer: str, invoice: str) -> str:
    return f"sent to {customer}"


@workflow.defn
async def invoice(customer: str) -> str:
    document = await workflow.execute_activity(render_invoice, customer)
    workflow.set_var("stage", "rendered")
    await workflow.sleep(timedelta(milliseconds=200))  # days, in a real dunning flow
    receipt = await workflow.execute_activity(send_invoice, customer, document)
    workflow.set_var("stage", "sent")
    return receipt


def build(url: str) -> Starlette:
    backend = ostinato.connect(url)
    client = ostinato.Client(backend)

    async def start_invoice(request: Request) -> JSONResponse:
        customer = request.query_params.get("customer", "anonymous")
        handle = await client.start_workflow(invoice, customer)
        return JSONResponse({"id": handle.id, "see": f"/ostinato/run?id={handle.id}"}, 201)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.open()
        async with ostinato.Worker(
            backend, workflows=[invoice], activities=[render_invoice, send_invoice]
        ):
            yield
        await backend.close()

    return Starlette(
        routes=[
            Route("/invoices", start_invoice, methods=["POST"]),
            # The UI shares the service's backend (and so its event loop and connections).
            Mount("/ostinato", app=create_app(backend)),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=os.environ.get("INVOICES_DB", "invoices.db"))
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    config = uvicorn.Config(build(f"sqlite:///{args.db}"), host="127.0.0.1", port=args.port)
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
