"""Benchmark: the fast training path against keras-rl's stock DQNAgent (`make bench`).

`python -m bench.speed [--reps 3] [--steps 4000] [--cave-steps 3000] [--out bench]` measures, each
run in a fresh Python process (so that its peak RSS is its own), training through the real runner
(`harness.run.runner.run`: the experiment's callbacks, logging and checkpoints included) on three
paths (PATHS): `stock` (keras-rl's DQNAgent, `fast_path=false`, oneDNN off), `fast-old` (the fast
path with oneDNN off, the baseline of the speed targets), `fast` (the fast path with the
experiment's own defaults), and the replay settings on top of `fast` (REPLAY_PATHS: `fast-per`,
prioritized replay; `fast-n3`, 3-step returns):

1. catch_dense, `--reps` times on each path, alternating the paths so that a change in the
   machine's load hits both alike: the median env steps/s of the training loop, the ratio of the
   medians, and the peak RSS. The experiment's settings except a short budget with a short warm-up
   (`nb_steps_warmup=200`), so that nearly every step trains (train_interval 1, batch 32).
2. cave_conv the same way (its own train_interval 4 and 4-frame window; warm-up 500): train steps/s,
   i.e. training batches per second of the training loop (env steps included), and env steps/s.
3. Memory flatness: catch_dense and cave_conv on both paths with a replay memory of 1,000
   transitions, so that it fills early; the resident set size is sampled every 100 steps, and the
   drift after the memory is full (median of the last third of the samples minus median of the
   first third) and the range of the samples are reported. These runs fix glibc's mmap threshold
   (FLAT_ENV, see there), so they are slower and their speed is not reported.

Targets (printed with each figure): fast >= 6x stock on catch_dense; cave_conv faster on the fast
path; fast >= TARGET_NEW x fast-old (catch_dense env steps/s, cave_conv train steps/s); no run grows
by more than FLAT_TOLERANCE_MB after its memory is full; prioritized replay costs at most
PER_COST of `fast`'s speed (catch_dense env steps/s, cave_conv train steps/s). The results go to
`<out>/results.json` and `<out>/results.md` (docs/results.md quotes the latter); the exit status
is 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cli import OneLineParser, positive_int, run_main

BENCH_DIR = Path(__file__).resolve().parent

TARGET_RATIO = 6.0
# Drift allowed after the memory is full: the median RSS of the last third of the samples minus
# that of the first third (the per-episode logs grow by tens of KB; a leak of 2 KB a step would
# pass this within one run).
FLAT_TOLERANCE_MB = 5.0
# The flatness runs fix glibc's mmap threshold. By default glibc raises it after the first large
# free, so the convolutions' multi-MB temporary buffers then come from the heap, which keeps freed
# blocks and hands them back in bursts: cave_conv's RSS then swings by 30-70 MB on either path and
# falls back to its floor, which hides a trend. With a fixed threshold large buffers are returned
# at once and RSS shows what the process holds (measured: flat to 1 MB on cave_conv); the speed
# runs keep the default allocator.
FLAT_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
# The paths measured: keras-rl's stock DQNAgent; the fast path as it ran before oneDNN was chosen
# per experiment (always off: the baseline of the speed targets); the fast path with today's
# defaults. FLATNESS_PATHS: the memory-flatness check covers the two code paths.
# REPLAY_PATHS: `fast` plus one replay setting each (harness.kerasrl.prioritized, RingMemory.batch_at).
REPLAY_PATHS = {"fast-per": ("prioritized_replay=true",), "fast-n3": ("n_step=3",)}
PATHS = ("stock", "fast-old", "fast", *REPLAY_PATHS)
FLATNESS_PATHS = ("stock", "fast")
# Speed targets against the fast path with oneDNN off, in the same run (docs/results.md).
TARGET_NEW = {"catch_dense": 1.5, "cave_conv": 2.0}
# The largest share of `fast`'s speed prioritized replay may cost (issue: 20% on catch_dense, whose
# steps are ~250 microseconds of Python; 10% on cave_conv, whose train steps are convolutions).
PER_COST = {"catch_dense": 0.20, "cave_conv": 0.10}
_MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# One measurement (in its own process)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def measure(
    name: str,
    fast: bool,
    steps: int,
    warmup: int,
    memory_limit: int | None = None,
    rss_every: int = 0,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Train `name` for `steps` steps on one path through the runner, in this process."""
    import resource

    import numpy as np

    from harness.core.registry import load_experiment
    from harness.core.schema import apply_overrides, choose_onednn

    exp = load_experiment(name)
    choose_onednn(exp)  # as `python -m harness run` does, before TensorFlow loads
    from harness.kerasrl import compat
    from harness.kerasrl.compat import Callback
    from harness.run.runner import run

    class Probe(Callback):
        """Counts training batches (steps whose metrics are not NaN) and samples the RSS."""

        def __init__(self) -> None:
            super().__init__()
            self.steps = 0
            self.train_steps = 0
            self.samples: list[tuple[int, float]] = []
            self.full_at: int | None = None

        def on_step_end(self, step: int, logs: dict) -> None:
            self.steps += 1
            metrics = logs.get("metrics")
            if metrics is not None and len(metrics) and not np.isnan(metrics[0]):
                self.train_steps += 1
            if rss_every:
                memory = self.model.memory
                if self.full_at is None and memory.nb_entries >= memory.limit:
                    self.full_at = self.steps
                    self.samples.append((self.steps, _rss() / _MB))
                elif self.steps % rss_every == 0:
                    self.samples.append((self.steps, _rss() / _MB))

    probe = Probe()
    changes: dict[str, Any] = dict(
        fast_path=fast,
        nb_steps=steps,
        nb_steps_warmup=warmup,
        seed=0,
        eval_episodes=1,
        callbacks=[lambda run_dir: probe],
    )
    if memory_limit is not None:
        changes["memory_limit"] = memory_limit
    exp = apply_overrides(dataclasses.replace(exp, **changes), list(overrides))
    with tempfile.TemporaryDirectory(prefix="bench-") as runs:
        run_dir = run(exp, runs, command=["bench.speed"], log=io.StringIO())
        summary = json.loads((run_dir / "summary.json").read_text())
    train_seconds = summary["train_seconds"]
    result: dict[str, Any] = {
        "experiment": name,
        "path": "fast" if fast else "stock",
        "overrides": list(overrides),
        "onednn": compat.ONEDNN,
        "steps": summary["steps"],
        "train_seconds": train_seconds,
        "env_steps_per_second": summary["steps"] / train_seconds,
        "train_steps": probe.train_steps,
        "train_steps_per_second": probe.train_steps / train_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
        "memory_limit": exp.memory_limit,
    }
    if rss_every:
        after = [r for s, r in probe.samples if probe.full_at is not None and s >= probe.full_at]
        if len(after) < 6:
            raise SystemExit(
                f"error: {name}: the replay memory filled too late for a flatness check "
                f"(at step {probe.full_at} of {steps})"
            )
        assert probe.full_at is not None  # `after` holds samples from the step it filled on
        third = len(after) // 3
        result.update(
            {
                "memory_full_at_step": probe.full_at,
                "rss_samples_mb": [(s, round(r, 2)) for s, r in probe.samples],
                "rss_at_full_mb": after[0],
                "rss_at_end_mb": after[-1],
                "rss_range_after_full_mb": max(after) - min(after),
                "growth_after_full_mb": statistics.median(after[-third:]) - statistics.median(after[:third]),
                "steps_after_full": probe.steps - probe.full_at,
            }
        )
    return result


def _measure_in_subprocess(
    name: str,
    path: str,
    steps: int,
    warmup: int,
    memory_limit: int | None = None,
    rss_every: int = 0,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    args = [
        sys.executable,
        "-m",
        "bench.speed",
        "--one",
        name,
        "--path",
        path,
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
        "--rss-every",
        str(rss_every),
    ]
    if memory_limit is not None:
        args += ["--memory-limit", str(memory_limit)]
    for setting in REPLAY_PATHS.get(path, ()):
        args += ["--set", setting]
    load_before = os.getloadavg()[0]
    # "fast" and the replay paths on it run with the experiment's own oneDNN setting; "stock" and
    # "fast-old" with oneDNN off, as before it was turned on.
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if path in ("stock", "fast-old"):
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    result = subprocess.run(
        args, cwd=BENCH_DIR.parent, capture_output=True, text=True, env={**env, **(extra_env or {})}
    )
    if result.returncode != 0:
        raise SystemExit(
            f"error: measuring {name} on the {path} path failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["load_before"] = round(load_before, 2)
    return measured


# ---------------------------------------------------------------------------------------------
# The benchmark


def _speed(name: str, reps: int, steps: int, warmup: int, key: str) -> dict[str, Any]:
    """`reps` measurements of each path, alternating; medians and their ratio."""
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}
    for rep in range(reps):
        for path in PATHS if rep % 2 == 0 else PATHS[::-1]:
            measured = _measure_in_subprocess(name, path, steps, warmup)
            runs[path].append(measured)
            print(
                f"  {name:<12} {path:<8} rep {rep + 1}: {measured['env_steps_per_second']:7.1f} env steps/s, "
                f"{measured['train_steps_per_second']:7.1f} train steps/s, "
                f"peak RSS {measured['peak_rss_mb']:.0f} MB (load {measured['load_before']})",
                flush=True,
            )
    medians = {p: statistics.median(r[key] for r in runs[p]) for p in PATHS}
    return {
        "experiment": name,
        "steps": steps,
        "nb_steps_warmup": warmup,
        "measure": key,
        "median": medians,
        "median_env_steps_per_second": {
            p: statistics.median(r["env_steps_per_second"] for r in runs[p]) for p in PATHS
        },
        "median_train_steps_per_second": {
            p: statistics.median(r["train_steps_per_second"] for r in runs[p]) for p in PATHS
        },
        "peak_rss_mb": {p: statistics.median(r["peak_rss_mb"] for r in runs[p]) for p in PATHS},
        "ratio": medians["fast"] / medians["stock"],
        "ratio_to_old": medians["fast"] / medians["fast-old"],
        "replay_cost": {p: 1.0 - medians[p] / medians["fast"] for p in REPLAY_PATHS},
        "runs": runs,
    }


def _table(results: dict[str, Any]) -> str:
    catch, cave, flat = results["catch_dense"], results.get("cave_conv"), results["flatness"]
    lines = [
        "# Fast path benchmark (`make bench`)",
        "",
        f"{results['date']} on {results['machine']}; {results['reps']} runs per path and experiment, "
        "alternating stock and fast, each in a fresh process through the runner; medians. "
        f"Load average {results['load_before']:.2f} before, {results['load_after']:.2f} after.",
        "",
        "`fast-old`: the fast path with oneDNN off, as every run had it before oneDNN was chosen per "
        "experiment (on for conv networks); `fast`: today's defaults.",
        "",
        "| experiment | measure | stock | fast-old | fast | fast / stock | fast / fast-old "
        "| peak RSS stock | peak RSS fast |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entry, label in ((catch, "env steps/s"), (cave, "train steps/s")):
        if entry is None:
            continue
        lines.append(
            f"| {entry['experiment']} ({entry['steps']:,} steps, warm-up {entry['nb_steps_warmup']:,}) "
            f"| {label} | {entry['median']['stock']:.1f} | {entry['median']['fast-old']:.1f} "
            f"| {entry['median']['fast']:.1f} | **{entry['ratio']:.2f}x** | **{entry['ratio_to_old']:.2f}x** "
            f"| {entry['peak_rss_mb']['stock']:.0f} MB "
            f"| {entry['peak_rss_mb']['fast']:.0f} MB |"
        )
    if cave is not None:
        env = cave["median_env_steps_per_second"]
        lines.append(
            f"| cave_conv | env steps/s | {env['stock']:.1f} | {env['fast-old']:.1f} | {env['fast']:.1f} "
            f"| {env['fast'] / env['stock']:.2f}x | {env['fast'] / env['fast-old']:.2f}x | | |"
        )
    lines += [
        "",
        "Replay settings on the fast path (`fast` plus one setting; cost: the share of `fast`'s speed lost):",
        "",
        "| experiment | measure | fast | "
        + " | ".join(f"{p} ({', '.join(REPLAY_PATHS[p])}) | cost" for p in REPLAY_PATHS)
        + " |",
        "| --- | --- | ---: | " + " | ".join("---: | ---:" for _ in REPLAY_PATHS) + " |",
    ]
    for entry, label in ((catch, "env steps/s"), (cave, "train steps/s")):
        if entry is None:
            continue
        cells = " | ".join(f"{entry['median'][p]:.1f} | {100 * entry['replay_cost'][p]:.1f}%" for p in REPLAY_PATHS)
        lines.append(f"| {entry['experiment']} | {label} | {entry['median']['fast']:.1f} | {cells} |")
    lines += ["", "Each run (steps/s):", ""]
    for entry in (catch, cave):
        if entry is None:
            continue
        for path in PATHS:
            values = ", ".join(f"{r[entry['measure']]:.1f}" for r in entry["runs"][path])
            lines.append(f"- {entry['experiment']} {path}: {values}")
    lines += [
        "",
        "Memory once the replay memory is full (RSS sampled during training):",
        "",
        "| run | memory_limit | full at step | steps after | RSS when full | RSS at end | drift after full "
        "| range after full |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in flat:
        lines.append(
            f"| {r['experiment']} {r['path']} | {r['memory_limit']:,} | {r['memory_full_at_step']:,} "
            f"| {r['steps_after_full']:,} | {r['rss_at_full_mb']:.1f} MB | {r['rss_at_end_mb']:.1f} MB "
            f"| {r['growth_after_full_mb']:+.1f} MB | {r['rss_range_after_full_mb']:.1f} MB |"
        )
    lines += [
        "",
        "Drift: median RSS of the last third of the samples after the memory is full minus the "
        "median of the first third (samples every 100 steps). These runs set "
        + ", ".join(f"`{k}={v}`" for k, v in FLAT_ENV.items())
        + " (see bench/speed.py: with glibc's default the convolutions' freed buffers make RSS swing "
        "by tens of MB on both paths).",
    ]
    lines += ["", "Targets:", ""]
    for text, ok in results["targets"]:
        lines.append(f"- {'met' if ok else 'MISSED'}: {text}")
    return "\n".join(lines) + "\n"


def bench(reps: int, steps: int, cave_steps: int, out: Path, flat_steps: int, flat_cave_steps: int) -> int:
    from harness.core import files
    from harness.core.registry import available_experiments

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"fast path benchmark: {reps} runs per path, alternating (load average {load_before:.2f})", flush=True)
    results: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "reps": reps,
        "load_before": load_before,
    }
    print(f"catch_dense, {steps:,} steps (warm-up 200):", flush=True)
    results["catch_dense"] = _speed("catch_dense", reps, steps, 200, "env_steps_per_second")
    if "cave_conv" in available_experiments():
        print(f"cave_conv, {cave_steps:,} steps (warm-up 500):", flush=True)
        results["cave_conv"] = _speed("cave_conv", reps, cave_steps, 500, "train_steps_per_second")
    else:
        print("cave_conv: skipped (experiments/cave_conv.py does not exist)", flush=True)
        results["cave_conv"] = None

    print("memory flatness, memory_limit 1,000, " + " ".join(f"{k}={v}" for k, v in FLAT_ENV.items()) + ":", flush=True)
    flat = []
    plan = [("catch_dense", path, flat_steps) for path in FLATNESS_PATHS]
    if results["cave_conv"] is not None:
        plan += [("cave_conv", path, flat_cave_steps) for path in FLATNESS_PATHS]
    for name, path, budget in plan:
        measured = _measure_in_subprocess(
            name, path, budget, 200, memory_limit=1_000, rss_every=100, extra_env=FLAT_ENV
        )
        flat.append(measured)
        print(
            f"  {name:<12} {path:<8}: full at step {measured['memory_full_at_step']}, RSS "
            f"{measured['rss_at_full_mb']:.1f} MB then, {measured['rss_at_end_mb']:.1f} MB at step {budget:,}; "
            f"drift {measured['growth_after_full_mb']:+.1f} MB, range {measured['rss_range_after_full_mb']:.1f} MB",
            flush=True,
        )
    results["flatness"] = flat

    catch, cave = results["catch_dense"], results["cave_conv"]
    targets = [
        (
            f"catch_dense fast path >= {TARGET_RATIO:g}x stock env steps/s (measured {catch['ratio']:.2f}x)",
            catch["ratio"] >= TARGET_RATIO,
        )
    ]
    if cave is not None:
        targets.append(
            (f"cave_conv faster on the fast path (train steps/s {cave['ratio']:.2f}x stock)", cave["ratio"] > 1.0)
        )
    for entry in (catch, cave):
        if entry is None:
            continue
        goal = TARGET_NEW[entry["experiment"]]
        targets.append(
            (
                f"{entry['experiment']} with today's defaults >= {goal:g}x the fast path with oneDNN off "
                f"({entry['measure'].replace('_', ' ')}: measured {entry['ratio_to_old']:.2f}x)",
                entry["ratio_to_old"] >= goal,
            )
        )
    for entry in (catch, cave):
        if entry is None:
            continue
        limit = PER_COST[entry["experiment"]]
        cost = entry["replay_cost"]["fast-per"]
        targets.append(
            (
                f"{entry['experiment']}: prioritized replay costs at most {100 * limit:g}% of the fast path's "
                f"{entry['measure'].replace('_', ' ')} (measured {100 * cost:.1f}%)",
                cost <= limit,
            )
        )
    worst = max(r["growth_after_full_mb"] for r in flat)
    targets.append(
        (
            f"no run drifts by more than {FLAT_TOLERANCE_MB:g} MB after its replay memory is full "
            f"(largest: {worst:+.1f} MB)",
            worst <= FLAT_TOLERANCE_MB,
        )
    )
    results["targets"] = targets
    results["load_after"] = os.getloadavg()[0]
    results["bench_seconds"] = round(time.monotonic() - started, 1)

    table = _table(results)
    out.mkdir(parents=True, exist_ok=True)
    files.write_json(out / "results.json", results)
    files.write_text(out / "results.md", table)
    print()
    print(table, end="")
    print(f"\nwritten: {out / 'results.md'}, {out / 'results.json'} ({results['bench_seconds']:.0f} s)")
    return 0 if all(ok for _, ok in targets) else 1


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=positive_int("--reps"), default=3, help="runs per path and experiment (3)")
    parser.add_argument(
        "--steps", type=positive_int("--steps"), default=4000, help="catch_dense training steps per run (4000)"
    )
    parser.add_argument(
        "--cave-steps", type=positive_int("--cave-steps"), default=3000, help="cave_conv training steps per run (3000)"
    )
    parser.add_argument(
        "--flat-steps",
        type=positive_int("--flat-steps"),
        default=6000,
        help="catch_dense steps of the memory-flatness runs (6000)",
    )
    parser.add_argument(
        "--flat-cave-steps",
        type=positive_int("--flat-cave-steps"),
        default=4000,
        help="cave_conv steps of the memory-flatness runs (4000)",
    )
    parser.add_argument("--out", default=str(BENCH_DIR), help="folder for results.md/.json (bench/)")


def cli_bench(args: argparse.Namespace) -> int:
    """`make bench` (`python -m bench.speed`)."""
    if args.reps < 3:
        print("note: fewer than 3 runs per path; docs/results.md quotes medians of at least 3", file=sys.stderr)
    return bench(args.reps, args.steps, args.cave_steps, Path(args.out), args.flat_steps, args.flat_cave_steps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    add_arguments(parser)
    # A single measurement in this process (what each subprocess of the benchmark runs).
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-every", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)
    return run_main(parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    if args.one:
        print(
            json.dumps(
                measure(
                    args.one,
                    args.path != "stock",
                    args.steps,
                    args.warmup,
                    args.memory_limit,
                    args.rss_every,
                    args.overrides,
                )
            )
        )
        return 0
    return cli_bench(args)


if __name__ == "__main__":
    sys.exit(main())
