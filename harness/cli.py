"""Command line: `python -m harness <command>`. The Makefile targets call these.

  run NAME [--steps N] [--seed S] [--set key=value ...] [--runs-dir DIR]
  list [--fields]

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

    exp = load_experiment(args.name)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"nb_steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    exp = apply_overrides(exp, overrides)
    check_types(exp)
    exp.validate()

    from harness.runner import RunInterrupted, run

    try:
        run(exp, args.runs_dir, command=sys.argv)
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
    run.set_defaults(func=cmd_run)

    listing = sub.add_parser("list", help="list the experiments")
    listing.add_argument("--fields", action="store_true", help="also list the schema fields")
    listing.set_defaults(func=cmd_list)

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
