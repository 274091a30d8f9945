"""Every script in benchmarks/ runs with tiny sizes, so none can rot.

Each script runs as a user would run it (a subprocess of its own), finishes, and prints its
figures. Nothing about the figures is asserted beyond their presence: timings belong in the
issue notes, never in a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"

# script -> (tiny arguments, a line every complete run prints)
TINY: dict[str, tuple[list[str], list[str]]] = {
    "bench_core.py": (
        [
            *("--workflows", "20", "--samples", "5", "--replay-activities", "50"),
            *("--parked", "20", "--rounds", "1"),
        ],
        ["(a) throughput", "(b) start-to-result", "(c) cold replay", "(d) RSS", "(e) observ"],
    ),
    "bench_backend.py": (
        ["--workflows", "20", "--pollers", "2"],
        ["sqlite group commit", "sqlite 1 tx per op", "memory"],
    ),
    "bench_guard.py": (["--steps", "200", "--repeat", "1"], ["ns/step"]),
    "bench_lint.py": (
        ["--files", "12", "--repeat", "1"],
        ["ostinato-lint, in process", "ostinato-lint, CLI", "flake8 (default checks)"],
    ),
    "bench_queues.py": (
        [
            *["--workflows", "4", "--activities", "3", "--fires", "3"],
            *["--backlog", "20", "--claims", "5"],
        ],
        [
            *("memory   unlimited", "sqlite   limited, not binding", "postgres limited, binding"),
            *("memory   schedule-fired", "sqlite   client-started", "postgres schedule-fired"),
            *("memory   claim, priority 0", "postgres claim, priorities 0..9"),
        ],
    ),
    # No network installs in the test suite: the peers are skipped, ostinato's side runs on
    # SQLite and on the test PostgreSQL server (--pg-url, added below).
    "bench_peers.py": (
        ["--skip-dbos", "--skip-go", "--workflows", "10", "--samples", "3", "--trees", "1"],
        [
            "[sqlite] throughput, 10 x 3 activities started one after another",
            "[sqlite] throughput, backlog of 10",
            "[sqlite] latency, 3 activities",
            "[sqlite] latency, 1 activity",
            "[sqlite] tree",
            "[postgres] throughput, 10 x 3 activities started one after another",
            "[postgres] throughput, backlog of 10",
            "[postgres] latency, 3 activities",
            "[postgres] latency, 1 activity",
            "[postgres] tree",
            "    ostinato ",
        ],
    ),
    "bench_postgres.py": (
        ["--workflows", "20", "--processes", "1", "--trees", "1", "--samples", "3"],
        ["baseline:", "(a) throughput", "(b) start-to-result", "(c) commit-to-claim", "(d) tree"],
    ),
}


def test_every_benchmark_has_tiny_sizes() -> None:
    scripts = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(TINY), "give every script in benchmarks/ tiny sizes in TINY"


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_with_tiny_sizes(script: str, request: pytest.FixtureRequest) -> None:
    args, expected = TINY[script]
    env = dict(os.environ)
    if script in ("bench_postgres.py", "bench_queues.py"):
        env["OSTINATO_BENCH_PG_URL"] = request.getfixturevalue("postgres_url")
    if script == "bench_peers.py":
        args = [*args, "--pg-url", request.getfixturevalue("postgres_url")]
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, f"{script} failed:\n{out.stdout}\n{out.stderr}"
    print(out.stdout)
    for line in expected:
        assert line in out.stdout, f"{script} did not print {line!r}:\n{out.stdout}"


def test_bench_peers_rejects_an_unknown_workload() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_peers.py"), "--only", "client,nonsense"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 2
    assert "unknown workload(s) nonsense; choose from client, backlog" in out.stderr
