"""Cost of the runtime guard (python/ostinato/_guard.py) on workflow-shaped code.

    python benchmarks/bench_guard.py [--steps 200000] [--repeat 5]

Audit hooks cannot be removed once added, so every case runs in a fresh interpreter:

    not installed   no hook at all (the baseline)
    installed, idle hook registered, code runs outside any guarded slice
    mode OFF        each step wrapped in guarding(name, GuardMode.OFF) (which installs nothing)
    mode WARN       each step wrapped in guarding(name, GuardMode.WARN)

Workloads:
    steps   a workflow driven one step at a time, as the engine does: per step, enter the
            slice, resume the coroutine, which makes a few plain calls and awaits once
    events  audited-but-harmless operations (sys._getframe, which raises an audit event) inside
            one slice: the per-event price of the hook

Figures are best-of-N wall time; no assertions (it prints, you read).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from types import ModuleType
from typing import Any

CASES = ["not installed", "installed, idle", "mode OFF", "mode WARN"]
GUARD_FILE = Path(__file__).resolve().parents[1] / "python" / "ostinato" / "_guard.py"


def load_guard() -> ModuleType:
    try:
        from ostinato import _guard

        return _guard
    except ImportError:  # the extension is not built: load the (self-contained) module alone
        spec = importlib.util.spec_from_file_location("ostinato_guard_bench", GUARD_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


class _Yield:
    """The smallest awaitable that suspends once, like a workflow awaiting a command."""

    def __await__(self) -> Generator[None, None, None]:
        yield


def _work(x: int) -> int:
    return x * 2 + 1


async def _workflow(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += _work(i)
        total += _work(total & 0xFF)
        total = max(total, _work(3)) & 0xFFFF
        await _Yield()
    return total


def run_steps(steps: int, enter: Callable[[], Any]) -> float:
    coroutine = _workflow(steps)
    started = time.perf_counter()
    try:
        while True:
            with enter():
                coroutine.send(None)
    except StopIteration:
        pass
    return time.perf_counter() - started


def run_events(count: int, enter: Callable[[], Any]) -> float:
    getframe = sys._getframe
    started = time.perf_counter()
    with enter():
        for _ in range(count):
            getframe()
    return time.perf_counter() - started


def child(case: str, steps: int, repeat: int) -> dict[str, float]:
    import contextlib

    guard = None if case == "not installed" else load_guard()
    if guard is None:
        enter: Callable[[], Any] = contextlib.nullcontext
    elif case == "installed, idle":
        guard.install()
        enter = contextlib.nullcontext
    else:  # guarding() installs the hook itself unless the mode is OFF
        mode = guard.GuardMode.OFF if case == "mode OFF" else guard.GuardMode.WARN

        def enter() -> Any:
            return guard.guarding("bench", mode)

    return {
        "steps": min(run_steps(steps, enter) for _ in range(repeat)) / steps * 1e9,
        "events": min(run_events(steps, enter) for _ in range(repeat)) / steps * 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(child(args.case, args.steps, args.repeat)))
        return
    results = {}
    for case in CASES:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                case,
                "--steps",
                str(args.steps),
                "--repeat",
                str(args.repeat),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results[case] = json.loads(out)
    base = results["not installed"]
    print(f"Python {sys.version.split()[0]}, {args.steps} steps/events, best of {args.repeat}")
    print(f"{'case':<18}{'ns/step':>10}{'ratio':>8}{'ns/event':>11}{'ratio':>8}")
    for case, figures in results.items():
        print(
            f"{case:<18}{figures['steps']:>10.1f}{figures['steps'] / base['steps']:>8.3f}"
            f"{figures['events']:>11.1f}{figures['events'] / base['events']:>8.3f}"
        )


if __name__ == "__main__":
    main()
