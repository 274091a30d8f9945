"""The README's Python examples run as written (the README shows only what works)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, Any] = {"__name__": "readme"}
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the first example writes app.db in the current directory
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
        tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
        assert tests
        for test in tests:
            asyncio.run(test())
    finally:
        os.chdir(cwd)
    assert (tmp_path / "app.db").exists()
