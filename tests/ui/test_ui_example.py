"""examples/web_ui.py: the UI mounted under /ostinato in a user's Starlette service."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import uvicorn

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web_ui.py"


def load() -> Any:
    spec = importlib.util.spec_from_file_location("examples_web_ui", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fetch(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.read()


def test_the_ui_mounted_in_a_service(tmp_path: Path) -> None:
    app = load().build(f"sqlite:///{tmp_path}/invoices.db")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        status, body = fetch(base + "/invoices?customer=ada", "POST")
        started = orjson.loads(body)
        assert status == 201 and started["see"] == f"/ostinato/run?id={started['id']}"
        while True:
            run = orjson.loads(fetch(f"{base}/ostinato/api/run?id={started['id']}")[1])
            if run["status"] != "running":
                break
            assert time.monotonic() < deadline + 20
            time.sleep(0.05)
        assert (run["status"], run["result"]) == ("completed", "sent to ada")
        assert run["vars"] == {"stage": "sent"}
        # The pages' relative links work under the mount point, with or without its slash.
        status, page = fetch(base + "/ostinato")
        assert status == 200 and started["id"].encode() in page
        assert fetch(base + "/ostinato/static/ui.css")[0] == 200
        status, page = fetch(base + started["see"])
        assert status == 200 and b"sent to ada" in page
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_the_mounting_snippet_of_the_docs_runs() -> None:
    import re

    from starlette.applications import Starlette
    from starlette.routing import Mount

    docs = (Path(__file__).resolve().parents[2] / "docs" / "ui.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/ui.md", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, Starlette)
    (mount,) = app.routes
    assert isinstance(mount, Mount) and mount.path == "/ostinato"
