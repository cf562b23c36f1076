"""The `run` and `list` commands (harness/cli.py parses their arguments)."""

from __future__ import annotations

import argparse
import sys

from harness.core.errors import UserError
from harness.core.registry import available_experiments, load_experiment, resolve_experiment
from harness.core.schema import field_docs, field_types, type_name


def cmd_run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        from harness.run.resume import resume_experiment

        # The parent run's resolved settings, then these overrides (STEPS: the new total budget).
        exp = resume_experiment(args.name, args.resume, args.seed, args.steps, args.overrides)
    else:
        exp = resolve_experiment(args.name, args.seed, args.steps, args.overrides)

    from harness.run.runner import RunInterrupted, run

    try:
        run(exp, args.runs_dir, command=sys.argv, resume_from=args.resume)
    except RunInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return stop.exit_code
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for name in available_experiments():
        try:
            exp = load_experiment(name)
            print(
                f"{name:<16} {exp.env_id} {exp.env_kwargs or ''} network={exp.network} "
                f"optimizer={exp.optimizer} nb_steps={exp.nb_steps}"
            )
        except UserError as err:
            print(f"{name:<16} (broken: {err})")
    if args.fields:
        print("\nfields (SET key=value):")
        types = field_types()
        for key, doc in field_docs().items():
            print(f"  {key:<24} {type_name(types[key]):<12} {doc}")
    return 0
