"""Command line: `python -m harness [--experiments DIR] <command> ...` (console script `dqn-harness`).

One table, COMMANDS, maps each subcommand to its help, its arguments and the function that runs
it (rl-baselines3-zoo's `cli.py` style). The function's module is imported only when its command
runs, so `list`, `runs` and every rejected argument answer without importing TensorFlow.

A user mistake prints one line, `error: ...`, and exits with status 2; an interrupted run exits
with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM) after saving what it had.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.errors import UserError

PROG = "python -m harness"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but its usage errors go through our one-line error path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def run_main(
    parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int], argv: Sequence[str] | None = None
) -> int:
    """Parse `argv` and run `body(args)`: a UserError is one `error:` line and exit status 2
    (shared by `python -m harness` and the bench scripts)."""
    try:
        return body(parser.parse_args(argv))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def positive_int(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1 or str(text).strip().lstrip("+") != str(value):
            raise UserError(f"{name}={text!r} is not allowed; expected a positive integer")
        return value

    return parse


def json_object(name: str) -> Callable[[str], dict]:
    """An argparse type: a JSON object such as '{"size": 16}' (empty text: {})."""

    def parse(text: str) -> dict:
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise UserError(f"{name} {text!r}: expected a JSON object, e.g. '{{\"size\":16}}'")
        return value

    return parse


def _non_negative_int(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise UserError(f"{name}={text!r} is not allowed; expected an integer >= 0")
        return value

    return parse


# --- Arguments of each command ---------------------------------------------------------------


def _overrides(parser: argparse.ArgumentParser, what: str = "override any schema field, e.g. --set gamma=0.95") -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=what)


def _runs_dir(parser: argparse.ArgumentParser, what: str = "where run directories go") -> None:
    parser.add_argument("--runs-dir", default="runs", help=f"{what} (default: runs)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="experiment module (see `list`)")
    p.add_argument("--steps", type=positive_int("STEPS"), help="training steps (nb_steps)")
    p.add_argument("--seed", type=_non_negative_int("SEED"), help="seed")
    _overrides(p)
    _runs_dir(p)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue this run of NAME from its newest complete checkpoint, in a new run directory",
    )
    p.add_argument(
        "--trial",
        metavar="STUDY:NUMBER",
        help="this run is that trial of a tune study (set by `tune`): its validation rounds are reported to the "
        "study, whose pruner may stop it; the storage URL comes from DQN_HARNESS_TUNE_STORAGE",
    )


def _run(args: argparse.Namespace) -> int:
    """`run`; a tune trial's run (`--trial`) also gets the study's judge of its validation rounds
    (harness.launch.study, Optuna) for the runner (harness.run, TensorFlow): the command line is
    the one layer that sees both."""
    from harness.run.commands import cmd_run

    if args.trial is None:
        return cmd_run(args)
    from harness.launch.study import TrialReporter

    reporter = TrialReporter(args.trial)
    return cmd_run(args, judge=reporter, labels=reporter.labels)


def _list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fields", action="store_true", help="also list the schema fields")


def _baseline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("env_id", help="Catch-v0 or Cave-v0")
    p.add_argument("--episodes", type=positive_int("--episodes"), default=10, help="episodes per player (10)")
    p.add_argument(
        "--seed",
        type=_non_negative_int("--seed"),
        default=0,
        help="env seed of the first episode (a run's scripted players use seed + 10000)",
    )
    p.add_argument(
        "--env-kwargs", type=json_object("--env-kwargs"), default={}, metavar="JSON", help="e.g. '{\"size\":16}'"
    )


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME", help="experiment modules to compare")
    p.add_argument("--seeds", type=positive_int("SEEDS"), default=3, help="seeds 0..SEEDS-1 (default 3)")
    p.add_argument("--steps", type=positive_int("STEPS"), help="training steps (default: each experiment's)")
    p.add_argument(
        "--workers", type=positive_int("WORKERS"), help="missing runs trained at once (default: this machine's cores)"
    )
    _overrides(p, "override a schema field in every experiment")
    _runs_dir(p, "where runs are found and trained")
    p.add_argument("--out", help="folder for compare.png/.md/.csv (default: <runs>/compare/<names>-<stamp>)")


def _plot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or experiment folders")
    p.add_argument("--out", help="PNG to write (default: one run's curves.png, else ./plot-<names>.png)")


def _play_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with model.json and weights.h5")
    p.add_argument("--episodes", type=positive_int("EPISODES"), help="episodes (default: the run's eval_episodes)")
    p.add_argument(
        "--seed",
        type=_non_negative_int("SEED"),
        help="env seed (default: the run's evaluation seed, which reproduces its score)",
    )
    p.add_argument("--gif", metavar="OUT.gif", help="also film the first episodes into this GIF")
    p.add_argument(
        "--env-kwargs",
        type=json_object("--env-kwargs"),
        default={},
        metavar="JSON",
        help="play a variant of the run's game: these env_kwargs over the run's own, e.g. '{\"flicker\":0.5}'",
    )
    p.add_argument(
        "--memoryless",
        action="store_true",
        help="a recurrent run's agent plays with its LSTM state zeroed before every action (what its memory adds)",
    )


def _runs_args(p: argparse.ArgumentParser) -> None:
    _runs_dir(p, "where run directories are")


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="experiment modules")
    p.add_argument("--seeds", default="5", help="a count (5: seeds 0-4, the default) or a list such as 0,3,7")
    p.add_argument("--steps", type=positive_int("STEPS"), help="training steps (default: each experiment's)")
    p.add_argument(
        "--workers",
        type=positive_int("WORKERS"),
        help="runs at once (default: this machine's cores; a Ray cluster's CPUs)",
    )
    p.add_argument("--backend", default="local", help="local (processes here, the default) or ray")
    _overrides(p, "override a schema field in every run")
    p.add_argument(
        "--runs-dir",
        default="runs",
        help="where run directories and sweeps/<stamp>/ go (default: runs; on a cluster, a shared path)",
    )


def _benchmark_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "games",
        nargs="*",
        metavar="GAME",
        help="games of the suite, by env id or experiment name (default: all: CartPole-v1, Acrobot-v1, "
        "MountainCar-v0, LunarLander-v3)",
    )
    p.add_argument("--seeds", default="5", help="a count (5: seeds 0-4, the default) or a list such as 0,3,7")
    p.add_argument("--steps", type=positive_int("STEPS"), help="training steps (default: each experiment's budget)")
    p.add_argument(
        "--workers", type=positive_int("WORKERS"), help="runs trained at once (default: this machine's cores)"
    )
    _overrides(p, "override a schema field in every run")
    _runs_dir(p, "where runs are found and trained, and benchmark/<stamp>/ logs go")
    p.add_argument("--out", default="docs", help="folder for benchmark.md/.csv/.png (default: docs)")


def _tune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="experiment module (see `list`); its SEARCH_SPACE, else the default DQN space")
    p.add_argument("--trials", type=positive_int("TRIALS"), default=20, help="new trials to run (default 20)")
    p.add_argument(
        "--workers", type=positive_int("WORKERS"), default=1, help="trials at once, threads split (default 1)"
    )
    p.add_argument("--steps", type=positive_int("STEPS"), help="training steps per trial (default: the experiment's)")
    p.add_argument(
        "--storage",
        metavar="URL",
        help="postgresql://user@host:5432/db to share the study between machines (default: DQN_HARNESS_TUNE_STORAGE, "
        "else SQLite in <runs>/tune/<study>/study.db)",
    )
    p.add_argument("--study", help="the study's name (default: the experiment's); the same name continues it")
    p.add_argument("--pruner", default="median", help="median (default), halving, none, or threshold:<score>")
    p.add_argument("--sampler", default="tpe", help="tpe (default), random, or grid (categorical spaces)")
    _overrides(p, "fix a schema field in every trial, e.g. --set validation_episodes=5")
    _runs_dir(p, "where <runs>/tune/<study>/ goes")


def _tune_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", metavar="STUDY", help="the study's name")
    p.add_argument(
        "--storage", metavar="URL", help="the study's database (default: SQLite in <runs>/tune/<study>/study.db)"
    )
    _runs_dir(p, "where <runs>/tune/<study>/ is")


def _bench_module() -> Any:
    """bench.speed, when run from the project checkout (the benchmarks live beside their results in
    its bench/, outside the installed package), else None."""
    try:
        return importlib.import_module("bench.speed")
    except ModuleNotFoundError:
        return None


def _bench_args(p: argparse.ArgumentParser) -> None:
    speed = _bench_module()
    if speed is not None:
        speed.add_arguments(p)


def _bench(args: argparse.Namespace) -> int:
    """`python -m harness bench ...` is `make bench` (`python -m bench.speed ...`)."""
    speed = _bench_module()
    if speed is None:
        raise UserError("the benchmarks are in the project checkout's bench/; run `make bench` from its root")
    result: int = speed.cli_bench(args)
    return result


# --- The table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    entry: str | Callable[[argparse.Namespace], int]  # "module:function", imported when the command runs

    def __call__(self, args: argparse.Namespace) -> int:
        if callable(self.entry):
            return self.entry(args)
        module, _, function = self.entry.partition(":")
        result: int = getattr(importlib.import_module(module), function)(args)
        return result


COMMANDS: dict[str, Command] = {
    "run": Command("train, evaluate and save one experiment run", _run_args, _run),
    "list": Command("list the experiments", _list_args, "harness.run.commands:cmd_list"),
    "baseline": Command(
        "mean score of a game's scripted players (random, perfect/heuristic)",
        _baseline_args,
        "harness.run.scripted:cmd_baseline",
    ),
    "compare": Command(
        "train missing runs of several experiments, plot and tabulate them",
        _compare_args,
        "harness.launch.compare:cli_compare",
    ),
    "plot": Command(
        "redraw curves and the table from finished run directories", _plot_args, "harness.report.plots:cli_plot"
    ),
    "play": Command(
        "rebuild a saved agent, play greedy episodes, optionally write a GIF",
        _play_args,
        "harness.run.commands:cmd_play",
    ),
    "runs": Command("table of past runs, newest first", _runs_args, "harness.report.runs_table:cli_runs"),
    "sweep": Command(
        "every seed of several experiments in parallel, here or on a Ray cluster",
        _sweep_args,
        "harness.launch.sweep:command",
    ),
    "benchmark": Command(
        "the classic-control suite over several seeds in parallel: table and figure beside the published results",
        _benchmark_args,
        "harness.launch.benchmark:command",
    ),
    "tune": Command(
        "an Optuna study over an experiment's search space, maximising the validation score",
        _tune_args,
        "harness.launch.tune:command",
    ),
    "tune-report": Command(
        "a study's trials table, best settings as a SET line, and figures",
        _tune_report_args,
        "harness.launch.tune_report:command",
    ),
    "bench": Command(
        "fast path vs keras-rl's stock DQNAgent: steps/s, peak RSS (as `make bench`)", _bench_args, _bench
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="DQN experiments with keras-rl2.")
    parser.add_argument(
        "--experiments",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of your own experiment modules (repeatable; also EXPERIMENTS=DIR "
        "in make, or DQN_HARNESS_EXPERIMENTS)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name, command in COMMANDS.items():
        command.arguments(sub.add_parser(name, help=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.experiments:
            from harness.core.registry import add_user_dirs

            add_user_dirs(args.experiments)
        return COMMANDS[args.command](args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
