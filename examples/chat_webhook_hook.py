"""A hook posting to a chat webhook: every failed or timed-out order run becomes a message in
the team's channel, delivered at least once even if the chat service is down for a while.

The chat service here is a stub (a local HTTP server on 127.0.0.1, started by ``main()``):
point ``WEBHOOK_URL`` at your real incoming-webhook URL instead. The message carries the
event id as an idempotency key, so a chat service that honours it shows a message once even
when a delivery is repeated (a worker died after posting, before recording it).

Run it: ``python examples/chat_webhook_hook.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ostinato
from ostinato import RetryPolicy, RunStateChange, workflow

WEBHOOK_URL = "http://127.0.0.1:0/hooks/orders"  # main() fills in the stub's port


@workflow.defn
async def charge_order(order_id: str, cents: int) -> dict[str, Any]:
    if cents <= 0:
        raise ostinato.ApplicationError(
            f"order {order_id}: nothing to charge", type="InvalidAmount", non_retryable=True
        )
    return {"order": order_id, "charged": cents}


def post_json(url: str, body: dict[str, Any], idempotency_key: str) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            raise RuntimeError(f"chat webhook answered {response.status}")


@ostinato.hook(
    on=("failed", "timed_out"),
    workflows=["charge_order"],
    name="chat-orders",  # stable across deploys and module renames
    retry=RetryPolicy(initial_interval=1.0, max_interval=3600.0, max_attempts=25),
)
async def tell_the_team(event: RunStateChange) -> None:
    why = str(event.failure) if event.failure is not None else event.status
    text = f":warning: {event.workflow_name} {event.instance_id} {event.status}: {why}"
    # urllib blocks: run it in a thread so the worker's event loop keeps going.
    await asyncio.to_thread(post_json, WEBHOOK_URL, {"text": text}, event.id)


class ChatStub(ThreadingHTTPServer):
    """Stands in for the chat service: keeps each message once per idempotency key, and can
    be told to fail the next few posts (an outage)."""

    def __init__(self, fail_next: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.messages: dict[str, dict[str, Any]] = {}
        self.posts = 0
        self.fail_next = fail_next
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/orders"


class _ChatHandler(BaseHTTPRequestHandler):
    server: ChatStub

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.posts += 1
            if self.server.fail_next > 0:
                self.server.fail_next -= 1
                self.send_response(503)
            else:
                self.server.messages.setdefault(self.headers["Idempotency-Key"], body)
                self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def main(fail_next: int = 2) -> ChatStub:
    global WEBHOOK_URL
    chat = ChatStub(fail_next=fail_next)  # down for the first posts: retried 1 s, 2 s later
    threading.Thread(target=chat.serve_forever, daemon=True).start()
    WEBHOOK_URL = chat.url
    try:
        backend = ostinato.connect("memory://")
        client = ostinato.Client(backend)
        async with ostinato.Worker(
            backend, workflows=[charge_order], hooks=[tell_the_team], poll_interval=0.1
        ):
            await (await client.start_workflow(charge_order, "o-1", 1200)).result()
            bad = await client.start_workflow(charge_order, "o-2", 0, id="order-o-2")
            with contextlib.suppress(ostinato.WorkflowFailedError):
                await bad.result()
            while not chat.messages:
                await asyncio.sleep(0.05)
        for message in chat.messages.values():
            print(message["text"])
        print(f"{chat.posts} posts for {len(chat.messages)} message(s)")
    finally:
        chat.shutdown()
        chat.server_close()
    return chat


if __name__ == "__main__":
    asyncio.run(main())
