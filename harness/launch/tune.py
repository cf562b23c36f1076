"""`python -m harness tune NAME` (`make tune NAME=...`): an Optuna study over an experiment's
search space, maximising the validation score. This module owns the plan and the trials.

How a trial runs: Optuna's `study.optimize` runs the trials, `--workers` at a time, each in a
thread of this process that samples the trial's settings from the search space
(harness.core.space), checks them as `run` would, and starts an ordinary run process,
`python -m harness run NAME --set <the settings> ... --trial STUDY:NUMBER`, through the sweep's
executor (harness.launch.sweep: its log in the study folder's `logs/`, TensorFlow's threads split
so that k runs share the cores, signals passed on). The run process opens the study itself
(DQN_HARNESS_TUNE_STORAGE) and reports every validation round to its trial, whose pruner may stop
it there (harness.launch.study.TrialReporter); a pruned run saves itself like an interrupted one,
with `pruned` in its summary.json, and its config.json records the study and trial. When the
process ends, the worker thread reads the run's summary.json and closes the trial:

  complete   the run finished: the value is its best validation score (the weights it kept)
  pruned     the pruner stopped it, or training diverged (NaN loss or Q): the reason is recorded
  failed     the settings were rejected, the run exited with an error, was killed or interrupted

and the study goes on to the next trial. Every trial's settings, run directory, log and reason are
in its user attributes; harness.launch.tune_report draws the table and figures at the end.

A study is named by `--study` (default: the experiment's name) and lives in `<RUNS>/tune/<study>/`
(its SQLite file, logs, trial runs in `runs/`, the report); the same command again continues it
(more trials), and it must be asked for with the same experiment, STEPS, SET and search space,
which the study records. Ctrl-C or SIGTERM starts no more trials and lets the running ones save.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from harness.core.errors import UserError, one_line
from harness.core.registry import ENV_VAR as EXPERIMENTS_ENV
from harness.core.registry import load_search_space, resolve_experiment
from harness.core.schema import Experiment
from harness.core.signals import SignalCatcher, signal_name
from harness.core.space import DEFAULT_SEARCH_SPACE, Param, assignment, parse_space, space_to_data
from harness.launch import study as studies
from harness.launch import sweep
from harness.launch.study import PrunerSpec

DEFAULT_TRIALS = 20
STUDY_RECORD = "dqn_harness"  # the study's user attribute holding what it tunes


class TrialFailed(Exception):
    """A trial that ended without a validation score (Optuna records it as FAIL and goes on)."""


@dataclass(frozen=True)
class TunePlan:
    name: str
    exp: Experiment  # with the study's overrides, before any trial's settings
    params: tuple[Param, ...]
    overrides: tuple[str, ...]  # SET, plus the validation interval when tune chose it
    steps: int | None
    trials: int
    workers: int
    study: str
    storage: str  # may hold a password: shown through studies.hide_password only
    folder: Path
    pruner: PrunerSpec
    sampler: str
    notes: tuple[str, ...] = ()

    @property
    def runs_dir(self) -> Path:
        return self.folder / "runs"

    def record(self) -> dict[str, Any]:
        """What the study tunes; a later command on the same study must ask for the same."""
        return json.loads(
            json.dumps(
                {
                    "experiment": self.name,
                    "nb_steps": self.exp.nb_steps,
                    "overrides": list(self.overrides),
                    "search_space": space_to_data(self.params),
                }
            )
        )


def plan_tune(
    name: str,
    trials: int = DEFAULT_TRIALS,
    workers: int = 1,
    steps: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    pruner: str = "median",
    sampler: str = "tpe",
    overrides: Sequence[str] = (),
    runs_dir: str | Path = "runs",
) -> TunePlan:
    """Check everything before a file is written: the experiment, SET, the search space, the
    storage URL, the pruner and the sampler."""
    if trials < 1:
        raise UserError(f"TRIALS={trials!r} is not allowed; expected a positive integer")
    if workers < 1:
        raise UserError(f"WORKERS={workers!r} is not allowed; expected a positive integer")
    overrides = tuple(overrides)
    exp = resolve_experiment(name, None, steps, overrides)
    notes = []
    if exp.validation_interval == 0:
        if any(o.partition("=")[0].strip() == "validation_interval" for o in overrides):
            raise UserError(
                "SET validation_interval=0 turns validation off, and tune maximises the validation score; "
                "expected validation_interval > 0 (or leave it to tune: a tenth of the steps)"
            )
        chosen = max(1, exp.nb_steps // 10)
        overrides += (f"validation_interval={chosen}",)
        exp = dataclasses.replace(exp, validation_interval=chosen)
        notes.append(f"validation every {chosen} steps (a tenth of the budget; SET validation_interval=N to change)")
    data, module = load_search_space(name)
    source = f"SEARCH_SPACE in {module.name}"
    if data is None:
        data, source = DEFAULT_SEARCH_SPACE, f"the default search space ({module.name} has no SEARCH_SPACE)"
    params = parse_space(data, exp, source)
    fixed = {o.partition("=")[0].strip() for o in overrides}
    both = sorted(fixed & {p.name for p in params})
    if both:
        raise UserError(f"SET fixes {', '.join(both)}, which the search space tunes; drop one of the two")
    study_name = studies.check_study_name(study or name)
    folder = studies.study_dir(runs_dir, study_name)
    pruner_spec = studies.parse_pruner(pruner, exp.nb_steps, exp.validation_interval)
    if sampler not in studies.SAMPLERS:
        raise UserError(f"SAMPLER={sampler!r} is not allowed; expected one of {', '.join(studies.SAMPLERS)}")
    if sampler == "grid" and any(p.kind != "categorical" for p in params):
        raise UserError("SAMPLER=grid needs a search space of categorical entries only; use tpe or random")
    return TunePlan(
        name=name,
        exp=exp,
        params=params,
        overrides=overrides,
        steps=steps,
        trials=trials,
        workers=workers,
        study=study_name,
        storage=studies.storage_url(storage, folder),
        folder=folder,
        pruner=pruner_spec,
        sampler=sampler,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------
# One trial


def suggest(trial: Any, param: Param) -> Any:
    """The trial's value of `param`, drawn by the study's sampler."""
    if param.kind == "categorical":
        return param.decode(trial.suggest_categorical(param.name, param.encoded_choices()))
    if param.kind in ("int_uniform", "int_log_uniform"):
        return trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(param.name, param.low, param.high, log=param.log)


class Objective:
    """Optuna's objective: one trial's run process, from its settings to the state it ends in."""

    def __init__(self, plan: TunePlan, launcher: sweep.LocalLauncher, stop: SignalCatcher, stream: Any) -> None:
        self.plan = plan
        self.launcher = launcher
        self.stop = stop
        self.stream = stream
        self.outcomes: list[str] = []  # "complete", "pruned" or "failed", this command's trials
        self._lock = threading.Lock()
        threads = sweep.threads_per_run(sweep.machine_cores(), plan.workers)
        self.threads = threads
        self.env = {**sweep.run_environment(threads), studies.STORAGE_ENV: plan.storage}
        if os.environ.get(EXPERIMENTS_ENV):
            self.env[EXPERIMENTS_ENV] = os.environ[EXPERIMENTS_ENV]

    def say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def argv(self, number: int, settings: list[str]) -> list[str]:
        args = [sys.executable, "-m", "harness", "run", self.plan.name]
        if self.plan.steps is not None:
            args += ["--steps", str(self.plan.steps)]
        for text in (*self.plan.overrides, *settings):
            args += ["--set", text]
        return args + ["--runs-dir", str(self.plan.runs_dir), "--trial", f"{self.plan.study}:{number}"]

    def __call__(self, trial: Any) -> float:
        optuna = studies.load_optuna()
        plan = self.plan
        settings = [assignment(p.name, suggest(trial, p)) for p in plan.params]
        trial.set_user_attr("settings", settings)
        trial.set_user_attr("pruner", plan.pruner.to_data())
        label = f"trial {trial.number}"
        try:
            # The run's own checks (types, ranges, batch_size <= memory_limit), before a process starts.
            resolve_experiment(plan.name, None, plan.steps, (*plan.overrides, *settings))
        except UserError as err:
            self._fail(trial, label, f"settings rejected: {err}", 0.0)
        log = plan.folder / "logs" / f"trial-{trial.number:04d}.log"
        trial.set_user_attr("log", str(log))

        def launch(*args: Any, **kwargs: Any) -> Any:
            proc = self.launcher.launch(*args, **kwargs)
            if proc is not None:
                self.say(f"{label:<10} start   {' '.join(settings)}  (log {sweep.short_path(log)})")
            return proc

        try:
            outcome = sweep.execute_run(self.argv(trial.number, settings), os.getcwd(), self.env, str(log), launch)
        except OSError as err:
            self._fail(trial, label, f"could not start: {one_line(err)}", 0.0)
        seconds = float(outcome.get("seconds") or 0.0)
        for key in ("run_dir", "host"):
            if outcome.get(key):
                trial.set_user_attr(key, outcome[key])
        trial.set_user_attr("seconds", seconds)
        if not outcome.get("started"):
            why = "not started: the tune was stopped" if self.stop.stopped else outcome.get("error") or "not started"
            self._fail(trial, label, why, seconds)
        summary = outcome.get("summary") or {}
        evaluation = summary.get("eval") or {}
        if evaluation.get("score_name"):
            trial.set_user_attr("score_name", evaluation["score_name"])
            trial.set_user_attr("eval_score", evaluation.get("score"))
        pruned, diverged = summary.get("pruned"), summary.get("diverged")
        if isinstance(pruned, dict) or isinstance(diverged, dict):
            if isinstance(pruned, dict):
                reason = f"pruned at step {pruned.get('step')}: {pruned.get('reason')}"
            else:
                assert isinstance(diverged, dict)
                reason = f"diverged at step {diverged['step']}: {diverged['metric']} is {diverged['value']}"
            trial.set_user_attr("reason", reason)
            self.say(f"{label:<10} pruned  {reason}  {seconds:.1f} s")
            self._count("pruned")
            raise optuna.TrialPruned(reason)
        result = sweep.RunResult(sweep.RunSpec(plan.name, plan.exp.seed, plan.steps, plan.overrides), log, outcome)
        best = (summary.get("validation") or {}).get("best_score")
        if result.ok and isinstance(best, (int, float)):
            rounds = len((summary.get("validation") or {}).get("history") or [])
            score_name = evaluation.get("score_name", "score")
            self.say(
                f"{label:<10} done    validation {score_name} {best:.3f} (best of {rounds} rounds), "
                f"eval {evaluation.get('score', float('nan')):.3f}  {seconds:.1f} s"
            )
            self._count("complete")
            return float(best)
        reason = result.reason() if not result.ok else "finished without a validation score"
        tail = "\n".join(f"    | {line}" for line in outcome.get("log_tail", []))
        self._fail(trial, label, reason, seconds, f"\n    log {log}, last lines:\n{tail}")

    def _count(self, what: str) -> None:
        with self._lock:
            self.outcomes.append(what)

    def _fail(self, trial: Any, label: str, reason: str, seconds: float, details: str = "") -> NoReturn:
        trial.set_user_attr("reason", reason)
        self.say(f"{label:<10} FAILED  {reason}  {seconds:.1f} s{details}")
        self._count("failed")
        raise TrialFailed(reason)


# ---------------------------------------------------------------------------------------------
# The study


def _check_record(study: Any, plan: TunePlan) -> None:
    """Record what a new study tunes; a continued one must be asked for the same."""
    wanted = plan.record()
    stored = study.user_attrs.get(STUDY_RECORD)
    if stored is None:
        study.set_user_attr(STUDY_RECORD, wanted)
        return
    for key, what in (
        ("experiment", "NAME"),
        ("nb_steps", "STEPS"),
        ("overrides", "SET"),
        ("search_space", "search space"),
    ):
        if stored.get(key) != wanted[key]:
            raise UserError(
                f"study {plan.study!r} tunes {key} {stored.get(key)!r}, not {wanted[key]!r}; continue it with "
                f"the same {what}, or name a new study with STUDY=..."
            )


def run_tune(plan: TunePlan, stream: Any = None) -> int:
    """Run `plan.trials` more trials of the study, then its report; the exit status (0, 1 when
    every trial of this command failed, 128 + the signal when stopped)."""
    from harness.launch import tune_report

    stream = stream or sys.stdout
    # A database server is reached before anything is written here; a SQLite file needs its folder.
    on_server = not plan.storage.startswith("sqlite")
    storage = studies.open_storage(plan.storage) if on_server else None
    try:
        (plan.folder / "logs").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"RUNS folder {str(plan.folder)!r} can't be written: {err.strerror or err}") from None
    storage = storage or studies.open_storage(plan.storage)
    grid = {p.name: p.encoded_choices() for p in plan.params} if plan.sampler == "grid" else None
    study = studies.open_study(storage, plan.study, sampler=studies.make_sampler(plan.sampler, grid))
    _check_record(study, plan)
    before = len(study.trials)
    with SignalCatcher() as stop:
        objective = Objective(plan, sweep.LocalLauncher(stop), stop, stream)

        def announce(signum: int) -> None:
            if signum == stop.signal_number:
                print(
                    f"\ntune: {signal_name(signum)} received; starting no more trials, "
                    "letting the running ones save and stop",
                    file=sys.stderr,
                    flush=True,
                )

        stop.on_signal(announce)
        print(
            f"tune {plan.name}: study {plan.study!r} ({before} trials so far) "
            f"in {studies.hide_password(plan.storage)}\n"
            f"  {plan.trials} new trials, {plan.workers} at a time, {objective.threads} TensorFlow "
            f"thread{'s' if objective.threads > 1 else ''} each; {plan.sampler} sampler, "
            f"{plan.pruner.describe()} pruner; {plan.exp.nb_steps:,} steps per trial; tuning "
            f"{', '.join(p.name for p in plan.params)}",
            *(f"  {note}" for note in plan.notes),
            sep="\n",
            file=stream,
            flush=True,
        )
        started = time.monotonic()

        def stop_when_signalled(study: Any, trial: Any) -> None:
            if stop.stopped:
                study.stop()

        study.optimize(
            objective,
            n_trials=plan.trials,
            n_jobs=plan.workers,
            catch=(TrialFailed,),
            callbacks=[stop_when_signalled],
        )
    done = objective.outcomes
    print(
        f"\n{len(done)} trials in {time.monotonic() - started:.1f} s: {done.count('complete')} complete, "
        f"{done.count('pruned')} pruned, {done.count('failed')} failed",
        file=stream,
        flush=True,
    )
    tune_report.report(study, plan.folder, stream)
    if stop.signal_number is not None:
        return 128 + stop.signal_number
    if done and all(outcome == "failed" for outcome in done):
        print(f"error: all {len(done)} trials failed (reasons above)", file=sys.stderr, flush=True)
        return 1
    return 0


def command(args: argparse.Namespace) -> int:
    """`python -m harness tune NAME ...` (harness/cli.py parses the arguments)."""
    plan = plan_tune(
        args.name,
        trials=args.trials,
        workers=args.workers,
        steps=args.steps,
        storage=args.storage,
        study=args.study,
        pruner=args.pruner,
        sampler=args.sampler,
        overrides=args.overrides,
        runs_dir=args.runs_dir,
    )
    return run_tune(plan)
