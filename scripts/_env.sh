# Shared set-up for scripts/demo.sh and scripts/check.sh: a virtualenv in .venv with the
# package (Rust extension included) installed in editable mode. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "error: cargo (Rust) is needed to build ostinato's core; install it with rustup" >&2
        exit 1
    fi
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PY" -m venv .venv
fi
VENV="$ROOT/.venv"
export PATH="$VENV/bin:$PATH"
step() { printf '\n==> %s\n' "$*"; }
