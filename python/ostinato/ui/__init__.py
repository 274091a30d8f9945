"""ostinato's web UI: see every workflow run, its timeline and history, live.

``create_app(backend_or_url, allow_actions=False)`` returns an ASGI application to mount in
a Starlette/FastAPI service or to serve with any ASGI server; ``ostinato ui URL`` serves it
with uvicorn. Needs the ``ui`` extra: ``pip install 'ostinato[ui]'``. See docs/ui.md.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "ostinato.ui needs the web UI's dependencies: pip install 'ostinato[ui]'"
    ) from exc

from ._app import create_app

__all__ = ["create_app"]
