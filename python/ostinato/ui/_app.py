"""The ASGI application: pages, the JSON API under /api/, static files, actions."""

from __future__ import annotations

import contextlib
import hmac
import importlib.resources
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import _view
from .._client import Client
from .._connect import connect
from .._errors import WorkflowNotFoundError, WorkflowNotRunningError
from ..backends import Backend
from . import _data, _pages, _timeline

__all__ = ["create_app"]

log = logging.getLogger("ostinato.ui")

# Pages and API answers never come from a cache; static files may for a while.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # No inline script or style anywhere: injected markup could not run even if it got in.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
_STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
# The stats read groups every latest run: list pages reuse it for this long.
STATS_TTL = 5.0
# Actions carry a reason or a signal value, not uploads.
MAX_ACTION_BODY = 256 * 1024


class _Error(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        media_type="application/json",
        headers={**_HEADERS, **(headers or {})},
    )


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


class _UI:
    def __init__(self, backend: Backend, *, allow_actions: bool, owns_backend: bool) -> None:
        self.backend = backend
        self.allow_actions = allow_actions
        self.owns_backend = owns_backend
        # One token per app: pages embed it, actions must send it back (a page of another
        # site cannot read it, so it cannot forge an action).
        self.csrf = secrets.token_urlsafe(32) if allow_actions else None
        self._stats: tuple[float, dict[str, Any]] | None = None

    async def stats(self, *, fresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        if fresh or self._stats is None or now - self._stats[0] > STATS_TTL:
            self._stats = (now, await _data.stats(self.backend))
        return self._stats[1]

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _id(request: Request) -> tuple[str, str | None]:
        instance_id = request.query_params.get("id", "")
        if not instance_id:
            raise _Error(400, "missing the run's id: add ?id=... to the address")
        return instance_id, request.query_params.get("run") or None

    def _fail(self, request: Request, exc: Exception, *, api: bool) -> Response:
        if isinstance(exc, _Error):
            status, message = exc.status, exc.message
        elif isinstance(exc, WorkflowNotFoundError):
            status, message = 404, str(exc)
        elif isinstance(exc, WorkflowNotRunningError):
            status, message = 409, str(exc)
        elif isinstance(exc, (ValueError, TypeError)):
            status, message = 400, str(exc)
        else:
            # The store failed (down, damaged history ...): say what, in one line.
            log.warning("ostinato ui: %s %s failed", request.method, request.url.path, exc_info=exc)
            status, message = 500, f"{type(exc).__name__}: {exc}"
        if api:
            return _json({"error": message}, status)
        return _html(_pages.error_page(status, message), status)

    async def _handle(
        self, request: Request, fn: Callable[[], Awaitable[Response]], *, api: bool
    ) -> Response:
        try:
            return await fn()
        except Exception as exc:
            return self._fail(request, exc, api=api)

    # ---- pages ------------------------------------------------------------------------------

    async def list_page(self, request: Request) -> Response:
        if not request.url.path.endswith("/"):
            # Relative links need the trailing slash (mounted at /workflows, say).
            return RedirectResponse(request.url.replace(path=request.url.path + "/"), 308)

        async def render() -> Response:
            params = {k: v for k, v in request.query_params.items() if v}
            flt, limit, cursor = _data.parse_filter(params)
            page = await _data.list_runs(self.backend, flt, limit, cursor)
            counts = _data.status_counts(await self.stats(), flt.workflow)
            return _html(_pages.list_page(page, counts, params, csrf=self.csrf))

        return await self._handle(request, render, api=False)

    async def run_page(self, request: Request) -> Response:
        async def render() -> Response:
            instance_id, run_id = self._id(request)
            run, timeline = await _data.run_detail(self.backend, instance_id, run_id)
            now = datetime.fromtimestamp(self.backend.clock(), tz=timezone.utc)
            return _html(
                _pages.run_page(
                    run,
                    _timeline.render(timeline, now),
                    _view.mermaid(timeline),
                    csrf=self.csrf,
                )
            )

        return await self._handle(request, render, api=False)

    async def history_page(self, request: Request) -> Response:
        async def render() -> Response:
            instance_id, run_id = self._id(request)
            data = await _data.history(self.backend, instance_id, run_id)
            return _html(_pages.history_page(data, csrf=self.csrf))

        return await self._handle(request, render, api=False)

    async def stats_page(self, request: Request) -> Response:
        async def render() -> Response:
            return _html(_pages.stats_page(await self.stats(fresh=True), csrf=self.csrf))

        return await self._handle(request, render, api=False)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", 404, media_type="text/plain")
        body = importlib.resources.files(__package__).joinpath("static").joinpath(name).read_bytes()
        return Response(
            body,
            media_type=_STATIC[name],
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    # ---- JSON API ---------------------------------------------------------------------------

    async def api_runs(self, request: Request) -> Response:
        async def answer() -> Response:
            params = {k: v for k, v in request.query_params.items() if v}
            flt, limit, cursor = _data.parse_filter(params)
            return _json(await _data.list_runs(self.backend, flt, limit, cursor))

        return await self._handle(request, answer, api=True)

    async def api_run(self, request: Request) -> Response:
        async def answer() -> Response:
            instance_id, run_id = self._id(request)
            run, _ = await _data.run_detail(self.backend, instance_id, run_id)
            return _json(run)

        return await self._handle(request, answer, api=True)

    async def api_history(self, request: Request) -> Response:
        async def answer() -> Response:
            instance_id, run_id = self._id(request)
            return _json(await _data.history(self.backend, instance_id, run_id))

        return await self._handle(request, answer, api=True)

    async def api_diagram(self, request: Request) -> Response:
        """The run as a sequence diagram: SVG (shown as an image, so it can run nothing), or
        Mermaid text with ``format=mermaid``."""

        async def answer() -> Response:
            instance_id, run_id = self._id(request)
            fmt = request.query_params.get("format", "svg")
            if fmt not in ("svg", "mermaid"):
                raise _Error(400, f"format must be svg or mermaid, not {fmt!r:.40}")
            _, timeline = await _data.run_detail(self.backend, instance_id, run_id)
            if fmt == "mermaid":
                return Response(_view.mermaid(timeline), media_type="text/plain", headers=_HEADERS)
            return Response(_view.svg(timeline), media_type="image/svg+xml", headers=_HEADERS)

        return await self._handle(request, answer, api=True)

    async def api_stats(self, request: Request) -> Response:
        async def answer() -> Response:
            return _json(await self.stats(fresh=True))

        return await self._handle(request, answer, api=True)

    async def api_poll(self, request: Request) -> Response:
        """One cheap read a live page repeats: 304 while nothing changed (ETag)."""

        async def answer() -> Response:
            instance_id, run_id = self._id(request)
            state = await _data.poll(self.backend, instance_id, run_id)
            etag = f'"{state["etag"]}"'
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers={**_HEADERS, "ETag": etag})
            return _json(state, headers={"ETag": etag})

        return await self._handle(request, answer, api=True)

    # ---- actions ----------------------------------------------------------------------------

    def _check_request(self, request: Request, form: dict[str, str]) -> None:
        """Actions on, same origin, and the page's token: refuse anything else."""
        if self.csrf is None:
            raise _Error(403, "actions are off: start the UI with --allow-actions")
        origin = request.headers.get("origin") or request.headers.get("referer")
        if origin is not None and origin != "null":
            parts = urlsplit(origin)
            if parts.netloc != request.headers.get("host", ""):
                raise _Error(403, f"cross-site request refused (from {parts.netloc!r:.100})")
        token = request.headers.get("x-csrf-token") or form.get("csrf", "")
        if not hmac.compare_digest(token.encode(), self.csrf.encode()):
            raise _Error(403, "missing or wrong CSRF token: reload the page and try again")

    async def action(self, request: Request) -> Response:
        action = request.path_params["action"]
        wants_json = "application/json" in request.headers.get("accept", "")

        async def act() -> Response:
            if action not in ("cancel", "terminate", "signal"):
                raise _Error(404, f"no such action {action!r:.40}: cancel, terminate or signal")
            if self.csrf is None:
                raise _Error(403, "actions are off: start the UI with --allow-actions")
            form = await _form(request)
            self._check_request(request, form)
            instance_id, _ = self._id(request)
            handle = Client(self.backend).get_handle(instance_id)
            await self.backend.open()
            reason = form.get("reason", "").strip()
            if action == "cancel":
                await handle.cancel(reason or "cancelled from the web UI")
                done = "cancel requested"
            elif action == "terminate":
                await handle.terminate(reason or "terminated from the web UI")
                done = "terminated"
            else:
                name = form.get("name", "").strip()
                if not name:
                    raise _Error(400, "a signal needs a name")
                raw = form.get("value", "").strip()
                try:
                    value = json.loads(raw) if raw else None
                except json.JSONDecodeError as exc:
                    raise _Error(400, f"the signal value is not valid JSON: {exc}") from None
                await handle.signal(name, value)
                done = f"signal {name!r} sent"
            self._stats = None
            if wants_json:
                return _json({"ok": True, "id": instance_id, "action": action, "done": done})
            back = _pages.url("../run", id=instance_id)
            return RedirectResponse(back, status_code=303, headers=_HEADERS)

        return await self._handle(request, act, api=wants_json)


async def _form(request: Request) -> dict[str, str]:
    """The fields of an action: a form post (urlencoded, parsed here: no multipart library
    needed) or a JSON object."""
    body = await request.body()
    if len(body) > MAX_ACTION_BODY:
        raise _Error(413, f"an action's request body is limited to {MAX_ACTION_BODY} bytes")
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _Error(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _Error(400, "the request body must be a JSON object")
        return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in data.items()}
    if kind.startswith("application/x-www-form-urlencoded"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Error(400, "the form is not UTF-8") from None
        return dict(parse_qsl(text, keep_blank_values=True))
    return {}


def _metrics_app(backend: Backend) -> Any:
    """``/metrics`` for Prometheus: the metrics of this process's workers and the store's
    backlog and run counts (``ostinato.metrics.prometheus_asgi_app``); without
    prometheus_client, a 501 that says what to install."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:

        async def missing(request: Request) -> Response:
            return PlainTextResponse(
                "/metrics needs prometheus_client: pip install 'ostinato[otel]'\n", 501
            )

        return missing
    from ..metrics import prometheus_asgi_app

    return prometheus_asgi_app(backend=backend)


def create_app(backend_or_url: Backend | str, allow_actions: bool = False) -> Starlette:
    """The web UI as an ASGI application.

    ``backend_or_url``: a backend the caller opened (it stays the caller's to close), or a URL
    for ``ostinato.connect`` (the app connects on its first request and closes it on shutdown).
    ``allow_actions``: show signal/cancel/terminate (POST only, same origin, CSRF token).
    """
    if isinstance(backend_or_url, str):
        ui = _UI(connect(backend_or_url), allow_actions=allow_actions, owns_backend=True)
    elif isinstance(backend_or_url, Backend):
        ui = _UI(backend_or_url, allow_actions=allow_actions, owns_backend=False)
    else:
        raise TypeError(
            "create_app() takes a backend (ostinato.connect(...)) or a URL such as "
            f"'sqlite:///app.db', not {type(backend_or_url).__name__}"
        )
    if not isinstance(allow_actions, bool):
        raise TypeError(f"allow_actions must be True or False, not {allow_actions!r:.80}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if ui.owns_backend:
                await ui.backend.close()

    routes = [
        Route("/", ui.list_page),
        Route("/run", ui.run_page),
        Route("/history", ui.history_page),
        Route("/stats", ui.stats_page),
        Route("/static/{name}", ui.static),
        Route("/api/runs", ui.api_runs),
        Route("/api/run", ui.api_run),
        Route("/api/history", ui.api_history),
        Route("/api/stats", ui.api_stats),
        Route("/api/poll", ui.api_poll),
        Route("/api/diagram", ui.api_diagram),
        Route("/api/{action:str}", ui.action, methods=["POST"]),
        Route("/metrics", _metrics_app(ui.backend)),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ostinato_ui = ui
    return app
