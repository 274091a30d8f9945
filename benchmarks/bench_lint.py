"""Speed of the analyzer (ostinato-lint) against flake8's default checks, on the same files.

    python benchmarks/bench_lint.py [--files 600] [--repeat 3] [--keep DIR]

Generates a corpus of workflow-shaped modules (ostinato, Temporal and DBOS workflows, activities,
helpers and plain modules, ~70 lines each, seeded so every run sees the same files), then times:

    ostinato-lint, in process   lint_paths() over the directory (what the flake8 plugin and the
                                runner share)
    ostinato-lint, CLI          python -m ostinato_lint DIR (one process, start-up included)
    flake8 (default checks)     python -m flake8 --isolated -j 1 DIR: pyflakes, pycodestyle,
                                mccabe (E, F, W, C90), with the ostinato-lint plugin left out so
                                that only flake8's own checks are timed

Both command lines run single-process.  Figures are best-of-N wall time; no assertions (it
prints, you read).  flake8 is optional: without it, its line says so and the rest still runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("ostinato_lint") is None:  # not installed: use the source tree
    sys.path.insert(0, str(ROOT / "analyzer"))

from ostinato_lint import lint_paths  # noqa: E402

# flake8 with every plugin except ours (the entry point is installed next to flake8)
_FLAKE8_WITHOUT_OST = """
import sys
from flake8.plugins import finder
_find = finder.find_plugins
finder.find_plugins = lambda *a, **k: [p for p in _find(*a, **k) if p.package != "ostinato-lint"]
from flake8.main.cli import main
sys.exit(main(sys.argv[1:]))
"""

OSTINATO = '''\
"""Orders, module {n}."""

import asyncio
import time
from datetime import timedelta

from ostinato import RetryPolicy, activity, workflow

RETRY = RetryPolicy(max_attempts={attempts}, initial_interval=timedelta(seconds=1))


@activity.defn
async def reserve_{n}(order_id: str, sku: str) -> str:
    return f"{{order_id}}:{{sku}}:{{time.time()}}"


@activity.defn
def release_{n}(reservation: str) -> None:
    print("released", reservation)


class Pricing{n}:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.seen: set[str] = set()

    def price(self, amount: int) -> float:
        return amount * self.rate

    def tags(self) -> list[str]:
        return sorted(self.seen)


def total_{n}(values: list[float]) -> float:
    subtotal = 0.0
    for value in values:
        if value > {limit}:
            subtotal += value * 0.9
        else:
            subtotal += value
    return round(subtotal, 2)


@workflow.defn(name="orders.process.{n}")
async def process_{n}(order_id: str, skus: list[str]) -> float:
    approvals = workflow.signal_channel("approve", type=bool)
    pricing = Pricing{n}(1.{n})
    reservations: list[str] = []
    try:
        for sku in skus:
            reservation = await workflow.execute_activity(
                reserve_{n}, order_id, sku, retry=RETRY,
                start_to_close_timeout=timedelta(seconds=30),
            )
            reservations.append(reservation)
        if not await approvals.receive(timeout=timedelta(days=1)):
            raise RuntimeError("not approved")
    except BaseException:
        for reservation in reversed(reservations):
            await asyncio.shield(workflow.execute_activity(release_{n}, reservation))
        raise
    {bad}
    await workflow.sleep(timedelta(hours={hours}))
    return total_{n}([pricing.price(len(r)) for r in reservations])
'''

TEMPORAL = '''\
"""Greeting workflow {n} (Temporal)."""

import asyncio
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def compose_{n}(name: str) -> str:
    return f"Hello, {{name}} #{n}"


@workflow.defn
class Greeter{n}:
    def __init__(self) -> None:
        self.pending: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, name: str) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.pending) or self.done)
        tasks = [
            asyncio.create_task(
                workflow.execute_activity(
                    compose_{n}, extra, start_to_close_timeout=timedelta(seconds={hours})
                )
            )
            for extra in self.pending
        ]
        await workflow.wait(tasks)
        results = [task.result() for task in tasks]
        {bad}
        stamp = workflow.now().isoformat()
        return [*results, stamp, str(workflow.uuid4())]

    @workflow.signal
    def add(self, name: str) -> None:
        self.pending.append(name)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def count(self) -> int:
        return len(self.pending)

    @workflow.update
    async def rename(self, index: int, name: str) -> str:
        if not 0 <= index < len(self.pending):
            raise ValueError("no such entry")
        self.pending[index] = name
        return name
'''

DBOS = '''\
"""Checkout app {n} (DBOS)."""

import random

from dbos import DBOS


def create_app_{n}() -> None:
    @DBOS.step()
    def charge(customer: str, cents: int) -> str:
        return f"{{customer}}-{{cents}}-{{random.random()}}"

    @DBOS.transaction()
    def record(receipt: str) -> None:
        print(receipt)

    @DBOS.workflow()
    def checkout(customer: str, items: dict[str, int]) -> str:
        receipt = charge(customer, sum(items.values()))
        record(receipt)
        for sku in sorted(items):
            DBOS.send(customer, sku)
        {bad}
        DBOS.sleep({hours})
        return receipt

    @DBOS.workflow()
    def nightly() -> None:
        DBOS.start_workflow(checkout, "batch", {{"a": {limit}}})

    print(checkout, nightly)
'''

PLAIN = '''\
"""Utilities {n}: not workflow code at all."""

import json
import os
import time
from dataclasses import dataclass, field


@dataclass
class Record{n}:
    key: str
    values: list[int] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def total(self) -> int:
        return sum(self.values)

    def as_json(self) -> str:
        return json.dumps({{"key": self.key, "values": self.values}})


def load_{n}(path: str) -> list[Record{n}]:
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        raw = json.load(handle)
    return [Record{n}(item["key"], item.get("values", [])) for item in raw]


def summarize_{n}(records: list[Record{n}]) -> dict[str, int]:
    summary: dict[str, int] = {{}}
    for record in records:
        bucket = record.key[:{hours}]
        summary[bucket] = summary.get(bucket, 0) + record.total()
    return dict(sorted(summary.items()))


def busiest_{n}(records: list[Record{n}], limit: int = {limit}) -> list[str]:
    ranked = sorted(records, key=lambda r: (-r.total(), r.key))
    return [record.key for record in ranked[:limit]]
'''

BAD = {
    "ostinato": [
        "pass",
        "started = time.time()",
        "workflow.logger.info('tags %s', [t for t in pricing.seen])",
    ],
    "temporal": ["pass", "workflow.logger.info('%s', hash(name))"],
    "dbos": ["pass", "print(random.random())"],
}


def generate(directory: Path, files: int) -> tuple[int, int]:
    """Write ``files`` modules; returns (files, lines)."""
    rng = random.Random(15)
    kinds = [("ostinato", OSTINATO), ("temporal", TEMPORAL), ("dbos", DBOS), ("plain", PLAIN)]
    lines = 0
    for n in range(files):
        kind, template = kinds[n % len(kinds)]
        bad = rng.choice(BAD.get(kind, ["pass"]))
        source = template.format(
            n=n,
            attempts=rng.randint(2, 9),
            limit=rng.randint(10, 99),
            hours=rng.randint(1, 9),
            bad=bad,
        )
        package = directory / f"pkg{n // 50}"
        package.mkdir(exist_ok=True)
        (package / f"{kind}_{n}.py").write_text(source)
        lines += source.count("\n")
    return files, lines


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as scratch:
        corpus = args.keep or Path(scratch)
        corpus.mkdir(parents=True, exist_ok=True)
        files, lines = generate(corpus, args.files)
        print(f"corpus: {files} files, {lines} lines in {corpus}")

        findings = len(lint_paths([corpus]).findings)
        in_process = best_of(args.repeat, lambda: lint_paths([corpus]))
        print(
            f"ostinato-lint, in process: {in_process * 1000:9.1f} ms "
            f"({files / in_process:,.0f} files/s, {findings} findings)"
        )

        def cli() -> None:
            subprocess.run(
                [sys.executable, "-m", "ostinato_lint", "--exit-zero", str(corpus)],
                check=True,
                capture_output=True,
            )

        cli_time = best_of(args.repeat, cli)
        print(f"ostinato-lint, CLI:        {cli_time * 1000:9.1f} ms")

        if importlib.util.find_spec("flake8") is None:
            print("flake8 (default checks): not installed, skipped (pip install flake8)")
            return

        def flake8() -> None:
            command = [sys.executable, "-c", _FLAKE8_WITHOUT_OST, "--isolated", "-j", "1"]
            completed = subprocess.run(
                [*command, "-q", "--exit-zero", str(corpus)],
                capture_output=True,
                text=True,
            )
            if completed.returncode != 0:
                raise RuntimeError(f"flake8 failed: {completed.stderr}")

        flake8_time = best_of(args.repeat, flake8)
        print(f"flake8 (default checks):   {flake8_time * 1000:9.1f} ms")
        print(
            f"ratio: ostinato-lint CLI is {flake8_time / cli_time:.1f}x faster than flake8 "
            f"({flake8_time / in_process:.1f}x in process)"
        )


if __name__ == "__main__":
    main()
