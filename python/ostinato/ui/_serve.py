"""``ostinato ui URL``: serve the web UI with uvicorn."""

from __future__ import annotations

import asyncio
import ipaddress
import sys

from .._connect import connect

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8233


async def _probe(url: str) -> None:
    backend = connect(url)
    try:
        await backend.open()
    finally:
        await backend.close()


LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    url: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_actions: bool = False,
) -> int:
    """Serve the UI of the store at ``url`` until interrupted; says where, and how safely."""
    import uvicorn
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.types import ASGIApp

    from ._app import create_app

    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {port}")
    # Fail now, in one line, on a store that cannot be opened (not on the first page).
    asyncio.run(_probe(url))
    app: ASGIApp = create_app(url, allow_actions=allow_actions)
    if _is_loopback(host):
        # Only requests addressed to this machine: a page of another site whose name was
        # made to resolve to 127.0.0.1 (DNS rebinding) is refused instead of reading the UI.
        app = TrustedHostMiddleware(app, allowed_hosts=LOOPBACK_NAMES)
    shown = f"[{host}]" if ":" in host else host
    reach = (
        "reachable from this machine only"
        if _is_loopback(host)
        else "REACHABLE FROM OTHER MACHINES: anyone who can connect sees every payload"
    )
    mode = (
        "actions ON (signal, cancel, terminate)"
        if allow_actions
        else "read-only (--allow-actions to signal, cancel, terminate)"
    )
    print(f"ostinato ui: http://{shown}:{port}/ — {reach}; {mode}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    uvicorn.Server(config).run()
    return 0
