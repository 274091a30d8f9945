"""``python -m ostinato_lint PATH...`` and the ``ostinato-lint`` console script."""

from __future__ import annotations

from ostinato_lint.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
