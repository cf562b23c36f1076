"""Benchmark: the fast training path against keras-rl's stock DQNAgent (`make bench`).

`python -m bench.speed [--reps 3] [--steps 10000] [--cave-steps 3000] [--out bench]` measures, each
run in a fresh Python process (so that its peak RSS is its own), training through the real runner
(`harness.run.runner.run`: the experiment's callbacks, logging and checkpoints included) on these
paths (PATHS): `stock` (keras-rl's DQNAgent, `fast_path=false`, oneDNN off), `base` (the code and
settings of BASE_COMMIT, the baseline of the speed targets: that commit's own `bench.speed`, run in
a tree `git archive` extracts), `fast-old` (today's fast path with oneDNN off), `fast` (the fast
path with the experiment's own defaults), and the replay settings on top of `fast` (REPLAY_PATHS:
`fast-per`, prioritized replay; `fast-n3`, 3-step returns):

1. catch_dense, `--reps` times on each path, alternating the paths so that a change in the
   machine's load hits both alike: the median env steps/s of the training loop, the ratio of the
   medians, and the peak RSS. The experiment's settings except a short budget (`--steps`, 10,000:
   shorter runs of a few seconds varied by 20% between reps) with a short warm-up
   (`nb_steps_warmup=200`), so that nearly every step trains (train_interval 1, batch 32).
2. cave_conv the same way (its own train_interval 4 and 4-frame window; warm-up 500): train steps/s,
   i.e. training batches per second of the training loop (env steps included), and env steps/s.
3. Other experiments on the fast path with their own defaults (OTHERS), run inside cave_conv's
   reps, alternating with its paths: cave_rainbow (`--cave-steps`, as cave_conv) and cave_drqn
   (`--drqn-steps`, smaller: its train step costs several of cave_conv's); train and env steps/s
   and their ratio to cave_conv's `fast`.
4. Memory flatness: catch_dense and cave_conv on both paths with a replay memory of 1,000
   transitions, so that it fills early; the resident set size is sampled every 100 steps, and the
   drift once the memory is full and the target network first copied trained weights (median of
   the last third of those samples minus median of their first third; see
   flatness_window_start) and the range of those samples are reported. These runs fix glibc's mmap threshold
   (FLAT_ENV, see there), so they are slower and their speed is not reported.

Targets (printed with each figure): fast >= 6x stock on catch_dense; cave_conv faster on the fast
path; fast >= TARGET_NEW x base (catch_dense env steps/s, cave_conv train steps/s); no run grows
by more than FLAT_TOLERANCE_MB after its memory is full; prioritized replay costs at most
PER_COST of `fast`'s speed (catch_dense env steps/s, cave_conv train steps/s); cave_rainbow trains
at TARGET_OF_CONV or more of cave_conv's `fast` train steps/s. The results go to
`<out>/results.json` and `<out>/results.md` (docs/results.md quotes the latter); the exit status
is 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime as dt
import functools
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
# Drift allowed in the flatness window (flatness_window_start): the median RSS of the last third
# of its samples minus that of the first third (the per-episode logs grow by tens of KB; a leak of
# 2 KB a step, over the two thirds of a window of 4,000 steps or more, would exceed it).
FLAT_TOLERANCE_MB = 5.0
# The flatness runs fix glibc's mmap threshold. By default glibc raises it after the first large
# free, so the convolutions' multi-MB temporary buffers then come from the heap, which keeps freed
# blocks and hands them back in bursts: cave_conv's RSS then swings by 30-70 MB on either path and
# falls back to its floor, which hides a trend. With a fixed threshold large buffers are returned
# at once and RSS shows what the process holds (measured: flat to 1 MB on cave_conv); the speed
# runs keep the default allocator.
FLAT_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
# The paths measured: keras-rl's stock DQNAgent; the code users had when the speed targets were
# set (BASE_COMMIT); today's fast path with oneDNN off, as it ran before oneDNN was chosen per
# experiment; the fast path with today's defaults. FLATNESS_PATHS: the memory-flatness check
# covers the two code paths. REPLAY_PATHS: `fast` plus one replay setting each
# (harness.kerasrl.prioritized, RingMemory.batch_at).
REPLAY_PATHS = {"fast-per": ("prioritized_replay=true",), "fast-n3": ("n_step=3",)}
PATHS = ("stock", "base", "fast-old", "fast", *REPLAY_PATHS)
FLATNESS_PATHS = ("stock", "fast")
# Main when the pixel-speed targets were set: the layout had landed, oneDNN off, float32, none of
# that changes. `fast-old` alone would be a moving baseline (today's code with oneDNN off
# carries every later change to the fast path); this is the code users had. Its bench.speed has
# the same `--one NAME --path fast` measurement, whose JSON this one reads.
BASE_COMMIT = "83d4988"
# Speed targets against `base`, in the same run (docs/results.md).
TARGET_NEW = {"catch_dense": 1.5, "cave_conv": 2.0}
# The largest share of `fast`'s speed prioritized replay may cost (issue: 20% on catch_dense, whose
# steps are ~250 microseconds of Python; 10% on cave_conv, whose train steps are convolutions).
PER_COST = {"catch_dense": 0.20, "cave_conv": 0.10}
# Warm-up of each experiment's speed runs: catch_dense trains from early on (train_interval 1);
# the others keep a sixth of their default budget untrained (cave_conv 500 of 3,000, cave_drqn 200
# of 1,200), so that their rates, which include the warm-up, compare.
WARMUP = {"catch_dense": 200, "cave_conv": 500, "cave_rainbow": 500, "cave_drqn": 200}
# Other experiments measured on `fast` beside cave_conv. cave_rainbow trains as often as cave_conv
# and takes its budget (--cave-steps); a cave_drqn train step runs 8 sequences of burn_in +
# sequence_length + 1 frames, several of cave_conv's steps, so it gets a smaller one (--drqn-steps)
# to keep each run near a minute.
OTHERS = ("cave_rainbow", "cave_drqn")
# The least share of cave_conv's `fast` train steps/s an experiment must reach (the target:
# Rainbow's five additions to cave_conv may cost at most 30% of its training speed).
TARGET_OF_CONV = {"cave_rainbow": 0.70}
# What a measurement reports of the experiment it trained (the row labels read them from there).
SETTINGS = ("batch_size", "train_interval", "window_length", "recurrent", "sequence_length", "burn_in")
_MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# One measurement (in its own process)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def settings(exp: Any) -> dict[str, Any]:
    """The SETTINGS of the experiment a measurement trained (what the row labels state)."""
    return {k: getattr(exp, k) for k in SETTINGS}


def flatness_window_start(full_at: int | None, exp: Any) -> int | None:
    """The first step whose RSS sample counts towards the flatness drift: once the replay memory
    is full and, with hard target updates, after the first one that copies trained weights.

    Why the update: on the fast path the target network's hard update is a graph assign, and
    after the first one that copies trained weights RSS steps up once by about 5 MB (measured on
    cave_conv, 2026-12-05: +4.8 to +5.2 MB at the first update after the warm-up, at step 2,000
    with target_model_update 2,000 and at 3,000 with 3,000, oneDNN on or off; then flat to 0.7 MB
    over 8,000 steps and three more updates). A level the run keeps, not growth per step; counted
    in the window it reads as a +5 MB drift whenever it falls in the window's middle. Our reading,
    not proven: TensorFlow's copy-on-write for resource variables (called by hand after training,
    an update lowers RSS by 4.5 MB and the next train steps raise it again, when the optimizer
    gives the online weights a fresh buffer). Stock keras-rl copies through NumPy (`set_weights`)
    and shows no step.
    """
    if full_at is None:
        return None
    update = exp.target_model_update
    if update < 1:
        return full_at  # soft updates write the target every train step from the first one on
    every = int(update)
    first_trained_update = (exp.nb_steps_warmup // every + 1) * every
    if first_trained_update >= exp.nb_steps:
        return full_at  # the run ends before it
    return max(full_at, first_trained_update + 1)


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
        "settings": settings(exp),
    }
    if rss_every:
        window_from = flatness_window_start(probe.full_at, exp)
        after = [] if window_from is None else [r for s, r in probe.samples if s >= window_from]
        if len(after) < 6:
            raise SystemExit(
                f"error: {name}: the replay memory filled (at step {probe.full_at} of {steps}) or the "
                f"target network was first updated too late for a flatness check (window from step {window_from})"
            )
        assert probe.full_at is not None  # the window opens only once the memory is full
        third = len(after) // 3
        result.update(
            {
                "memory_full_at_step": probe.full_at,
                "window_from_step": window_from,
                "rss_samples_mb": [(s, round(r, 2)) for s, r in probe.samples],
                "rss_at_full_mb": next(r for s, r in probe.samples if s == probe.full_at),
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
    load_before, started = os.getloadavg()[0], time.monotonic()
    # "fast" and the replay paths on it run with the experiment's own oneDNN setting; "stock",
    # "base" and "fast-old" with oneDNN off, as before it was turned on.
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if path in ("stock", "base", "fast-old"):
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    cwd = BENCH_DIR.parent
    if path == "base":
        # Run from BASE_COMMIT's tree: `python -m` puts the working folder first on the import path, ahead
        # of the installed package, so its harness, envs and experiments are the ones imported.
        cwd = base_tree()
        args[args.index("--path") + 1] = "fast"
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**env, **(extra_env or {})})
    if result.returncode != 0:
        raise SystemExit(
            f"error: measuring {name} on the {path} path failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["load_before"] = round(load_before, 2)
    measured["wall_seconds"] = round(time.monotonic() - started, 1)  # the whole process: start-up included
    return measured


@functools.cache
def base_tree() -> Path:
    """BASE_COMMIT's files in a temporary folder (removed at exit), extracted by `git archive`."""
    import shutil
    import tarfile

    archive = subprocess.run(
        ["git", "-C", str(BENCH_DIR.parent), "archive", "--format=tar", BASE_COMMIT], capture_output=True
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"error: the base path needs commit {BASE_COMMIT} of this repository's git history "
            f"(git archive: {archive.stderr.decode(errors='replace').strip() or 'failed'}); "
            "run make bench from a clone with its history"
        )
    tree = Path(tempfile.mkdtemp(prefix=f"bench-base-{BASE_COMMIT}-"))
    atexit.register(shutil.rmtree, tree, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


# ---------------------------------------------------------------------------------------------
# The benchmark


@dataclasses.dataclass(frozen=True)
class _Job:
    """One measurement of a rep: experiment `name` on `path` (one of PATHS) for `steps` steps;
    `label` keys its runs (the path, or the experiment for OTHERS)."""

    label: str
    name: str
    path: str
    steps: int


def _alternate(jobs: Sequence[_Job], reps: int) -> dict[str, list[dict[str, Any]]]:
    """`reps` measurements of each job, in reverse order every other rep, so that a change in the
    machine's load hits all alike."""
    runs: dict[str, list[dict[str, Any]]] = {job.label: [] for job in jobs}
    for rep in range(reps):
        for job in jobs if rep % 2 == 0 else jobs[::-1]:
            measured = _measure_in_subprocess(job.name, job.path, job.steps, WARMUP[job.name])
            runs[job.label].append(measured)
            print(
                f"  {job.name:<12} {job.path:<8} rep {rep + 1}: {measured['env_steps_per_second']:7.1f} env steps/s, "
                f"{measured['train_steps_per_second']:7.1f} train steps/s, "
                f"peak RSS {measured['peak_rss_mb']:.0f} MB (load {measured['load_before']}, "
                f"{measured['wall_seconds']:.0f} s)",
                flush=True,
            )
    return runs


def _medians(runs: dict[str, list[dict[str, Any]]], key: str) -> dict[str, float]:
    return {label: statistics.median(r[key] for r in rows) for label, rows in runs.items()}


def _speed(name: str, runs: dict[str, list[dict[str, Any]]], steps: int, key: str) -> dict[str, Any]:
    """The medians of `name`'s runs on PATHS (by `key`, and both rates) and their ratios."""
    runs = {p: runs[p] for p in PATHS}
    medians = _medians(runs, key)
    return {
        "experiment": name,
        "steps": steps,
        "nb_steps_warmup": WARMUP[name],
        "measure": key,
        "median": medians,
        "median_env_steps_per_second": _medians(runs, "env_steps_per_second"),
        "median_train_steps_per_second": _medians(runs, "train_steps_per_second"),
        "peak_rss_mb": _medians(runs, "peak_rss_mb"),
        "ratio": medians["fast"] / medians["stock"],
        "ratio_to_base": medians["fast"] / medians["base"],
        "ratio_to_old": medians["fast"] / medians["fast-old"],
        "replay_cost": {p: 1.0 - medians[p] / medians["fast"] for p in REPLAY_PATHS},
        "runs": runs,
    }


def _other(name: str, runs: list[dict[str, Any]], steps: int, cave: dict[str, Any]) -> dict[str, Any]:
    """The medians of one of OTHERS (on `fast`) and their ratios to cave_conv's `fast` (`cave`)."""
    keys = ("train_steps_per_second", "env_steps_per_second")
    medians = {key: statistics.median(r[key] for r in runs) for key in keys}
    conv = {key: cave[f"median_{key}"]["fast"] for key in keys}
    return {
        "experiment": name,
        "path": "fast",
        "steps": steps,
        "nb_steps_warmup": WARMUP[name],
        "settings": runs[0]["settings"],
        "median": medians,
        "cave_conv_fast": conv,
        "of_cave_conv": {key: medians[key] / conv[key] for key in keys},
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
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
        f"`base`: the code and settings of commit {BASE_COMMIT}, when the speed targets were set "
        "(oneDNN off, float32); `fast-old`: today's fast path with oneDNN off, as every run had it "
        "before oneDNN was chosen per experiment (on for conv networks); `fast`: today's defaults.",
        "",
        "| experiment | measure | stock | base | fast-old | fast | fast / stock | fast / base | fast / fast-old "
        "| peak RSS stock | peak RSS fast |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entry, label in ((catch, "env steps/s"), (cave, "train steps/s")):
        if entry is None:
            continue
        lines.append(
            f"| {entry['experiment']} ({entry['steps']:,} steps, warm-up {entry['nb_steps_warmup']:,}) "
            f"| {label} | {entry['median']['stock']:.1f} | {entry['median']['base']:.1f} "
            f"| {entry['median']['fast-old']:.1f} | {entry['median']['fast']:.1f} | **{entry['ratio']:.2f}x** "
            f"| **{entry['ratio_to_base']:.2f}x** | {entry['ratio_to_old']:.2f}x "
            f"| {entry['peak_rss_mb']['stock']:.0f} MB "
            f"| {entry['peak_rss_mb']['fast']:.0f} MB |"
        )
    if cave is not None:
        env = cave["median_env_steps_per_second"]
        lines.append(
            f"| cave_conv | env steps/s | {env['stock']:.1f} | {env['base']:.1f} | {env['fast-old']:.1f} "
            f"| {env['fast']:.1f} | {env['fast'] / env['stock']:.2f}x | {env['fast'] / env['base']:.2f}x "
            f"| {env['fast'] / env['fast-old']:.2f}x | | |"
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
    lines += _others_table(results.get("others", {}))
    lines += ["", "Each run (steps/s):", ""]
    for entry in (catch, cave):
        if entry is None:
            continue
        for path in PATHS:
            values = ", ".join(f"{r[entry['measure']]:.1f}" for r in entry["runs"][path])
            lines.append(f"- {entry['experiment']} {path}: {values}")
    for other in results.get("others", {}).values():
        values = ", ".join(f"{r['train_steps_per_second']:.1f}" for r in other["runs"])
        lines.append(f"- {other['experiment']} fast (train steps/s): {values}")
    lines += [
        "",
        "Memory once the replay memory is full (RSS sampled during training):",
        "",
        "| run | memory_limit | full at step | window from step | steps after full | RSS when full "
        "| RSS at end | drift in window | range in window |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in flat:
        # Results written before the window existed started it when the memory was full.
        window_from = r.get("window_from_step", r["memory_full_at_step"])
        lines.append(
            f"| {r['experiment']} {r['path']} | {r['memory_limit']:,} | {r['memory_full_at_step']:,} "
            f"| {window_from:,} | {r['steps_after_full']:,} | {r['rss_at_full_mb']:.1f} MB "
            f"| {r['rss_at_end_mb']:.1f} MB | {r['growth_after_full_mb']:+.1f} MB "
            f"| {r['rss_range_after_full_mb']:.1f} MB |"
        )
    lines += [
        "",
        "Drift: median RSS of the last third of the window's samples minus the median of its first "
        "third (samples every 100 steps). The window starts once the replay memory is full and after "
        "the first hard target update of trained weights (a one-time step of about 5 MB on the fast "
        "path: see `flatness_window_start` in bench/speed.py). These runs set "
        + ", ".join(f"`{k}={v}`" for k, v in FLAT_ENV.items())
        + " (see bench/speed.py: with glibc's default the convolutions' freed buffers make RSS swing "
        "by tens of MB on both paths).",
    ]
    lines += ["", "Targets:", ""]
    for text, ok in results["targets"]:
        lines.append(f"- {'met' if ok else 'MISSED'}: {text}")
    return "\n".join(lines) + "\n"


def _other_label(entry: dict[str, Any]) -> str:
    """The experiment and, for a recurrent one, what a train step replays (from its own settings)."""
    settings = entry["settings"]
    if not settings["recurrent"]:
        return entry["experiment"]
    return (
        f"{entry['experiment']} ({settings['batch_size']} sequences of sequence_length "
        f"{settings['sequence_length']} after burn_in {settings['burn_in']})"
    )


def _others_table(others: dict[str, Any]) -> list[str]:
    """The rows of OTHERS beside cave_conv's `fast` (nothing when they were not measured)."""
    if not others:
        return []
    lines = [
        "",
        "Other experiments on the fast path, each with its own defaults, measured alternating with "
        "cave_conv's paths in each rep (ratio: this experiment / cave_conv `fast`):",
        "",
        "| experiment | steps | measure | cave_conv fast | this experiment | ratio | peak RSS |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for entry in others.values():
        budget = f"{entry['steps']:,} (warm-up {entry['nb_steps_warmup']:,})"
        rss = f"{entry['peak_rss_mb']:.0f} MB"
        # Train steps/s first and in bold: the measure of the target; env steps/s follows from it.
        for key, label, bold, memory in (
            ("train_steps_per_second", "train steps/s", "**", rss),
            ("env_steps_per_second", "env steps/s", "", ""),
        ):
            lines.append(
                f"| {_other_label(entry)} | {budget} | {label} | {entry['cave_conv_fast'][key]:.1f} "
                f"| {entry['median'][key]:.1f} | {bold}{entry['of_cave_conv'][key]:.2f}x{bold} | {memory} |"
            )
    return lines


def _speeds(results: dict[str, Any], reps: int, steps: int, cave_steps: int, drqn_steps: int) -> None:
    """catch_dense on PATHS; then cave_conv on PATHS with OTHERS on `fast` in the same reps, so
    that their ratios to cave_conv hold on a loaded machine."""
    from harness.core.registry import available_experiments

    print(f"catch_dense, {steps:,} steps (warm-up {WARMUP['catch_dense']}):", flush=True)
    runs = _alternate([_Job(p, "catch_dense", p, steps) for p in PATHS], reps)
    results["catch_dense"] = _speed("catch_dense", runs, steps, "env_steps_per_second")
    results["cave_conv"], results["others"] = None, {}
    available = available_experiments()
    if "cave_conv" not in available:
        print("cave_conv: skipped (experiments/cave_conv.py does not exist)", flush=True)
        return
    steps_of = {"cave_rainbow": cave_steps, "cave_drqn": drqn_steps}
    budgets = {n: steps_of[n] for n in OTHERS if n in available}
    print(
        f"cave_conv, {cave_steps:,} steps (warm-up {WARMUP['cave_conv']}), with "
        + ", ".join(f"{n} {b:,} steps (warm-up {WARMUP[n]})" for n, b in budgets.items())
        + ":",
        flush=True,
    )
    jobs = [_Job(p, "cave_conv", p, cave_steps) for p in PATHS] + [_Job(n, n, "fast", b) for n, b in budgets.items()]
    runs = _alternate(jobs, reps)
    results["cave_conv"] = cave = _speed("cave_conv", runs, cave_steps, "train_steps_per_second")
    results["others"] = {n: _other(n, runs[n], b, cave) for n, b in budgets.items()}


def _flatness(results: dict[str, Any], flat_steps: int, flat_cave_steps: int) -> None:
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


def _targets(results: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each target's sentence (with what was measured) and whether it was met."""
    catch, cave, flat = results["catch_dense"], results["cave_conv"], results["flatness"]
    entries = [e for e in (catch, cave) if e is not None]
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
    for entry in entries:
        goal = TARGET_NEW[entry["experiment"]]
        targets.append(
            (
                f"{entry['experiment']} with today's defaults >= {goal:g}x the code of {BASE_COMMIT} "
                f"({entry['measure'].replace('_', ' ')}: measured {entry['ratio_to_base']:.2f}x; "
                f"{entry['ratio_to_old']:.2f}x today's fast path with oneDNN off)",
                entry["ratio_to_base"] >= goal,
            )
        )
    for entry in entries:
        limit = PER_COST[entry["experiment"]]
        cost = entry["replay_cost"]["fast-per"]
        targets.append(
            (
                f"{entry['experiment']}: prioritized replay costs at most {100 * limit:g}% of the fast path's "
                f"{entry['measure'].replace('_', ' ')} (measured {100 * cost:.1f}%)",
                cost <= limit,
            )
        )
    for name, least in TARGET_OF_CONV.items():
        other = results.get("others", {}).get(name)
        if other is None:
            continue
        share = other["of_cave_conv"]["train_steps_per_second"]
        targets.append(
            (
                f"{name} trains at >= {100 * least:g}% of cave_conv's fast path train steps/s "
                f"(measured {100 * share:.1f}%)",
                share >= least,
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
    return targets


def bench(
    reps: int,
    steps: int,
    cave_steps: int,
    out: Path,
    flat_steps: int,
    flat_cave_steps: int,
    drqn_steps: int = 1_200,
) -> int:
    from harness.core import files

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"fast path benchmark: {reps} runs per path, alternating (load average {load_before:.2f})", flush=True)
    results: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "reps": reps,
        "load_before": load_before,
    }
    _speeds(results, reps, steps, cave_steps, drqn_steps)
    _flatness(results, flat_steps, flat_cave_steps)
    results["targets"] = targets = _targets(results)
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
        "--steps", type=positive_int("--steps"), default=10_000, help="catch_dense training steps per run (10000)"
    )
    parser.add_argument(
        "--cave-steps", type=positive_int("--cave-steps"), default=3000, help="cave_conv training steps per run (3000)"
    )
    parser.add_argument(
        "--drqn-steps",
        type=positive_int("--drqn-steps"),
        default=1_200,
        help="cave_drqn training steps per run (1200: 250 train steps after a warm-up of 200)",
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
        # 6,000: its window starts after the first target update at step 2,000 (flatness_window_start),
        # and 4,000 steps in it let a leak of 2 KB a step show as more than FLAT_TOLERANCE_MB.
        default=6000,
        help="cave_conv steps of the memory-flatness runs (6000)",
    )
    parser.add_argument("--out", default=str(BENCH_DIR), help="folder for results.md/.json (bench/)")


def cli_bench(args: argparse.Namespace) -> int:
    """`make bench` (`python -m bench.speed`)."""
    if args.reps < 3:
        print("note: fewer than 3 runs per path; docs/results.md quotes medians of at least 3", file=sys.stderr)
    return bench(
        args.reps, args.steps, args.cave_steps, Path(args.out), args.flat_steps, args.flat_cave_steps, args.drqn_steps
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    add_arguments(parser)
    # A single measurement in this process (what each subprocess of the benchmark runs).
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--path", choices=[p for p in PATHS if p != "base"], help=argparse.SUPPRESS)
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
