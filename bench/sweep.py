"""Benchmark: does a sweep use the cores? The same 4 runs with WORKERS=2 and WORKERS=1.

`make bench-sweep [STEPS=6000] [REPEATS=3] [JSON=out.json]` (`python -m bench.sweep`)
times `python -m harness sweep catch_dense --seeds 4 --steps STEPS --workers W`, alternating W=1
and W=2 REPEATS times each so that a change in the machine's load hits both alike. It prints the
median of each for the runs (first start to last finish, from the sweep's sweep.json) and for the
whole command as a user waits for it, and the ratios W=2 / W=1 (target <= 0.65: two workers on two
cores, less what cannot overlap). Runs go to a temporary folder that is removed afterwards. The
load average is printed with each measurement: on a shared machine, other processes' load slows the
parallel sweep most.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cli import OneLineParser, positive_int, run_main
from harness.core import files

BENCH_DIR = Path(__file__).resolve().parent

TARGET_RATIO = 0.65


def time_sweep(workers: int, steps: int, seeds: int, runs_dir: Path) -> dict[str, Any]:
    """Wall seconds of one sweep command, and its runs' steps/s from its sweep.json."""
    args = [
        sys.executable,
        "-m",
        "harness",
        "sweep",
        "catch_dense",
        "--seeds",
        str(seeds),
        "--steps",
        str(steps),
        "--workers",
        str(workers),
        "--runs-dir",
        str(runs_dir),
    ]
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    result = subprocess.run(args, cwd=BENCH_DIR.parent, capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"error: the sweep failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    record_path = next((runs_dir / "sweeps").glob("*/sweep.json"))  # a fresh runs_dir: one sweep
    record = json.loads(record_path.read_text())
    return {
        "workers": workers,
        "threads_per_run": record["threads_per_run"],
        "wall_seconds": round(wall, 2),
        "runs_wall_seconds": record["runs_wall_seconds"],
        "steps_per_second": [r["steps_per_second"] for r in record["runs"]],
        "load_before": round(load_before, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int("--steps"), default=6000, help="training steps per run (6000)")
    parser.add_argument("--repeats", type=positive_int("--repeats"), default=3, help="measurements of each setting (3)")
    parser.add_argument("--json", help="also write the measurements here")
    return run_main(parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    seeds = 4
    base = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    from harness.launch.sweep import machine_cores

    print(
        f"4 catch_dense runs of {args.steps:,} steps, WORKERS=1 vs WORKERS=2, {args.repeats} times each, "
        f"alternating; {machine_cores()} cores",
        flush=True,
    )
    measurements: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeats):
            for workers in (1, 2):
                m = time_sweep(workers, args.steps, seeds, base / f"r{repeat}-w{workers}")
                measurements.append(m)
                sps = statistics.median(m["steps_per_second"])
                print(
                    f"  WORKERS={workers}: runs {m['runs_wall_seconds']:6.1f} s, command {m['wall_seconds']:6.1f} s  "
                    f"(median run {sps:,.0f} steps/s, "
                    f"{m['threads_per_run']} thread(s) per run, load average before {m['load_before']})",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report: dict[str, Any] = {"steps": args.steps, "runs": seeds, "measurements": measurements, "target": TARGET_RATIO}
    for key, what in (
        ("runs_wall_seconds", "runs (first start to last finish)"),
        ("wall_seconds", "whole command (with start-up, table and plot)"),
    ):
        medians = {w: statistics.median(m[key] for m in measurements if m["workers"] == w) for w in (1, 2)}
        ratio = medians[2] / medians[1]
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        print(
            f"median {what}: WORKERS=1 {medians[1]:.1f} s, WORKERS=2 {medians[2]:.1f} s; "
            f"ratio {ratio:.2f} ({verdict} the target <= {TARGET_RATIO})"
        )
        report[f"median_{key}"] = {"1": medians[1], "2": medians[2], "ratio": round(ratio, 3)}
    if args.json:
        files.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
