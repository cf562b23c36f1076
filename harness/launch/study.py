"""The Optuna study a `tune` works in: its storage, its sampler and pruner, and the trial's side.

Storage: by default a SQLite file, `<RUNS>/tune/<study>/study.db` (no server); `--storage
postgresql://user[:password]@host[:port]/database` (psycopg2) puts the study on a PostgreSQL
server, so that workers on several machines share one study. The URL may also come from
DQN_HARNESS_TUNE_STORAGE, which keeps a password off the command line; it is how a trial's run
process learns it, and every message and record shows the URL with its password hidden. A URL
of another kind, one that does not parse or a database that does not answer is a one-line
UserError before any trial starts. Heartbeats (every HEARTBEAT_SECONDS, by Optuna's own thread
while a trial runs) let the next command that opens the study mark the trials of a worker that
died as failed instead of running forever.

Pruners (`--pruner`): `median` (Optuna's MedianPruner: after 5 trials and the first third of the
budget, stop a trial whose best validation score so far is below the median of the others at the
same step), `halving` (successive halving), `none`, and `threshold:X` (stop a trial at the first
validation round that scores below X). Samplers (`--sampler`): `tpe` (default), `random`, `grid`
(every combination of an all-categorical space, each once).

The trial's side (`TrialReporter`): a trial's run process (`python -m harness run ... --trial
STUDY:NUMBER`) opens the study itself and reports each validation round to its trial
(`trial.report`), then asks the trial's pruner (`trial.should_prune`); harness/cli.py hands the
reporter to the runner as its judge, so Optuna lives here and TensorFlow in the run layer.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import UserError, one_line

STORAGE_ENV = "DQN_HARNESS_TUNE_STORAGE"
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120  # a RUNNING trial without a heartbeat for this long belongs to a dead worker
PRUNERS = ("median", "halving", "none", "threshold:<score>")
SAMPLERS = ("tpe", "random", "grid")
TPE_STARTUP_TRIALS = 5  # random trials before TPE models the results
MEDIAN_STARTUP_TRIALS = 5  # finished trials before the median pruner stops any
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_STORAGE_EXAMPLE = "postgresql://user@host:5432/database, or no STORAGE for SQLite under RUNS/tune/<study>/"


def load_optuna() -> Any:
    """Optuna, quiet: the tune prints its own line per trial (Optuna would also log each failed
    trial's traceback); experimental-feature warnings off."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def check_study_name(name: str) -> str:
    if not _STUDY_NAME.match(name or ""):
        raise UserError(
            f"STUDY={name!r} is not allowed; expected a plain name of letters, digits, '.', '_' or '-' "
            "(it names the folder RUNS/tune/<study>/)"
        )
    return name


def study_dir(runs_dir: str | Path, study: str) -> Path:
    return Path(runs_dir).expanduser().resolve() / "tune" / study


# ---------------------------------------------------------------------------------------------
# Storage


def hide_password(url: str) -> str:
    """`url` with its password as ***, for messages and records."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def storage_url(storage: str | None, folder: Path) -> str:
    """The storage URL a study uses: `storage`, else DQN_HARNESS_TUNE_STORAGE, else the SQLite
    file in the study's folder; checked to be SQLite or PostgreSQL (psycopg2) and to name a database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = (storage or os.environ.get(STORAGE_ENV) or "").strip()
    if not text:
        return f"sqlite:///{folder / 'study.db'}"
    shown = hide_password(text)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise UserError(f"STORAGE={shown!r} is not a database URL; expected {_STORAGE_EXAMPLE}") from None
    if url.drivername not in ("sqlite", "postgresql", "postgresql+psycopg2"):
        raise UserError(
            f"STORAGE={shown!r}: {url.drivername} is not supported; expected {_STORAGE_EXAMPLE} "
            "(PostgreSQL through psycopg2, or a sqlite:///path file)"
        )
    if not url.database:
        raise UserError(f"STORAGE={shown!r} names no database; expected {_STORAGE_EXAMPLE}")
    if url.drivername == "postgresql":
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the pinned driver is psycopg2.
        return url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return text


def open_storage(url: str, heartbeat: bool = True) -> Any:
    """Optuna's RDBStorage at `url` (tables created on first use); a database that cannot be
    reached or opened is a one-line UserError."""
    optuna = load_optuna()
    from sqlalchemy.exc import SQLAlchemyError

    if url.startswith("sqlite"):
        # Trials of several processes write to one file; wait for its lock rather than fail.
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
        database = Path(url.removeprefix("sqlite:///"))
        if database.parent and not database.parent.is_dir():
            raise UserError(f"STORAGE={url!r}: folder {str(database.parent)!r} does not exist")
    else:
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    heartbeats: dict[str, Any] = (
        {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS} if heartbeat else {}
    )
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeats)
    except (SQLAlchemyError, ImportError, ValueError, RuntimeError) as err:
        # The database driver's own words (SQLAlchemy wraps them with a link to its docs).
        cause = getattr(err, "orig", None) or err
        raise UserError(f"STORAGE={hide_password(url)!r} can't be opened: {one_line(cause)}") from None


# ---------------------------------------------------------------------------------------------
# Pruners and samplers


@dataclass(frozen=True)
class PrunerSpec:
    """A pruner by name and its arguments, as plain data: a trial records the one that judged it,
    and its run process rebuilds the same pruner from that record."""

    name: str
    kwargs: dict[str, Any]

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, **self.kwargs}

    @classmethod
    def from_data(cls, data: Any) -> PrunerSpec:
        if not isinstance(data, dict) or data.get("name") not in ("median", "halving", "none", "threshold"):
            raise UserError(f"the trial records no pruner this harness knows ({data!r})")
        return cls(str(data["name"]), {k: v for k, v in data.items() if k != "name"})

    def build(self) -> Any:
        optuna = load_optuna()
        makers = {
            "median": optuna.pruners.MedianPruner,
            "halving": optuna.pruners.SuccessiveHalvingPruner,
            "none": optuna.pruners.NopPruner,
            "threshold": optuna.pruners.ThresholdPruner,
        }
        return makers[self.name](**self.kwargs)

    def describe(self) -> str:
        """The name --pruner takes."""
        return f"threshold:{self.kwargs['lower']:g}" if self.name == "threshold" else self.name


def parse_pruner(text: str, nb_steps: int, validation_interval: int) -> PrunerSpec:
    """--pruner: median, halving, none or threshold:<score>, with warm-ups in training steps."""
    text = (text or "median").strip()
    if text == "median":
        return PrunerSpec("median", {"n_startup_trials": MEDIAN_STARTUP_TRIALS, "n_warmup_steps": nb_steps // 3})
    if text == "halving":
        # The first rung at the first validation round; each rung keeps the best quarter.
        return PrunerSpec("halving", {"min_resource": validation_interval, "reduction_factor": 4})
    if text == "none":
        return PrunerSpec("none", {})
    name, sep, value = text.partition(":")
    if name == "threshold" and sep:
        try:
            lower = float(value)
        except ValueError:
            lower = float("nan")
        if lower == lower and abs(lower) != float("inf"):  # finite
            return PrunerSpec("threshold", {"lower": lower})
    raise UserError(f"PRUNER={text!r} is not allowed; expected one of {', '.join(PRUNERS)}, e.g. threshold:0.5")


def make_sampler(name: str, grid: dict[str, list[Any]] | None) -> Any:
    """--sampler: `tpe` (random for the first trials, then Tree-structured Parzen Estimators
    that lie about running trials so parallel workers spread out), `random` or `grid`."""
    optuna = load_optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=TPE_STARTUP_TRIALS, multivariate=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler()
    if name == "grid":
        if grid is None:
            raise UserError("SAMPLER=grid needs a search space of categorical entries only; use tpe or random")
        return optuna.samplers.GridSampler(grid)
    raise UserError(f"SAMPLER={name!r} is not allowed; expected one of {', '.join(SAMPLERS)}")


# ---------------------------------------------------------------------------------------------
# Studies


def open_study(storage: Any, name: str, sampler: Any = None, pruner: Any = None, create: bool = True) -> Any:
    """The study `name` in `storage` (created when `create`, which maximises the validation score)."""
    optuna = load_optuna()
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if create:
            return optuna.create_study(
                storage=storage,
                study_name=name,
                sampler=sampler,
                pruner=pruner,
                direction="maximize",
                load_if_exists=True,
            )
        return optuna.load_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise UserError(
            f"no study {name!r} in that storage; it holds {', '.join(sorted(names)) or 'no study'}"
        ) from None
    except SQLAlchemyError as err:
        raise UserError(f"study {name!r} can't be opened: {one_line(err)}") from None


class TrialReporter:
    """The judge of one trial's validation rounds, in the trial's run process: each round is
    reported to the study (`trial.report(score, step)`) and the trial's own pruner, rebuilt from
    the trial's record, decides whether the run stops there."""

    def __init__(self, trial_ref: str, storage: str | None = None) -> None:
        study_name, sep, number_text = trial_ref.rpartition(":")
        if not sep or not study_name or not number_text.isdigit():
            raise UserError(f"--trial {trial_ref!r} is not allowed; expected STUDY:NUMBER, e.g. catch_dense:3")
        url = (storage or os.environ.get(STORAGE_ENV) or "").strip()
        if not url:
            raise UserError(
                f"--trial {trial_ref!r} needs the study's storage URL in {STORAGE_ENV} (`tune` sets it for its trials)"
            )
        optuna = load_optuna()
        backend = open_storage(url, heartbeat=False)  # the tune's worker keeps the heartbeat
        study = open_study(backend, study_name, sampler=optuna.samplers.RandomSampler(), create=False)
        number = int(number_text)
        try:
            trial_id = backend.get_trial_id_from_study_id_trial_number(
                backend.get_study_id_from_name(study_name), number
            )
        except KeyError:
            raise UserError(f"study {study_name!r} has no trial {number}") from None
        frozen = backend.get_trial(trial_id)
        if frozen.state.is_finished():
            raise UserError(f"trial {number} of study {study_name!r} is already {frozen.state.name}; nothing to report")
        self.spec = PrunerSpec.from_data(frozen.user_attrs.get("pruner"))
        study.pruner = self.spec.build()
        self.trial = optuna.trial.Trial(study, trial_id)
        self.labels = {"trial": {"study": study_name, "number": number, "storage": hide_password(url)}}
        self._warned = False

    def __call__(self, step: int, score: float) -> str | None:
        from optuna.exceptions import OptunaError
        from sqlalchemy.exc import SQLAlchemyError

        try:
            self.trial.report(score, step)
            if self.trial.should_prune():
                return f"the {self.spec.describe()} pruner stopped it (validation score {score:.3f})"
        except (SQLAlchemyError, OptunaError, RuntimeError, ValueError) as err:
            # The study's database is away or the trial was closed by another worker: training
            # goes on, and the tune records how the run ended.
            if not self._warned:
                print(f"warning: validation at step {step} not reported to the study: {one_line(err)}", flush=True)
                self._warned = True
        return None
