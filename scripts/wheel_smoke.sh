#!/usr/bin/env bash
# Build the release wheel (abi3) with maturin, install it into a fresh virtualenv with no Rust
# toolchain on PATH, and run a workflow on SQLite from outside the source tree: proves the
# wheel carries the compiled core, the stubs and py.typed, and needs nothing but its
# dependencies. Usage: scripts/wheel_smoke.sh [python]   (takes a minute or two: a release build)
source "$(dirname "$0")/_env.sh"

export PIP_DISABLE_PIP_VERSION_CHECK=1
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS

step "maturin build --release"
python -m pip install -q "maturin>=1.7,<2"
maturin build --release --quiet --out "$WORK/dist" --interpreter "${1:-$VENV/bin/python}"
wheel="$(ls "$WORK"/dist/ostinato-*.whl)"
echo "built $(basename "$wheel")"
case "$(basename "$wheel")" in
    *-abi3-*) ;;
    *) echo "error: the wheel is not abi3: $(basename "$wheel")" >&2; exit 1 ;;
esac
python - "$wheel" <<'EOF'
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
names = wheel.namelist()
# The SQL the backends load at run time lives in .sql files beside the Python sources, and the
# web UI's front-end ships inside the wheel (no Node.js, no CDN at install or run time).
for wanted in ("ostinato/py.typed", "ostinato/_core.pyi",
               "ostinato/_backends/sql/sqlite/queries.sql",
               "ostinato/_backends/sql/sqlite/0001_initial.sql",
               "ostinato/_backends/sql/postgres/queries.sql",
               "ostinato/_backends/sql/postgres/0001_initial.sql",
               "ostinato/ui/static/ui.css", "ostinato/ui/static/ui.js"):
    if wanted not in names:
        sys.exit(f"error: the wheel lacks {wanted}")
# python/ostinato/_core.pyi is a link to the one stub file, stubs/ostinato/_core.pyi
if wheel.read("ostinato/_core.pyi") != open("stubs/ostinato/_core.pyi", "rb").read():
    sys.exit("error: the wheel's ostinato/_core.pyi is not stubs/ostinato/_core.pyi")
if not any(n.startswith("ostinato/_core") and n.endswith((".so", ".pyd")) for n in names):
    sys.exit("error: the wheel lacks the compiled ostinato._core")
EOF

step "install into a fresh virtualenv (no Rust on PATH)"
"$PY" -m venv "$WORK/venv"
# Only the new venv and the system directories: no cargo, rustc or .venv.
CLEAN_PATH="$WORK/venv/bin:/usr/bin:/bin"
env -i PATH="$CLEAN_PATH" HOME="$WORK" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$WORK/venv/bin/python" -m pip install -q "$wheel"
if env -i PATH="$CLEAN_PATH" sh -c 'command -v cargo || command -v rustc' >/dev/null; then
    echo "error: a Rust toolchain is on the clean PATH" >&2
    exit 1
fi

step "run a workflow on SQLite"
cat >"$WORK/smoke_app.py" <<'EOF'
import asyncio, os, stat, sys
from datetime import timedelta

import ostinato
from ostinato import activity, workflow

assert "site-packages" in ostinato.__file__, ostinato.__file__


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn
async def smoke(name: str) -> str:
    greeting = await workflow.execute_activity(
        greet, name, start_to_close_timeout=timedelta(seconds=10)
    )
    await workflow.sleep(0.01)
    return greeting


async def main() -> None:
    path = os.path.join(sys.argv[1], "smoke.db")
    backend = ostinato.connect(f"sqlite:///{path}")
    async with ostinato.Worker(backend, workflows=[smoke], activities=[greet]):
        client = ostinato.Client(backend)
        handle = await client.start_workflow(smoke, "wheel", id="smoke-1")
        assert await handle.result(timeout=30) == "hello wheel"
    await backend.close()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o077 == 0, f"the database file is {mode:o}, not private"
    print(f"workflow ran from {ostinato.__file__}; database mode {mode:o}")


asyncio.run(main())
EOF
(cd "$WORK" && env -i PATH="$CLEAN_PATH" HOME="$WORK" "$WORK/venv/bin/python" smoke_app.py "$WORK")
env -i PATH="$CLEAN_PATH" HOME="$WORK" "$WORK/venv/bin/ostinato" list "sqlite:///$WORK/smoke.db"
echo "wheel smoke test passed in $((SECONDS - started))s"
