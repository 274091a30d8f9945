"""Regenerate docs/lint/OSTnnn.md and the rule table in docs/lint/index.md.

python analyzer/scripts/gen_docs.py          # write
python analyzer/scripts/gen_docs.py --check  # exit 1 if anything is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from ostinato_lint.docs import expected_docs

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "lint"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, content in expected_docs(DOCS_DIR).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path}")
    if check and stale:
        print("out of date: " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
