#!/usr/bin/env python3
"""Start a throwaway PostgreSQL for local development and print its URL.

    python scripts/pg_test_server.py            # runs until Ctrl-C, then removes everything
    python scripts/pg_test_server.py --db app   # also creates database "app"

Uses the same code as the test fixture (tests/_pg.py): a fresh cluster in a temp dir,
127.0.0.1 only, a free port, fsync=off (no durability: for tests and experiments only), run as
the ``postgres`` user when started as root. Export the printed URL as OSTINATO_TEST_PG_URL to
run the test suite against this server instead of starting one per session.

Needs the server binaries: ``apt-get install -y postgresql`` on Debian/Ubuntu.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _pg import INSTALL_HINT, PgServer, find_pg_bindir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="ostinato", help="database to create (default ostinato)")
    args = parser.parse_args()
    bindir = find_pg_bindir()
    if bindir is None:
        print(f"PostgreSQL server binaries not found; {INSTALL_HINT}", file=sys.stderr)
        return 1
    server = PgServer(bindir)
    try:
        server.init()
        server.start()
        import psycopg

        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{args.db}"')  # type: ignore[arg-type]
        print(server.url(args.db), flush=True)
        print(f"(data in {server.root}; Ctrl-C stops and removes it)", file=sys.stderr)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
