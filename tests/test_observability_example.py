"""examples/observability.py runs as a user would run it and shows what it promises: the
trace as one tree, JSON logs with the run's ids, and a real scrape of /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_observability_example(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "observability.py"),
            "--db",
            str(tmp_path / "o.db"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "result: receipt-o-17 parcel-o-17" in text

    tree = text.split("\ntrace:\n")[1].split("\n\nmetrics")[0].splitlines()
    shape = [(len(line) - len(line.lstrip())) // 4 for line in tree]
    names = [line.strip().split("  (")[0] for line in tree]
    assert list(zip(shape, names, strict=True)) == [
        (0, "POST /orders"),
        (1, "StartWorkflow:place_order"),
        (2, "RunWorkflow:place_order"),
        (3, "RunActivity:charge"),
        (3, "RunActivity:charge"),
        (3, "RunWorkflow:ship"),
        (4, "RunActivity:book_courier"),
    ]
    assert "attempt 1; retrying" in tree[3] and "attempt 2; completed" in tree[4]
    assert "events: signal, child started, child completed, timer started, timer fired" in tree[2]

    logs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    charged = next(entry for entry in logs if entry["message"] == "charged 4200 cents")
    assert charged["logger"] == "shop"
    assert (charged["instance_id"], charged["activity_name"], charged["attempt"]) == (
        "o-17",
        "charge",
        2,
    )
    received = next(entry for entry in logs if entry["message"].endswith("order received"))
    assert received["workflow_name"] == "place_order" and "activity_name" not in received

    metrics = text.split("\nmetrics (from http://127.0.0.1:")[1]
    assert (
        'ostinato_activity_attempts_total{activity="charge",outcome="retrying",queue="default"} 1.0'
        in metrics
    )
    assert (
        'ostinato_workflows_closed_total{queue="default",status="completed",workflow="place_order"}'
        " 1.0" in metrics
    )
