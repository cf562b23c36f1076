"""Command line: `python -m harness <command>`. The Makefile targets call these.

  run NAME [--steps N] [--seed S] [--set key=value ...] [--runs-dir DIR] [--resume RUN_DIR]
  play RUN_DIR [--episodes N] [--seed S] [--gif out.gif]
  runs [--runs-dir DIR]
  list [--fields]
  compare NAME... [--seeds 3] [--steps N] [--set key=value ...] [--runs-dir DIR] [--out DIR]
  plot RUN_DIR... [--out file.png]

A user mistake prints one line, `error: ...`, and exits with status 2; an interrupted run exits
with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM) after saving what it had.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from harness.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but its usage errors go through our one-line error path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1 or str(text).strip().lstrip("+") != str(value):
            raise UserError(f"{name}={text!r} is not allowed; expected a positive integer")
        return value
    return parse


def _non_negative_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise UserError(f"{name}={text!r} is not allowed; expected an integer >= 0")
        return value
    return parse


def cmd_run(args: argparse.Namespace) -> int:
    from harness.experiment import apply_overrides, check_types, load_experiment

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"nb_steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.resume is not None:
        from harness.rundirs import resume_experiment

        # The parent run's resolved settings, then these overrides (STEPS: the new total budget).
        exp = resume_experiment(args.name, args.resume, overrides)
    else:
        exp = apply_overrides(load_experiment(args.name), overrides)
    check_types(exp)
    exp.validate()

    from harness.runner import RunInterrupted, run

    try:
        run(exp, args.runs_dir, command=sys.argv, resume_from=args.resume)
    except RunInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return stop.exit_code
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.experiment import available_experiments, field_docs, field_types, load_experiment, _type_name

    for name in available_experiments():
        try:
            exp = load_experiment(name)
            print(f"{name:<16} {exp.env_id} {exp.env_kwargs or ''} network={exp.network} "
                  f"optimizer={exp.optimizer} nb_steps={exp.nb_steps}")
        except UserError as err:
            print(f"{name:<16} (broken: {err})")
    if args.fields:
        print("\nfields (SET key=value):")
        types = field_types()
        for key, doc in field_docs().items():
            print(f"  {key:<24} {_type_name(types[key]):<12} {doc}")
    return 0


def _lazy(module: str, function: str):
    """A command function imported only when its command runs (keeps `list` and errors fast)."""
    def call(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), function)(args)
    return call


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description="DQN experiments with keras-rl2.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="train, evaluate and save one experiment run")
    run.add_argument("name", help="experiment module in experiments/")
    run.add_argument("--steps", type=_positive_int("STEPS"), help="training steps (nb_steps)")
    run.add_argument("--seed", type=_non_negative_int("SEED"), help="seed")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override any schema field, e.g. --set gamma=0.95")
    run.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue this run of NAME from its newest weights, in a new run directory")
    run.set_defaults(func=cmd_run)

    listing = sub.add_parser("list", help="list the experiments")
    listing.add_argument("--fields", action="store_true", help="also list the schema fields")
    listing.set_defaults(func=cmd_list)

    baseline = sub.add_parser("baseline", help="mean score of a game's scripted players (random, perfect/heuristic)")
    baseline.add_argument("env_id", help="Catch-v0 or Cave-v0")
    baseline.add_argument("--episodes", type=_positive_int("--episodes"), default=10, help="episodes per player (10)")
    baseline.add_argument("--seed", type=_non_negative_int("--seed"), default=0,
                          help="env seed of the first episode (a run's baselines use seed + 10000)")
    baseline.add_argument("--env-kwargs", default="", metavar="JSON", help='e.g. \'{"size":16}\'')
    baseline.set_defaults(func=_lazy("harness.baselines", "cmd_baseline"))

    compare = sub.add_parser("compare", help="train missing runs of several experiments, plot and tabulate them")
    compare.add_argument("names", nargs="+", metavar="NAME", help="experiment modules to compare")
    compare.add_argument("--seeds", type=_positive_int("SEEDS"), default=3, help="seeds 0..SEEDS-1 (default 3)")
    compare.add_argument("--steps", type=_positive_int("STEPS"), help="training steps (default: each experiment's)")
    compare.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a schema field in every experiment")
    compare.add_argument("--runs-dir", default="runs", help="where runs are found and trained (default: runs)")
    compare.add_argument("--out", help="folder for compare.png/.md/.csv (default: <runs>/compare/<names>-<stamp>)")
    compare.set_defaults(func=_lazy("harness.compare", "cli_compare"))

    plot = sub.add_parser("plot", help="redraw curves and the table from finished run directories")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or experiment folders")
    plot.add_argument("--out", help="PNG to write (default: one run's curves.png, else ./plot-<names>.png)")
    plot.set_defaults(func=_lazy("harness.compare", "cli_plot"))

    play = sub.add_parser("play", help="rebuild a saved agent, play greedy episodes, optionally write a GIF")
    play.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with model.json and weights.h5")
    play.add_argument("--episodes", type=_positive_int("EPISODES"),
                      help="episodes (default: the run's eval_episodes)")
    play.add_argument("--seed", type=_non_negative_int("SEED"),
                      help="env seed (default: the run's evaluation seed, which reproduces its score)")
    play.add_argument("--gif", metavar="OUT.gif", help="also film the first episodes into this GIF")
    play.set_defaults(func=_lazy("harness.play", "cli_play"))

    runs = sub.add_parser("runs", help="table of past runs, newest first")
    runs.add_argument("--runs-dir", default="runs", help="where run directories are (default: runs)")
    runs.set_defaults(func=_lazy("harness.runs_table", "cli_runs"))

    sweep = sub.add_parser("sweep", help="every seed of several experiments in parallel, here or on a Ray cluster")
    sweep.add_argument("names", nargs="*", metavar="NAME", help="experiment modules")
    sweep.add_argument("--seeds", default="5", help="a count (5: seeds 0-4, the default) or a list such as 0,3,7")
    sweep.add_argument("--steps", type=_positive_int("STEPS"), help="training steps (default: each experiment's)")
    sweep.add_argument("--workers", type=_positive_int("WORKERS"),
                       help="runs at once (default: this machine's cores; a Ray cluster's CPUs)")
    sweep.add_argument("--backend", default="local", help="local (processes here, the default) or ray")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a schema field in every run")
    sweep.add_argument("--runs-dir", default="runs",
                       help="where run directories and sweeps/<stamp>/ go (default: runs; on a cluster, a shared path)")
    sweep.set_defaults(func=_lazy("harness.sweep", "command"))

    from harness.bench import add_arguments as bench_arguments  # no TensorFlow import

    bench = sub.add_parser("bench", help="fast path vs keras-rl's stock DQNAgent: steps/s, peak RSS (bench/results.md)")
    bench_arguments(bench)
    bench.set_defaults(func=_lazy("harness.bench", "cli_bench"))

    # Each further command adds its parser here, with `set_defaults(func=...)`.
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
