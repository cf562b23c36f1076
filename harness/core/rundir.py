"""The run directory: its layout, the new-folder maker, and every reader of what a run wrote.

A run directory `<runs>/<experiment>/<YYYYmmdd-HHMMSS>-seed<seed>/` holds
  config.json        the resolved experiment and how the run was made (written first)
  metrics.json       keras-rl FileLogger: one entry per training episode
  checkpoints/       state-<step>/, the newest `keep_checkpoints` complete training states
                     (harness.kerasrl.checkpoint; runs made before exact resume hold
                     weights-<step>.h5 files instead)
  model.json         the network architecture (Keras JSON)
  weights.h5         the final network weights (HDF5)
  best_weights.h5    with `validation_interval`: the weights that validated best, which the
                     evaluation, demo.gif and `play` use
  summary.json       steps, speed, evaluation score, `interrupted` (written last)
  curves.png         reward, loss and mean Q against step (harness.report.plots)
  tensorboard/       TensorBoard event files (during training)
  demo.gif           the greedy agent playing (after the summary of a finished run)

`play`, resume, the runs table, plots and compare all start from a directory a user names; every
problem with it (missing, not a run directory, malformed JSON, a run of another experiment) is a
one-line UserError. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import UserError, one_line
from harness.core.schema import LOSSES, Experiment, field_defaults

CONFIG = "config.json"
METRICS = "metrics.json"
SUMMARY = "summary.json"
MODEL = "model.json"
WEIGHTS = "weights.h5"
BEST_WEIGHTS = "best_weights.h5"
CHECKPOINTS = "checkpoints"
CURVES = "curves.png"
DEMO = "demo.gif"
TENSORBOARD = "tensorboard"
CHECKPOINT_PATTERN = re.compile(r"^weights-(\d+)\.h5$")  # weights-only checkpoints of older runs
STATE_PATTERN = re.compile(r"^state-(\d+)$")
STATE_WEIGHTS = "weights.h5"  # the online network's weights inside a state-<step>/ checkpoint
STATE_MARKER = "complete.json"  # written last: each file's size; without it a checkpoint is incomplete
_EXAMPLE = "runs/<experiment>/<YYYYmmdd-HHMMSS>-seed<seed>"


def checkpoint_name(step: int) -> str:
    return f"weights-{step:09d}.h5"


def state_name(step: int) -> str:
    return f"state-{step:09d}"


# ---------------------------------------------------------------------------------------------
# New folders


def new_stamped_dir(base: Path, name: str, what: str = "RUNS folder") -> Path:
    """A new, empty `base/<name>` where `{stamp}` in `name` is the time to the second; a `-k`
    suffix when that exists already (two runs started in the same second). Never reuses a folder.
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        base.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            folder = base / (name.format(stamp=stamp) + (f"-{attempt}" if attempt else ""))
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            probe = folder / ".write-test"
            probe.write_text("")
            probe.unlink()
            return folder
    except OSError as err:
        raise UserError(f"{what} {str(base)!r} can't be written: {err.strerror or err}") from None
    raise UserError(f"could not create a new folder under {base}")


def new_run_dir(runs_dir: str | Path, name: str, seed: int) -> Path:
    return new_stamped_dir(Path(runs_dir) / name, f"{{stamp}}-seed{seed}")


# ---------------------------------------------------------------------------------------------
# Readers


def require_run_dir(path: str | Path | None, what: str = "RUN") -> Path:
    """`path` as a Path if it is an existing directory, else UserError naming `what` (RUN, RESUME)."""
    if path is None or not str(path).strip():
        raise UserError(f"no run directory given; expected {what}={_EXAMPLE}")
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"{what}={str(path)!r} is not a directory; expected a run directory such as {_EXAMPLE}")
    return run_dir


def is_run_dir(path: str | Path) -> bool:
    """Whether `path` looks like a run directory (it has the config.json the runner writes first)."""
    return (Path(path) / CONFIG).is_file()


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
        raise UserError(
            f"{path} is not valid JSON ({err.msg} at line {err.lineno}); expected the file the run wrote"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a JSON {type(data).__name__}; expected a JSON object")
    return data


def read_config(run_dir: str | Path, what: str = "RUN") -> dict[str, Any]:
    """The run's config.json, checked to have its `experiment` and `run` sections."""
    run_dir = require_run_dir(run_dir, what)
    path = run_dir / CONFIG
    if not path.is_file():
        raise UserError(f"{what}={str(run_dir)!r} has no config.json; expected a run directory such as {_EXAMPLE}")
    config = read_json(path)
    if not isinstance(config.get("experiment"), dict) or not isinstance(config.get("run"), dict):
        raise UserError(f"{path} lacks the 'experiment' and 'run' sections a run's config.json has")
    return config


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's summary.json, or None when the run has none (it crashed or is still running)."""
    path = Path(run_dir) / SUMMARY
    if not path.exists():
        return None
    return read_json(path)


def read_metrics(run_dir: str | Path) -> dict[str, np.ndarray]:
    """metrics.json as float arrays (null, which marks episodes before training, as NaN); empty
    when the run ended before its first episode."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return {}
    metrics: dict[str, np.ndarray] = {}
    for key, values in read_json(path).items():
        try:
            metrics[key] = np.array([np.nan if v is None else v for v in values], dtype=float)
        except (TypeError, ValueError):
            raise UserError(f"{path}: {key!r} is not a list of numbers") from None
    return metrics


@dataclasses.dataclass(frozen=True)
class RunLog:
    """One run as logged: its directory, resolved config, per-episode metrics and summary."""

    run_dir: Path
    config: dict[str, Any]
    metrics: dict[str, np.ndarray]
    summary: dict[str, Any] | None  # None while the run is still going (summary.json is last)

    @property
    def name(self) -> str:
        """The experiment's name (config, then summary, then the parent folder's name)."""
        name = (self.config.get("experiment") or {}).get("name")
        if not name and self.summary:
            name = self.summary.get("experiment")
        return str(name or self.run_dir.parent.name)

    @property
    def seed(self) -> int | None:
        return (self.config.get("experiment") or {}).get("seed")

    @property
    def finished(self) -> bool:
        """summary.json written and not interrupted."""
        return self.summary is not None and not self.summary.get("interrupted", True)

    @property
    def steps(self) -> np.ndarray:
        """Cumulative training step at the end of each logged episode."""
        return self.metrics.get("nb_steps", np.zeros(0))

    @property
    def total_steps(self) -> int:
        if self.summary and self.summary.get("steps") is not None:
            return int(self.summary["steps"])
        return int(self.steps[-1]) if self.steps.size else 0


def load_run(run_dir: str | Path) -> RunLog:
    """Read a run directory's config.json, metrics.json and (if present) summary.json."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a run directory (it does not exist)")
    if not is_run_dir(run_dir):
        raise UserError(
            f"{run_dir} is not a run directory (no config.json); expected <runs>/<experiment>/<stamp>-seed<s>/"
        )
    return RunLog(
        run_dir=run_dir,
        config=read_json(run_dir / CONFIG),
        metrics=read_metrics(run_dir),
        summary=read_summary(run_dir),
    )


def find_run_dirs(path: str | Path) -> list[Path]:
    """`path` itself if it is a run directory, else the run directories directly inside it (an
    experiment folder such as runs/catch_dense), oldest first. UserError if there are none."""
    path = Path(path)
    if is_run_dir(path):
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))
        if found:
            return found
        raise UserError(f"{path} is not a run directory and holds none (no config.json)")
    raise UserError(f"{path} is not a run directory (it does not exist)")


def experiment_from_config(
    config: dict[str, Any], config_path: Path, functions_from: Experiment | None = None, loss_unused: bool = False
) -> Experiment:
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
        if functions_from is not None and callable(functions_from.loss) and functions_from.to_dict()["loss"] == loss:
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
        return exp
    except UserError as err:
        raise UserError(f"{config_path}: {err}") from None


# ---------------------------------------------------------------------------------------------
# Checkpoints and where a run resumes


def _numbered(run_dir: str | Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    directory = Path(run_dir) / CHECKPOINTS
    if not directory.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := pattern.match(p.name)))


def list_states(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The run's `state-<step>/` checkpoints as (step, path), oldest first, complete or not
    (temporary folders, `.state-*`, never match)."""
    return _numbered(run_dir, STATE_PATTERN)


def state_problem(path: Path) -> str | None:
    """Why the checkpoint folder `path` cannot be resumed from (None: it is complete).

    The marker is written last and lists every file's size, so a folder without it was cut short
    while writing, and a file of another size was truncated (or replaced) afterwards."""
    try:
        files = json.loads((path / STATE_MARKER).read_text()).get("files")
    except FileNotFoundError:
        return f"no {STATE_MARKER}: written only in part"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return f"{STATE_MARKER} is unreadable"
    if not isinstance(files, dict) or not files:
        return f"{STATE_MARKER} lists no files"
    for name, size in files.items():
        actual = (path / name).stat().st_size if (path / name).is_file() else None
        if actual is None:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} of its {size} bytes"
    return None


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The run's checkpoints as (step, path), oldest first: its complete `state-<step>/` folders and
    an older run's `weights-<step>.h5` files (temporary files never match)."""
    complete = [(step, path) for step, path in list_states(run_dir) if state_problem(path) is None]
    return sorted(complete + _numbered(run_dir, CHECKPOINT_PATTERN))


def newest_checkpoint(run_dir: str | Path) -> tuple[Path, int] | None:
    """The run's newest checkpoint (a state folder or a weights file) and its step, or None."""
    found = list_checkpoints(run_dir)
    if not found:
        return None
    step, path = found[-1]
    return path, step


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: the weights file and the global step they were saved at, and
    with `state` the whole training state saved with them (harness.kerasrl.checkpoint)."""

    run_dir: Path
    weights: Path
    step: int
    source: str  # "checkpoint" or "final weights"
    state: Path | None = None  # a complete state-<step>/ folder: an exact resume
    skipped: tuple[str, ...] = ()  # one warning line per newer checkpoint that was incomplete


def _newest_complete_state(run_dir: Path) -> tuple[ResumePoint | None, list[str]]:
    skipped: list[str] = []
    for step, path in reversed(list_states(run_dir)):
        problem = state_problem(path)
        if problem is None:
            return ResumePoint(run_dir, path / STATE_WEIGHTS, step, "checkpoint", state=path), skipped
        skipped.append(f"warning: checkpoint {path} is incomplete ({problem}); skipped, resuming from an older one")
    return None, skipped


def find_resume_point(run_dir: Path) -> ResumePoint:
    """The newest saved state of a run.

    The newest complete `checkpoints/state-<step>/` wins: it holds everything training needs, so the
    resumed run continues exactly (even when the run's final weights.h5 is newer: that is weights
    only, from the middle of an episode). A newer incomplete one is skipped, with a warning line in
    `skipped`. Without any complete state (a run stopped before its first one, or made before exact
    resume), the weights-only candidates: the newest `checkpoints/weights-<step>.h5`, and
    `weights.h5` at summary.json's `steps` (only a run with a summary says which step its final
    weights are from). The one with the higher step wins; on a tie the final weights, which include
    the training batch keras-rl runs after the last step's checkpoint when that step ends an episode.
    """
    state, skipped = _newest_complete_state(run_dir)
    if state is not None:
        return dataclasses.replace(state, skipped=tuple(skipped))
    candidates: list[ResumePoint] = []
    legacy = _numbered(run_dir, CHECKPOINT_PATTERN)
    if legacy:
        candidates.append(ResumePoint(run_dir, legacy[-1][1], legacy[-1][0], "checkpoint"))
    summary = read_summary(run_dir)
    final = run_dir / WEIGHTS
    if summary is not None and final.is_file():
        steps = summary.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise UserError(f"{run_dir / SUMMARY}: steps={steps!r}; expected the run's step count")
        candidates.append(ResumePoint(run_dir, final, steps, "final weights"))
    if not candidates:
        raise UserError(
            f"{run_dir} has no complete checkpoints/state-<step>/, no checkpoints/weights-<step>.h5 and no "
            "weights.h5 with a summary.json; there is nothing to resume from"
        )
    best = max(candidates, key=lambda p: (p.step, p.source == "final weights"))
    return dataclasses.replace(best, skipped=tuple(skipped))


# ---------------------------------------------------------------------------------------------
# Reuse: is there already a finished run of exactly this experiment?


def _normalise(data: Any) -> Any:
    # The stored config went through JSON; send ours through it too so tuples, ints and floats
    # compare as they were written.
    return json.loads(json.dumps(data))


def match_reason(run_dir: Path, wanted: dict[str, Any]) -> str | None:
    """None if `run_dir` is a finished run of `wanted` (a normalised Experiment dict), else why not.

    Finished: summary.json (written last) with `interrupted: false` and the full step budget.
    The same: config.json's `experiment` equal to `wanted` as a whole dict, so any changed setting
    (module, SET, a schema default) means a new run; how the run was made (`config.run`: command,
    host, versions) is not compared. A field added to the schema since the run was made counts as
    its default, since a new setting defaults to what runs did before it existed (n_step=1 is the
    one-step target bit for bit, for example); at any other value it is a different run.
    """
    if not (run_dir / SUMMARY).is_file():
        return "unfinished"
    try:
        summary, config = read_json(run_dir / SUMMARY), read_json(run_dir / CONFIG)
    except UserError:
        return "unreadable"
    if summary.get("interrupted", True):
        return "interrupted"
    if summary.get("seed") != wanted["seed"]:
        return "other seed"
    if summary.get("steps") != wanted["nb_steps"] or summary.get("nb_steps") != wanted["nb_steps"]:
        return "other steps"
    stored = config.get("experiment")
    if not isinstance(stored, dict):
        return "unreadable"
    defaults = field_defaults()
    stored = {**{k: defaults[k] for k in wanted.keys() - stored.keys() if k in defaults}, **stored}
    if stored != wanted:
        return "other settings"
    return None


def find_finished(runs_dir: str | Path, exp: Experiment) -> tuple[Path | None, Counter[str]]:
    """The newest finished run of `exp` under `runs_dir/<name>/`, and why the others did not match."""
    wanted = _normalise(exp.to_dict())
    reasons: Counter[str] = Counter()
    base = Path(runs_dir) / exp.name
    if not base.is_dir():
        return None, reasons
    # Run folders are named <YYYYmmdd-HHMMSS>-seed<s>[-n]: newest last by name.
    candidates = sorted((p for p in base.iterdir() if p.is_dir() and is_run_dir(p)), key=lambda p: p.name, reverse=True)
    for run_dir in candidates:
        reason = match_reason(run_dir, wanted)
        if reason is None:
            return run_dir, reasons
        reasons[reason] += 1
    return None, reasons
