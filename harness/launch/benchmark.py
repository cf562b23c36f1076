"""`python -m harness benchmark` (`make benchmark`): the classic-control suite over several seeds, in
parallel, then one table and one figure beside the published references.

The suite is `SUITE`: one experiment per game, each with rl-baselines3-zoo's tuned DQN settings and
its step budget (experiments/*_dqn.py). For every game and seed it reuses a finished identical run
under RUNS or trains it, `--workers` at a time, through the sweep executor
(harness.launch.compare.gather_runs -> harness.launch.sweep.execute), with the training logs in a
new `<RUNS>/benchmark/<stamp>/`. An interrupted or partly failed benchmark therefore goes on where
it stopped when started again. Then harness.report.benchmark writes `benchmark.md`,
`benchmark.csv` and `benchmark.png` into `--out` (default `docs/`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness.core.errors import UserError, did_you_mean
from harness.core.registry import load_experiment
from harness.core.rundir import new_stamped_dir
from harness.launch import compare, sweep

SUITE: tuple[str, ...] = ("cartpole_dqn", "acrobot_dqn", "mountaincar_dqn", "lunarlander_dqn")
DEFAULT_SEEDS = "5"
DEFAULT_OUT = "docs"


@dataclass
class BenchmarkResult:
    """The runs the benchmark used per experiment, which it trained, and the files it wrote."""

    groups: dict[str, list[Path]]
    trained: list[Path] = field(default_factory=list)
    reused: list[Path] = field(default_factory=list)
    written: dict[str, Path] = field(default_factory=dict)
    table: str = ""


def choose_games(words: Sequence[str]) -> list[str]:
    """The suite's experiments named by `words` (experiment names or env ids), in suite order;
    all of them when `words` is empty."""
    if not words:
        return list(SUITE)
    by_word = {name: name for name in SUITE} | {load_experiment(name).env_id: name for name in SUITE}
    chosen = []
    for word in words:
        if word not in by_word:
            raise UserError(
                f"GAMES: {word!r} is not in the benchmark suite{did_you_mean(word, by_word)}; "
                f"expected some of {', '.join(by_word)}"
            )
        if by_word[word] in chosen:
            raise UserError(f"GAMES names {by_word[word]} twice; expected each game once")
        chosen.append(by_word[word])
    return [name for name in SUITE if name in chosen]


def _out_dir(out: str | Path) -> Path:
    return compare.output_folder(out, "benchmark.md/.csv/.png")


def run_benchmark(
    games: Sequence[str] = (),
    seeds: str | int = DEFAULT_SEEDS,
    steps: int | None = None,
    overrides: Sequence[str] = (),
    workers: int | None = None,
    runs_dir: str | Path = "runs",
    out: str | Path = DEFAULT_OUT,
    log: TextIO | None = None,
    command: Sequence[str] | None = None,
) -> BenchmarkResult:
    """Reuse or train every (game, seed) run, then write the table and the figure into `out`.

    Raises UserError for a bad game, seed list or setting (before anything runs) or a failed run,
    and compare.CompareInterrupted when stopped by a signal (finished runs are kept for next time).
    """
    from harness.report import benchmark as report

    log = log or sys.stdout
    names = choose_games(games)
    seed_list = sweep.parse_seeds(seeds)
    if workers is not None and workers < 1:
        raise UserError(f"WORKERS={workers!r} is not allowed; expected a positive integer")
    runs_dir = Path(runs_dir).absolute()
    plan = compare.resolve_plan(names, seed_list, steps, overrides)
    out_dir = _out_dir(out)
    log_dir = new_stamped_dir(runs_dir / "benchmark", "{stamp}", what="RUNS folder")
    started = dt.datetime.now().astimezone()
    groups, trained, reused = compare.gather_runs(plan, runs_dir, log_dir, tuple(overrides), workers, log)
    made_with = _made_with(command, started, seed_list, steps, overrides, len(trained), len(reused), workers)
    if trained:
        made_with.append(f"Runs under {runs_dir}; training logs in {log_dir}.")
    else:
        log_dir.rmdir()  # nothing was trained: no logs to keep
        made_with.append(f"Runs under {runs_dir}.")
    rows, written = report.write_benchmark(groups, out_dir, made_with)
    return BenchmarkResult(groups, trained, reused, written, report.format_table(rows))


def _made_with(
    command: Sequence[str] | None,
    started: dt.datetime,
    seeds: Sequence[int],
    steps: int | None,
    overrides: Sequence[str],
    trained: int,
    reused: int,
    workers: int | None,
) -> list[str]:
    """The lines of benchmark.md that say how its runs were made."""
    cores = sweep.machine_cores()
    shown = shlex.join(command or ["python", "-m", "harness", "benchmark"])
    budget = "each experiment's own step budget" if steps is None else f"{steps:,} steps"
    changed = f", settings changed: {' '.join(overrides)}" if overrides else ""
    lines = [
        f"Made with `{shown}` on {started:%Y-%m-%d} on {platform.node()} ({cores} cores): "
        f"seeds {','.join(map(str, seeds))}, {budget}{changed}."
    ]
    if trained:
        at_once = min(workers or cores, trained)
        threads = sweep.threads_per_run(cores, at_once)
        lines.append(
            f"{trained} run(s) trained here, {at_once} at a time with {threads} TensorFlow thread(s) each; "
            f"{reused} finished identical run(s) reused (their wall times are from when they ran)."
        )
    else:
        lines.append(f"Every run was a finished identical run reused ({reused}); their wall times are from then.")
    return lines


def command(args: argparse.Namespace) -> int:
    """`python -m harness benchmark [GAME...] [--seeds] [--steps] [--workers] [--set] [--runs-dir] [--out]`."""
    try:
        result = run_benchmark(
            args.games,
            seeds=args.seeds,
            steps=args.steps,
            overrides=args.overrides,
            workers=args.workers,
            runs_dir=args.runs_dir,
            out=args.out,
            command=["python", "-m", "harness", *sys.argv[1:]],
        )
    except compare.CompareInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return stop.exit_code
    print(f"\ntrained {len(result.trained)} run(s), reused {len(result.reused)}\n")
    print(result.table)
    for path in result.written.values():
        print(f"wrote {path}")
    return 0
