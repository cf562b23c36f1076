"""Reading run directories back: config.json, summary.json, the weights, and where a run resumes.

`play`, resume (`run --resume`) and the runs table all start from a directory a user names. Every
problem with it (missing, not a run directory, malformed JSON, truncated or mismatched weights, a
run of another experiment) is a one-line `UserError` raised before anything is written.

This module imports no TensorFlow at import time, so `make runs` stays fast; the weight checks
import it when they run.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.experiment import LOSSES, Experiment

# The checkpoint file name written by harness.callbacks.PruningCheckpoint (weights-<step>.h5).
# Repeated here so that the runs table does not import TensorFlow; tests/test_run_outputs.py reads
# checkpoints a real run wrote, so the two cannot drift apart unnoticed.
CHECKPOINT_PATTERN = re.compile(r"^weights-(\d+)\.h5$")
_EXAMPLE = "runs/<experiment>/<YYYYmmdd-HHMMSS>-seed<seed>"


def one_line(err: BaseException, limit: int = 240) -> str:
    """An exception's message on one line (library errors are often multi-line)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def require_run_dir(path: str | Path | None, what: str = "RUN") -> Path:
    """`path` as a Path if it is an existing directory, else UserError naming `what` (RUN, RESUME)."""
    if path is None or not str(path).strip():
        raise UserError(f"no run directory given; expected {what}={_EXAMPLE}")
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"{what}={str(path)!r} is not a directory; expected a run directory such as {_EXAMPLE}")
    return run_dir


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; a missing, unreadable or malformed file is a UserError."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path} can't be read: {one_line(err)}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}); "
                        "expected the file the run wrote") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a JSON {type(data).__name__}; expected a JSON object")
    return data


def read_config(run_dir: Path, what: str = "RUN") -> dict[str, Any]:
    """The run's config.json, checked to have its `experiment` and `run` sections."""
    run_dir = require_run_dir(run_dir, what)
    path = run_dir / "config.json"
    if not path.is_file():
        raise UserError(f"{what}={str(run_dir)!r} has no config.json; expected a run directory such as {_EXAMPLE}")
    config = read_json(path)
    if not isinstance(config.get("experiment"), dict) or not isinstance(config.get("run"), dict):
        raise UserError(f"{path} lacks the 'experiment' and 'run' sections a run's config.json has")
    return config


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary.json, or None when the run has none (it crashed or is still running)."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    return read_json(path)


def experiment_from_config(config: dict[str, Any], config_path: Path,
                           functions_from: Experiment | None = None,
                           loss_unused: bool = False) -> Experiment:
    """The run's Experiment from its config.json.

    Functions are stored by qualified name and cannot be rebuilt from JSON. `functions_from` (the
    experiment module's current definition) gives back its callbacks, and its loss function when
    that has the name the config recorded. `loss_unused=True` (play: the agent never trains) lets a
    function loss fall back to Huber, which only the never-called training step would use.
    """
    data = dict(config["experiment"])
    loss = data.get("loss")
    function_loss = None
    if isinstance(loss, str) and loss not in LOSSES:
        if functions_from is not None and callable(functions_from.loss) \
                and functions_from.to_dict()["loss"] == loss:
            function_loss = functions_from.loss
            data["loss"] = "huber"  # a placeholder from_dict accepts; replaced below
        elif loss_unused:
            data["loss"] = "huber"
    try:
        exp = Experiment.from_dict(data)
        if function_loss is not None:
            exp = dataclasses.replace(exp, loss=function_loss)
        if functions_from is not None:
            exp = dataclasses.replace(exp, callbacks=list(functions_from.callbacks))
        return exp.validate()
    except UserError as err:
        raise UserError(f"{config_path}: {err}") from None


# ---------------------------------------------------------------------------------------------
# Weights

def newest_checkpoint(run_dir: Path) -> tuple[Path, int] | None:
    """The run's newest checkpoint file and its step, or None."""
    directory = Path(run_dir) / "checkpoints"
    if not directory.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    if not found:
        return None
    step, path = max(found)
    return path, step


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: the weights file and the global step they were saved at."""

    run_dir: Path
    weights: Path
    step: int
    source: str  # "checkpoint" or "final weights"


def find_resume_point(run_dir: Path) -> ResumePoint:
    """The newest saved state of a run.

    Candidates: the newest `checkpoints/weights-<step>.h5`, and `weights.h5` at summary.json's
    `steps` (only a run with a summary says which step its final weights are from; an interrupted
    run saves them at the step it stopped, usually after its last checkpoint). The one with the
    higher step wins; on a tie the final weights, which include the training batch keras-rl runs
    after the last step's checkpoint when that step ends an episode.
    """
    candidates: list[ResumePoint] = []
    checkpoint = newest_checkpoint(run_dir)
    if checkpoint is not None:
        candidates.append(ResumePoint(run_dir, checkpoint[0], checkpoint[1], "checkpoint"))
    summary = read_summary(run_dir)
    final = run_dir / "weights.h5"
    if summary is not None and final.is_file():
        steps = summary.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise UserError(f"{run_dir / 'summary.json'}: steps={steps!r}; expected the run's step count")
        candidates.append(ResumePoint(run_dir, final, steps, "final weights"))
    if not candidates:
        raise UserError(f"{run_dir} has no checkpoints/weights-<step>.h5 and no weights.h5 with a "
                        "summary.json; there is nothing to resume from")
    return max(candidates, key=lambda p: (p.step, p.source == "final weights"))


def load_weights_checked(target: Any, weights: Path, what: str) -> None:
    """`target.load_weights(weights)` (a Keras model or a keras-rl agent), every failure a UserError.

    `what` names the network the weights should fit, for the message.
    """
    if not weights.is_file():
        raise UserError(f"{weights} is missing")
    import h5py

    # h5py first: a truncated or non-HDF5 file gets a message about the file, not Keras' traceback.
    try:
        with h5py.File(weights, "r") as stored:
            stored.visit(lambda name: None)
    except (OSError, ValueError) as err:
        raise UserError(f"{weights} can't be read as HDF5 weights (truncated or not a weights file): "
                        f"{one_line(err)}") from None
    from harness.compat import tf

    try:
        target.load_weights(str(weights))
    except tf.errors.OpError as err:
        # Graph mode reports a shape mismatch from the session, with the whole graph's stack trace
        # in the message; the line that names the shapes is the one a user needs.
        lines = [line.strip() for line in err.message.splitlines() if line.strip()]
        shape_lines = [line for line in lines if "shape" in line]
        raise UserError(f"{weights} does not fit {what}: "
                        f"{(shape_lines or lines or [type(err).__name__])[0]}") from None
    except (ValueError, KeyError, OSError, TypeError) as err:
        raise UserError(f"{weights} does not fit {what}: {one_line(err)}") from None


# ---------------------------------------------------------------------------------------------
# Resume

def _check_parent_name(config: dict[str, Any], run_dir: Path, name: str) -> None:
    parent = config["experiment"].get("name")
    if parent != name:
        raise UserError(f"RESUME={str(run_dir)!r} is a run of experiment {parent!r}, not {name!r}; "
                        f"expected NAME={parent}")


def resume_experiment(name: str, resume_from: str | Path, overrides: list[str]) -> Experiment:
    """The experiment a resumed run continues: the parent run's config.json (its resolved settings,
    SET overrides included), then this command's `overrides` (STEPS is the new total budget).

    `name` must be the parent's experiment; its module gives back what config.json can only name
    (callbacks, a loss function).
    """
    from harness.experiment import apply_overrides, check_types, load_experiment

    module_exp = load_experiment(name)
    run_dir = require_run_dir(resume_from, "RESUME")
    config = read_config(run_dir, "RESUME")
    _check_parent_name(config, run_dir, name)
    exp = experiment_from_config(config, run_dir / "config.json", functions_from=module_exp)
    exp = apply_overrides(exp, overrides)
    check_types(exp)
    return exp.validate()


def check_weights_fit(exp: Experiment, weights: Path) -> None:
    """Load `weights` into a throwaway agent for `exp`: a UserError if they are unreadable or do
    not fit its network. (The runner checks before it creates the new run directory, so a bad
    RESUME leaves nothing behind; the real agent is built afterwards in a fresh session.)"""
    from harness.agents import build_agent, make_env, new_session

    new_session(exp.seed)
    env = make_env(exp, seed=None)
    try:
        agent = build_agent(exp, env)
    finally:
        env.close()
    load_weights_checked(agent, weights, f"the network of experiment {exp.name!r}")


def prepare_resume(exp: Experiment, resume_from: str | Path) -> ResumePoint:
    """Check that `resume_from` is a run of `exp` with weights that fit it and steps left to train
    (`exp.nb_steps` is the total budget), and return where the resumed run starts."""
    run_dir = require_run_dir(resume_from, "RESUME")
    config = read_config(run_dir, "RESUME")
    if exp.name:
        _check_parent_name(config, run_dir, exp.name)
    point = find_resume_point(run_dir)
    if point.step >= exp.nb_steps:
        raise UserError(f"RESUME={str(run_dir)!r} already reached step {point.step} of nb_steps={exp.nb_steps}; "
                        f"expected STEPS=<a total larger than {point.step}> to train further")
    check_weights_fit(exp, point.weights)
    return point
