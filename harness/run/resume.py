"""Resuming a run: which experiment it continues and where, checked before anything is written.

`run NAME --resume RUN_DIR` continues RUN_DIR in a new run directory from its newest complete
checkpoint (harness.core.rundir.find_resume_point; a newer incomplete one is skipped with a
warning); STEPS is the new total budget. A checkpoint (harness.kerasrl.checkpoint) holds the whole
training state: both networks, the optimizer's slots, the replay memory, the global step, every
random generator and the metrics and validation histories; it is taken at the first episode end
after every `checkpoint_interval` steps, so the resumed run gives the same episodes, metrics and
final weights as the uninterrupted run, bit for bit. Without the memory (`checkpoint_memory=false`,
or `fast_path=false`, whose keras-rl SequentialMemory is not saved) and from an older run's weights
alone, the memory refills and training waits `nb_steps_warmup` again: the run goes on, not exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import UserError
from harness.core.registry import load_experiment, with_overrides
from harness.core.rundir import (
    ResumePoint,
    experiment_from_config,
    find_resume_point,
    read_config,
    read_summary,
    require_run_dir,
)
from harness.core.schema import Experiment


def _check_parent_name(config: dict[str, Any], run_dir: Path, name: str) -> None:
    parent = config["experiment"].get("name")
    if parent != name:
        raise UserError(
            f"RESUME={str(run_dir)!r} is a run of experiment {parent!r}, not {name!r}; expected NAME={parent}"
        )


def resume_experiment(
    name: str, resume_from: str | Path, seed: int | None = None, steps: int | None = None, overrides: Sequence[str] = ()
) -> Experiment:
    """The experiment a resumed run continues: the parent run's config.json (its resolved settings,
    SET overrides included), then this command's overrides (STEPS is the new total budget).

    `name` must be the parent's experiment; its module gives back what config.json can only name
    (callbacks, a loss function).
    """
    module_exp = load_experiment(name)
    run_dir = require_run_dir(resume_from, "RESUME")
    config = read_config(run_dir, "RESUME")
    _check_parent_name(config, run_dir, name)
    exp = experiment_from_config(config, run_dir / "config.json", functions_from=module_exp)
    return with_overrides(exp, seed, steps, overrides)


def find_start(exp: Experiment, resume_from: str | Path) -> ResumePoint:
    """Check that `resume_from` is a run of `exp` with steps left to train (`exp.nb_steps` is the
    total budget) and return where the resumed run starts. Whether its weights fit the network is
    checked when they are loaded into the run's agent, before its directory exists."""
    run_dir = require_run_dir(resume_from, "RESUME")
    config = read_config(run_dir, "RESUME")
    if exp.name:
        _check_parent_name(config, run_dir, exp.name)
    point = find_resume_point(run_dir)
    # A finished run's newest checkpoint is usually a little before its end (checkpoints wait for
    # an episode end); what it reached is what it trained.
    summary = read_summary(run_dir) or {}
    reached = max(point.step, summary["steps"] if isinstance(summary.get("steps"), int) else 0)
    if reached >= exp.nb_steps:
        raise UserError(
            f"RESUME={str(run_dir)!r} already reached step {reached} of nb_steps={exp.nb_steps}; "
            f"expected STEPS=<a total larger than {reached}> to train further"
        )
    return point
