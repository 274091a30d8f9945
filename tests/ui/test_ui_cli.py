"""``ostinato ui``: serves the UI, says where and how safely, fails in one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serves_on_loopback_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path}/cli.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ostinato", "ui", url, "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith(f"ostinato ui: http://127.0.0.1:{port}/")
        assert "reachable from this machine only" in line and "read-only" in line
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert "<title>Runs · ostinato</title>" in page and "read-only" in page
        # A request for another host name (DNS rebinding) is refused.
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", headers={"Host": f"evil.example:{port}"}
        )
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as error:
            assert error.code == 400
        else:
            raise AssertionError("a request for evil.example was served")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stderr is not None:
            proc.stderr.close()


def test_a_store_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ostinato", "ui", f"sqlite:///{tmp_path}/no/such/dir/x.db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("ostinato: ")
    result = subprocess.run(
        [sys.executable, "-m", "ostinato", "ui", "nosuch://x", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "port must be between 0 and 65535" in result.stderr
