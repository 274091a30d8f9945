"""A real UI server for tests: a backend, a worker and uvicorn serving ``create_app`` on a
free port of 127.0.0.1, all on one event loop in a background thread (so a memory backend
is shared by the worker, the seeding client and the app), driven from the test's thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine
from typing import Any, TypeVar

import orjson
import ostinato
import uvicorn
from ostinato.ui import create_app

from .ui_workflows import ACTIVITIES, WORKFLOWS

T = TypeVar("T")


class LiveUI:
    def __init__(self, url: str, *, allow_actions: bool = False) -> None:
        self.url = url
        self.allow_actions = allow_actions
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.base = ""

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> LiveUI:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        self.backend = ostinato.connect(self.url)
        await self.backend.open()
        self.client = ostinato.Client(self.backend)
        self.worker = ostinato.Worker(
            self.backend, workflows=WORKFLOWS, activities=ACTIVITIES, poll_interval=0.05
        )
        self._worker_task = asyncio.ensure_future(self.worker.run())
        app = create_app(self.backend, allow_actions=self.allow_actions)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self._server_task = asyncio.ensure_future(self.server.serve())
        while not self.server.started:
            if self._server_task.done():
                self._server_task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}/"

    def stop(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    async def _stop(self) -> None:
        self.server.should_exit = True
        await self._server_task
        self._worker_task.cancel()
        await asyncio.gather(self._worker_task, return_exceptions=True)
        await self.backend.close()

    # ---- seeding ------------------------------------------------------------------------

    def start_workflow(self, workflow: Any, *args: Any, id: str, **options: Any) -> Any:
        return self.call(self.client.start_workflow(workflow, *args, id=id, **options))

    def wait_closed(self, id: str, timeout: float = 20) -> None:
        async def wait() -> None:
            with contextlib.suppress(ostinato.WorkflowFailedError):
                await self.client.get_handle(id).result(timeout=timeout)

        self.call(wait(), timeout + 5)

    def wait_until(self, id: str, predicate: Any, timeout: float = 20) -> Any:
        async def wait() -> Any:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                description = await self.client.get_handle(id).describe()
                if predicate(description):
                    return description
                if loop.time() > deadline:
                    raise TimeoutError(f"{id}: still {description}")
                await asyncio.sleep(0.05)

        return self.call(wait(), timeout + 5)

    def block(self, workflow: Any, arg: Any, *, id: str, reason: str) -> None:
        """A run left blocked, as a worker leaves one whose code no longer matches its
        history: started on a queue no worker serves, claimed and failed with ``reason``."""

        async def go() -> None:
            await self.client.start_workflow(workflow, arg, id=id, queue="stuck")
            (task,) = await self.backend.claim_workflow_tasks(["stuck"], 30.0, 1)
            await self.backend.fail_workflow_task(task, reason, self.backend.clock() + 3600)

        self.call(go())

    # ---- HTTP -----------------------------------------------------------------------------

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(
            self.base + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get_json(self, path: str) -> Any:
        status, _, body = self.request(path)
        assert status == 200, (path, status, body[:500])
        return orjson.loads(body)
