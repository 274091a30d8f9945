#!/usr/bin/env bash
# Install everything and run every check: Rust fmt/clippy/tests, ruff, mypy --strict,
# stubtest, and the whole pytest suite (which starts a throwaway PostgreSQL server unless
# OSTINATO_TEST_PG_URL points at one).
source "$(dirname "$0")/_env.sh"

step "PostgreSQL server binaries"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    if [ -z "${OSTINATO_TEST_PG_URL:-}" ]; then
        echo "installing the postgresql package"
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    fi
fi

step "Chromium and its driver (web UI tests)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "${OSTINATO_SKIP_BROWSER_TESTS:-}" != 1 ]; then
        echo "installing the chromium and chromium-driver packages"
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver \
            fonts-dejavu-core >/dev/null
    fi
fi

step "Python dependencies"
python -m pip install -q -U pip
python -m pip install -q -r requirements-dev.txt
python -m pip install -q -e . -e ./analyzer

step "cargo fmt / clippy / test"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test -p ostinato-core --quiet

step "ruff"
ruff check .
ruff format --check .

step "mypy --strict"
mypy

step "stubtest"
python -m mypy.stubtest ostinato._core --allowlist stubs/allowlist.txt

step "release wheel smoke test (OSTINATO_SKIP_WHEEL=1 skips it)"
if [ "${OSTINATO_SKIP_WHEEL:-}" != 1 ]; then
    bash scripts/wheel_smoke.sh
fi

step "pytest"
set +e
python -m pytest -q "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
