#!/usr/bin/env bash
# Build ostinato and run the subscription sample app on embedded SQLite.
source "$(dirname "$0")/_env.sh"
step "installing ostinato (builds the Rust core; the first build takes a minute or two)"
python -m pip install -q -U pip
python -m pip install -q -e .
step "running examples/subscription.py on sqlite:///demo.db"
exec python examples/subscription.py --db demo.db "$@"
