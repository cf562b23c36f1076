"""The `run` and `list` commands (harness/cli.py parses their arguments)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.registry import available_experiments, load_experiment, resolve_experiment
from harness.core.schema import choose_onednn, field_docs, field_types, type_name


def cmd_run(
    args: argparse.Namespace,
    judge: Callable[[int, float], str | None] | None = None,
    labels: dict[str, Any] | None = None,
) -> int:
    """`run`. A tuning trial's run (`--trial`, wired by harness/cli.py) also gets its study's
    `judge` of validation rounds and the `labels` its config.json records."""
    if args.resume is not None:
        from harness.run.resume import resume_experiment

        # The parent run's resolved settings, then these overrides (STEPS: the new total budget).
        exp = resume_experiment(args.name, args.resume, args.seed, args.steps, args.overrides)
    else:
        exp = resolve_experiment(args.name, args.seed, args.steps, args.overrides)
    choose_onednn(exp)  # before TensorFlow is imported

    from harness.run.runner import RunDiverged, RunInterrupted, RunPruned, run

    try:
        run(exp, args.runs_dir, command=sys.argv, resume_from=args.resume, judge=judge, labels=labels)
    except RunPruned as pruned:
        print(f"pruned: {pruned}", file=sys.stderr)
        return pruned.exit_code
    except RunInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return stop.exit_code
    except RunDiverged as diverged:
        print(f"error: {diverged}", file=sys.stderr)
        return diverged.exit_code
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    names = available_experiments()
    width = max([16, *(len(name) for name in names)])
    for name in names:
        try:
            exp = load_experiment(name)
            print(
                f"{name:<{width}} {exp.env_id} {exp.env_kwargs or ''} network={exp.network} "
                f"optimizer={exp.optimizer} nb_steps={exp.nb_steps}"
            )
        except UserError as err:
            print(f"{name:<{width}} (broken: {err})")
    if args.fields:
        print("\nfields (SET key=value):")
        types = field_types()
        for key, doc in field_docs().items():
            print(f"  {key:<24} {type_name(types[key]):<12} {doc}")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    """`play`: the run's own oneDNN choice (config.json) before TensorFlow loads, so that the
    replay computes what the run computed."""
    from harness.core.rundir import experiment_from_config, read_config

    config = read_config(args.run_dir, "RUN")
    onednn = config["run"].get("onednn")
    if isinstance(onednn, bool):
        import os

        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1" if onednn else "0")
    else:  # a run from before the setting: its experiment's default
        choose_onednn(experiment_from_config(config, Path(args.run_dir) / "config.json", loss_unused=True))
    from harness.run.play import cli_play

    return cli_play(args)
