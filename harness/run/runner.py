"""The runner: one run of an experiment, as a short sequence of named steps (Dopamine's `Runner`).

    build the seeded agent (and load the resumed state)    -- every mistake a UserError, no files yet
    make the run directory, write config.json
    train with keras-rl's `fit` and the harness callbacks   -- a signal stops it at the next step;
                                                               the training state is checkpointed
                                                               at episode ends (exact resume)
    save metrics, model and final weights
    choose the weights to evaluate (the best validated, with validation_interval)
    evaluate greedily, and play the scripted players on the same episodes
    write summary.json (last of the run's records), then demo.gif and curves.png

The run directory's layout is harness.core.rundir's. Ctrl-C (SIGINT) or SIGTERM stops training
at the next step; the run still saves its weights, metrics and a summary with
`interrupted: true`, and `RunInterrupted` carries the exit code. A NaN or infinite loss or mean Q
stops training too (`RunDiverged`, exit 1): the summary records where, and no evaluation runs.
A `judge` (a tuning study's pruner, given by `tune`'s trial runs) hears each validation round and
may stop training there (`RunPruned`): saved like an interrupted run, with `pruned` in the summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import platform
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from harness.core import files, rundir
from harness.core.errors import DiskFull
from harness.core.rundir import ResumePoint
from harness.core.schema import Experiment, onednn_wanted
from harness.core.scoring import EVAL_SEED_OFFSET, VALIDATION_SEED_OFFSET, crashes_text, score_episodes
from harness.core.signals import SignalCatcher, signal_name
from harness.kerasrl import checkpoint, compat
from harness.kerasrl.adapters import KerasRLEnv
from harness.kerasrl.agents import build_agent, load_weights_checked, make_env, new_session, write_weights
from harness.kerasrl.callbacks import (
    BestWeightsKeeper,
    Diverged,
    DivergenceGuard,
    GlobalStep,
    Judge,
    MetricsFileLogger,
    ProgressLogger,
    Pruned,
    StateCheckpoint,
)
from harness.kerasrl.tensorboard import TensorBoardLogger
from harness.report.plots import write_run_curves
from harness.run.evaluation import evaluate
from harness.run.media import write_demo
from harness.run.resume import find_start
from harness.run.scripted import run_scripted_players

# Every module a run needs is imported here, with the runner, not when the training ends: a run
# that trains for an hour must finish on the code it started with. Imported later, a module edited
# meanwhile (an editable install) failed to import against the already-loaded rest, after the
# training and before the summary (two cave_drqn runs lost their evaluation that way).

__all__ = [
    "EVAL_SEED_OFFSET",
    "VALIDATION_SEED_OFFSET",
    "RunDiverged",
    "RunInterrupted",
    "RunPruned",
    "evaluate",
    "run",
    "seed_everything",
]


class RunDiverged(Exception):
    """Training diverged (NaN or infinity in the loss or Q values); the run directory holds the
    metrics up to it and the checkpoints from before it, and no evaluation."""

    def __init__(self, run_dir: Path, diverged: Diverged) -> None:
        newest = rundir.newest_checkpoint(run_dir)
        kept = (
            f"its newest checkpoint, from step {newest[1]}, is kept for RESUME"
            if newest is not None
            else "no checkpoint was due before it"
        )
        super().__init__(f"{diverged}; training stopped there, no evaluation. Saved in {run_dir}; {kept}")
        self.run_dir = run_dir
        self.exit_code = 1


class RunInterrupted(Exception):
    """Training was stopped by a signal; the run directory holds what was done."""

    def __init__(self, run_dir: Path, signal_number: int) -> None:
        super().__init__(f"run interrupted by {signal_name(signal_number)}; saved in {run_dir}")
        self.run_dir = run_dir
        self.exit_code = 128 + signal_number


class RunPruned(Exception):
    """A validation round's judge stopped training; the run directory holds what was done, as for
    an interrupted run, and its summary says `pruned`."""

    def __init__(self, run_dir: Path, pruned: Pruned) -> None:
        super().__init__(f"{pruned}; saved in {run_dir}")
        self.run_dir = run_dir
        self.exit_code = 0  # the run did what it was asked: stop when the study's pruner says so


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and a fresh TensorFlow graph (keras-rl's policies and memory draw from
    Python's `random` and NumPy's global generator)."""
    random.seed(seed)
    np.random.seed(seed)
    new_session(seed)


@dataclasses.dataclass
class _Run:
    """What the steps of one run share."""

    exp: Experiment
    log: TextIO
    resume: ResumePoint | None
    env: KerasRLEnv
    agent: Any
    wall_start: float
    saved: dict[str, Any] | None = None  # a resumed checkpoint's state.json (harness.kerasrl.checkpoint)
    run_dir: Path = Path()
    started: dt.datetime = dt.datetime.min
    file_logger: MetricsFileLogger | None = None
    keeper: BestWeightsKeeper | None = None
    train_seconds: float = 0.0
    steps_this_run: int = 0
    episodes: int = 0
    evaluation: dict[str, Any] | None = None
    eval_weights: str | None = None
    signal_number: int | None = None
    diverged: Diverged | None = None
    pruned: Pruned | None = None
    judge: Judge | None = None
    labels: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def stopped_early(self) -> bool:
        """Training ended before its budget (signal, divergence or pruning): no evaluation."""
        return self.signal_number is not None or self.diverged is not None or self.pruned is not None

    @property
    def start_step(self) -> int:
        return self.resume.step if self.resume is not None else 0

    @property
    def nb_steps(self) -> int:
        """Steps this run trains (a resumed run: what is left of the total budget)."""
        return self.exp.nb_steps - self.start_step

    @property
    def steps(self) -> int:
        """The global step count reached."""
        return self.start_step + self.steps_this_run


def run(
    exp: Experiment,
    runs_dir: str | Path = "runs",
    command: list[str] | None = None,
    log: TextIO | None = None,
    resume_from: str | Path | None = None,
    judge: Judge | None = None,
    labels: dict[str, Any] | None = None,
) -> Path:
    """Train, evaluate and save one run of `exp`; return its directory.

    `resume_from`: a run directory of the same experiment to continue (harness.run.resume).
    `judge`: told each validation round's (global step, score); a reason it returns stops training
    (a tuning trial's pruner). `labels`: added to config.json's `run` section (a trial's study and
    number). Raises UserError for mistakes in the experiment, RunInterrupted when stopped by a
    signal, RunDiverged when the loss or Q values became NaN or infinite and RunPruned when the
    judge stopped it (each after saving what it had).
    """
    resume = find_start(exp, resume_from) if resume_from is not None else None
    state = _build(exp, log or sys.stdout, resume)
    state.judge, state.labels = judge, dict(labels or {})
    try:
        _make_run_dir(state, runs_dir, command)
        callbacks = _callbacks(state)
        with SignalCatcher() as catcher:
            _train(state, callbacks, catcher)
            _save_model(state)
            if not catcher.stopped and state.diverged is None and state.pruned is None:
                with catcher.interruptible():
                    _choose_eval_weights(state)
                    _evaluate(state)
            state.signal_number = catcher.signal_number
    finally:
        state.env.close()
    _write_summary(state)
    if not state.stopped_early:
        _write_demo(state)
    _write_curves(state)
    _report(state)
    if state.diverged is not None:
        raise RunDiverged(state.run_dir, state.diverged)
    if state.signal_number is not None:
        raise RunInterrupted(state.run_dir, state.signal_number)
    if state.pruned is not None:
        raise RunPruned(state.run_dir, state.pruned)
    return state.run_dir


# ---------------------------------------------------------------------------------------------
# The steps


def _build(exp: Experiment, log: TextIO, resume: ResumePoint | None) -> _Run:
    """The seeded env and agent; a bad env id, a network that does not build or resumed weights
    that do not fit fail here, before the run directory exists."""
    wall_start = time.monotonic()
    if onednn_wanted(exp) != compat.ONEDNN:
        # TF_ENABLE_ONEDNN_OPTS set by the user, or TensorFlow loaded before the run could choose.
        print(
            f"note: oneDNN is {'on' if compat.ONEDNN else 'off'} in this process (TF_ENABLE_ONEDNN_OPTS); "
            f"experiment {exp.name!r} would choose {'on' if onednn_wanted(exp) else 'off'}",
            file=log,
            flush=True,
        )
    seed_everything(exp.seed)
    env = make_env(exp, seed=exp.seed)
    try:
        # The agent counts global steps (callbacks.GlobalStep), so its schedules need no offset.
        agent = build_agent(exp, env)
        saved = _load_resume_point(exp, agent, resume)
    except BaseException:
        env.close()
        raise
    return _Run(exp=exp, log=log, resume=resume, env=env, agent=agent, wall_start=wall_start, saved=saved)


def _load_resume_point(exp: Experiment, agent: Any, resume: ResumePoint | None) -> dict[str, Any] | None:
    """Load what the resumed run starts from into `agent`: a whole checkpointed state (returned:
    its state.json), or an older run's weights alone (None)."""
    if resume is None:
        return None
    what = f"the network of experiment {exp.name!r}"
    saved = None
    if resume.state is not None:
        saved = checkpoint.load(resume.state, agent, what)
    else:
        load_weights_checked(agent, resume.weights, what)  # keras-rl's load_weights also fills the target
    if saved is None or saved["memory"] is None:
        # No replay memory to go on with: it refills, and training waits nb_steps_warmup again.
        agent.nb_steps_warmup = resume.step + exp.nb_steps_warmup
    return saved


def _resume_note(saved: dict[str, Any] | None) -> str:
    """Whether the resumed run continues exactly, and if not what it lacks (one clause)."""
    if saved is None:
        return "weights only, not exact: the replay memory refills and the random generators start from the seed"
    if saved["memory"] is None:
        return "not exact: the checkpoint has no replay memory (checkpoint_memory=false or fast_path=false); it refills"
    if not saved["optimizer"]:
        return "not exact: keras-rl's stock DQNAgent (fast_path=false) starts with fresh optimizer slots"
    return "exact: networks, optimizer, replay memory, random generators and histories"


def _say(state: _Run, text: str) -> None:
    print(text, file=state.log, flush=True)


def _make_run_dir(state: _Run, runs_dir: str | Path, command: list[str] | None) -> None:
    exp, resume = state.exp, state.resume
    state.run_dir = rundir.new_run_dir(runs_dir, exp.name or "unnamed", exp.seed)
    state.started = dt.datetime.now().astimezone()
    try:
        _write_config(state, command)
    except DiskFull:
        with contextlib.suppress(OSError):  # no room for even config.json: leave no empty run folder
            state.run_dir.rmdir()
        raise
    # harness.launch.sweep reads this first line to learn where the run writes.
    _say(state, f"run {exp.name} seed {exp.seed} -> {state.run_dir}")
    if resume is not None:
        for warning in resume.skipped:
            _say(state, warning)
        where = resume.state.name if resume.state is not None else resume.weights.name
        _say(
            state,
            f"resuming {resume.run_dir} at step {resume.step} ({resume.source} {where}; "
            f"{_resume_note(state.saved)}); {state.nb_steps} steps left of {exp.nb_steps}",
        )


def _write_config(state: _Run, command: list[str] | None) -> None:
    exp, resume = state.exp, state.resume
    files.write_json(
        state.run_dir / rundir.CONFIG,
        {
            "experiment": exp.to_dict(),
            "run": {
                "command": command or sys.argv,
                "created": state.started.isoformat(timespec="seconds"),
                "host": platform.node(),
                "versions": _versions(),
                "onednn": compat.ONEDNN,
                "eval_seed": exp.seed + EVAL_SEED_OFFSET,
                **({"validation_seed": exp.seed + VALIDATION_SEED_OFFSET} if exp.validation_interval else {}),
                **(
                    {
                        "resumed_from": str(resume.run_dir),
                        "resumed_at_step": resume.step,
                        "resumed_from_weights": str(resume.weights),
                        "resumed_from_state": str(resume.state) if resume.state is not None else None,
                        "resume": _resume_note(state.saved),
                    }
                    if resume is not None
                    else {}
                ),
                **state.labels,
            },
        },
    )


def _callbacks(state: _Run) -> list[Any]:
    exp, run_dir, offset = state.exp, state.run_dir, state.start_step
    state.file_logger = MetricsFileLogger(run_dir / rundir.METRICS)
    callbacks: list[Any] = [GlobalStep(offset)] if offset else []
    callbacks += [
        state.file_logger,
        DivergenceGuard(),
        ProgressLogger(
            state.nb_steps, exp.log_interval or max(1, state.nb_steps // 20), step_offset=offset, stream=state.log
        ),
        TensorBoardLogger(run_dir / rundir.TENSORBOARD, step_offset=offset),
    ]
    if exp.validation_interval:
        state.keeper = BestWeightsKeeper(
            run_dir / rundir.BEST_WEIGHTS,
            exp.validation_interval,
            exp.validation_episodes,
            make_env=lambda: make_env(exp, seed=exp.seed + VALIDATION_SEED_OFFSET),
            score=score_episodes,
            action_repetition=exp.action_repetition,
            step_offset=offset,
            stream=state.log,
            judge=state.judge,
        )
        callbacks.append(state.keeper)
    # After the metrics logger, so that a checkpoint holds the episode that just ended.
    callbacks.append(
        StateCheckpoint(
            run_dir,
            exp.checkpoint_interval,
            exp.keep_checkpoints,
            start_step=offset,
            with_memory=exp.checkpoint_memory,
            collect=lambda: _carried(state),
            best_weights=state.keeper.path if state.keeper is not None else None,
        )
    )
    callbacks.extend(factory(run_dir) for factory in exp.callbacks)
    if state.saved is not None:
        _continue_callbacks(state, state.saved)
    return callbacks


def _carried(state: _Run) -> dict[str, Any]:
    """What a checkpoint keeps of the callbacks: metrics.json's episodes and the validation rounds."""
    assert state.file_logger is not None
    return {
        "metrics": state.file_logger.data,
        "validation": state.keeper.state() if state.keeper is not None else None,
    }


def _continue_callbacks(state: _Run, saved: dict[str, Any]) -> None:
    assert state.file_logger is not None and state.resume is not None and state.resume.state is not None
    state.file_logger.restore(saved["metrics"])
    if state.keeper is not None and saved.get("validation"):
        state.keeper.restore(saved["validation"])
        best = state.resume.state / checkpoint.BEST_WEIGHTS
        if best.is_file():
            files.write_with(state.keeper.path, lambda tmp: shutil.copyfile(best, tmp))


def _train(state: _Run, callbacks: list[Any], catcher: SignalCatcher) -> None:
    if state.saved is not None:
        # Last, so that nothing drawn while the agent and callbacks were built moves the streams on.
        checkpoint.restore_random_states(state.env, state.saved["random"])
    started = time.monotonic()
    with catcher.interruptible():
        try:
            state.agent.fit(
                state.env,
                nb_steps=state.exp.nb_steps,  # the total: the agent counts global steps (GlobalStep)
                action_repetition=state.exp.action_repetition,
                callbacks=callbacks,
                verbose=0,
            )
        except (Diverged, Pruned) as stop:
            if isinstance(stop, Diverged):
                state.diverged = stop
            else:
                state.pruned = stop
            # The exception left `fit` before its `on_train_end`: end every callback as an abort does.
            for callback in callbacks:
                callback.on_train_end({"did_abort": True})
    state.train_seconds = time.monotonic() - started
    assert state.file_logger is not None
    # keras-rl flushes metrics in `on_train_end`, which a signal during `on_train_begin` skips.
    state.file_logger.save_data()
    # A diverged or pruned step ran, but left `fit` before keras-rl counted it. (The agent's step is
    # fit's 0 until GlobalStep sets it, if a signal came first.)
    counted = max(int(state.agent.step) - state.start_step, 0)
    state.steps_this_run = counted + (state.diverged is not None or state.pruned is not None)
    state.episodes = len(state.file_logger.data.get("episode", []))


def _save_model(state: _Run) -> None:
    files.write_text(state.run_dir / rundir.MODEL, state.agent.model.to_json())
    if state.diverged is not None:
        return  # NaN weights are no final weights; the checkpoints before the divergence are kept
    write_weights(state.agent, state.run_dir / rundir.WEIGHTS)


def _choose_eval_weights(state: _Run) -> None:
    """The final weights, or with validation the best-validated ones (the final weights are a
    candidate too: they get a round of their own if the last round was earlier)."""
    keeper = state.keeper
    state.eval_weights = rundir.WEIGHTS
    if keeper is None:
        return
    if not keeper.history or keeper.history[-1][0] != state.steps:
        keeper.validate()
    if keeper.best is not None and keeper.best[0] != state.steps:
        state.agent.load_weights(str(state.run_dir / rundir.BEST_WEIGHTS))
    state.eval_weights = rundir.BEST_WEIGHTS


def _evaluate(state: _Run) -> None:
    exp = state.exp
    seed = exp.seed + EVAL_SEED_OFFSET
    evaluation = evaluate(exp, state.agent, exp.eval_episodes, seed)
    # The scripted players (random, perfect/heuristic) on the same env seed, for comparison.
    evaluation["baselines"] = run_scripted_players(exp, exp.eval_episodes, seed)
    state.evaluation = evaluation


def _write_summary(state: _Run) -> None:
    exp, keeper = state.exp, state.keeper
    # A pruned run is saved like an interrupted one (final weights, no evaluation), by no signal.
    interrupted = state.signal_number is not None or state.pruned is not None
    files.write_json(
        state.run_dir / rundir.SUMMARY,
        {
            "experiment": exp.name,
            "seed": exp.seed,
            "steps": state.steps,
            "steps_this_run": state.steps_this_run,
            "resumed_from": str(state.resume.run_dir) if state.resume is not None else None,
            "resumed_at_step": state.start_step,
            "nb_steps": exp.nb_steps,
            "episodes": state.episodes,
            "wall_seconds": round(time.monotonic() - state.wall_start, 3),
            "train_seconds": round(state.train_seconds, 3),
            "steps_per_second": round(state.steps_this_run / max(state.train_seconds, 1e-9), 1),
            "eval": state.evaluation,
            "eval_weights": state.eval_weights if state.evaluation is not None else None,
            "validation": None
            if keeper is None
            else {
                "interval": exp.validation_interval,
                "episodes": exp.validation_episodes,
                "seed": exp.seed + VALIDATION_SEED_OFFSET,
                "seconds": round(keeper.seconds, 3),
                "best_step": keeper.best[0] if keeper.best else None,
                "best_score": keeper.best[1] if keeper.best else None,
                "history": [{"step": step, "score": score} for step, score in keeper.history],
            },
            "diverged": None
            if state.diverged is None
            else {"step": state.diverged.step, "metric": state.diverged.metric, "value": str(state.diverged.value)},
            "pruned": None
            if state.pruned is None
            else {"step": state.pruned.step, "score": state.pruned.score, "reason": state.pruned.reason},
            "interrupted": interrupted,
            "signal": signal_name(state.signal_number) if state.signal_number is not None else None,
            "started": state.started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "run_dir": str(state.run_dir),
        },
    )


def _write_demo(state: _Run) -> None:
    """demo.gif: the greedy agent's first evaluation episodes; a failure must not lose the run."""
    try:
        write_demo(state.exp, state.agent, state.run_dir / rundir.DEMO, seed=state.exp.seed + EVAL_SEED_OFFSET)
    except (Exception, KeyboardInterrupt) as err:  # Ctrl-C here: the run is saved, skip the GIF
        _say(
            state,
            f"warning: demo.gif not written ({type(err).__name__}: {err}); "
            f"`make play RUN={state.run_dir} GIF=...` films the saved agent",
        )


def _write_curves(state: _Run) -> None:
    """curves.png, redrawn from the files above; a plotting failure must not lose the run."""
    try:
        write_run_curves(state.run_dir)
    except (Exception, KeyboardInterrupt) as err:  # Ctrl-C here: the run is saved, skip the plot
        _say(
            state,
            f"warning: curves.png not written ({type(err).__name__}: {err}); "
            f"`python -m harness plot {state.run_dir}` redraws it",
        )


def _report(state: _Run) -> None:
    evaluation = state.evaluation
    if evaluation is not None:
        _say(
            state,
            f"eval over {evaluation['episodes']} episodes: mean return {evaluation['mean_return']:.3f}, "
            f"{evaluation['score_name']} {evaluation['score']:.3f}{crashes_text(evaluation)}",
        )
        for player, result in (evaluation.get("baselines") or {}).items():
            _say(
                state,
                f"  {player} player: mean return {result['mean_return']:.3f}, "
                f"{result['score_name']} {result['score']:.3f}{crashes_text(result)}",
            )
    _say(state, f"saved {state.run_dir}")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("tensorflow", "tf_keras", "keras-rl2", "gymnasium", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:  # a missing package is reported, not fatal
            out[package] = "?"
    return out
