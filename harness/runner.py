"""The runner: builds, trains, evaluates and saves one run, and owns its directory and logs.

A run directory `<runs>/<experiment>/<YYYYmmdd-HHMMSS>-seed<seed>/` holds
  config.json        the resolved experiment and how the run was made (written first)
  metrics.json       keras-rl FileLogger: one entry per training episode
  checkpoints/       weights-<step>.h5, the newest `keep_checkpoints`
  model.json         the network architecture (Keras JSON)
  weights.h5         the final network weights (HDF5)
  best_weights.h5    with `validation_interval`: the weights that validated best, which the
                     evaluation, demo.gif and `play` use
  summary.json       steps, speed, evaluation score, `interrupted` (written last)
  curves.png         reward, loss and mean Q against step (harness.plots, after the summary)
  tensorboard/       TensorBoard event files (harness.tensorboard, during training)
  demo.gif           the greedy agent playing (harness.media, after the summary of a finished run)

Ctrl-C (SIGINT) or SIGTERM stops training at the next step; the run still saves its weights,
metrics and a summary with `interrupted: true`, and `RunInterrupted` carries the exit code.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import platform
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from harness import files
from harness.errors import UserError
from harness.experiment import Experiment

EVAL_SEED_OFFSET = 10_000  # evaluation episodes use seed + this, apart from the training stream
# Validation rounds (which choose the weights to evaluate) use their own episodes, so that the
# evaluation stays an independent measurement of the chosen weights.
VALIDATION_SEED_OFFSET = 20_000
BEST_WEIGHTS = "best_weights.h5"


class RunInterrupted(Exception):
    """Training was stopped by a signal; the run directory holds what was done."""

    def __init__(self, run_dir: Path, signal_number: int) -> None:
        super().__init__(f"run interrupted by {signal.Signals(signal_number).name}; saved in {run_dir}")
        self.run_dir = run_dir
        self.exit_code = 128 + signal_number


def make_run_dir(runs_dir: str | Path, name: str, seed: int) -> Path:
    """Create a new, empty run directory (never reuses one)."""
    base = Path(runs_dir) / name
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        base.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            suffix = "" if attempt == 0 else f"-{attempt}"
            run_dir = base / f"{stamp}-seed{seed}{suffix}"
            try:
                run_dir.mkdir()
            except FileExistsError:
                continue
            probe = run_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
            return run_dir
    except OSError as err:
        raise UserError(f"RUNS folder {str(runs_dir)!r} can't be written: {err.strerror or err}") from None
    raise UserError(f"could not create a new run directory under {base}")


def check_buildable(exp: Experiment) -> None:
    """Make the env and build the network once, so mistakes surface as a UserError before any file
    is written (both are rebuilt from a fresh, seeded graph for the run itself)."""
    from harness.agents import build_model, make_env, make_processor, new_session

    new_session(exp.seed)
    env = make_env(exp, seed=exp.seed)
    try:
        build_model(exp, env, make_processor(exp))
    finally:
        env.close()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and a fresh TensorFlow graph (keras-rl's policies and memory draw from
    Python's `random` and NumPy's global generator)."""
    from harness.agents import new_session

    random.seed(seed)
    np.random.seed(seed)
    new_session(seed)


class SignalGuard:
    """Stops training on SIGINT or SIGTERM and records which signal came.

    While `armed`, a signal raises KeyboardInterrupt, which keras-rl's `fit` catches and ends the
    loop on (calling every callback's `on_train_end`, so metrics are flushed). While disarmed (saving
    files) a signal is only recorded, so a second Ctrl-C cannot cut a save short.
    """

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self.armed = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_number is None:
            self.signal_number = signum
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt

    def __enter__(self) -> "SignalGuard":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay with whoever owns them
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Signals interrupt the body; a KeyboardInterrupt that escapes it is recorded, not raised."""
        self.armed = self.signal_number is None
        try:
            yield
        except KeyboardInterrupt:
            if self.signal_number is None:
                self.signal_number = signal.SIGINT
        finally:
            self.armed = False

    @property
    def interrupted(self) -> bool:
        return self.signal_number is not None


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for package in ("tensorflow", "tf_keras", "keras-rl2", "gymnasium", "numpy"):
        try:
            out[package] = version(package)
        except Exception:  # a missing package is reported, not fatal
            out[package] = "?"
    return out


def evaluate(exp: Experiment, agent: Any, episodes: int, seed: int,
             render_mode: str | None = None, callbacks: list | None = None) -> dict[str, Any]:
    """Greedy evaluation with keras-rl's `agent.test` on a fresh env seeded with `seed`."""
    from harness.agents import make_env
    from harness.callbacks import EpisodeRecorder

    env = make_env(exp, seed=seed, render_mode=render_mode)
    recorder = EpisodeRecorder()
    try:
        agent.test(env, nb_episodes=episodes, action_repetition=exp.action_repetition, visualize=False,
                   verbose=0, callbacks=[recorder] + list(callbacks or []))
        score, score_name = score_episodes(env, recorder)
    finally:
        env.close()
    return {
        "episodes": episodes,
        "seed": seed,
        "mean_return": float(np.mean(recorder.returns)),
        "score": score,
        "score_name": score_name,
        "returns": recorder.returns,
        "lengths": recorder.lengths,
    }


def score_episodes(env: Any, recorder: Any) -> tuple[float, str]:
    """The game's own score if its env class defines one (Catch: catch rate), else mean return."""
    game = type(env.unwrapped)
    scorer = getattr(game, "score_episodes", None)
    if scorer is None:
        return float(np.mean(recorder.returns)), "mean_return"
    return float(scorer(recorder.final_infos)), str(getattr(game, "score_name", "score"))


def run(exp: Experiment, runs_dir: str | Path = "runs", command: list[str] | None = None,
        log: Any = None, resume_from: str | Path | None = None) -> Path:
    """Train, evaluate and save one run of `exp`; return its directory.

    `resume_from`: a run directory of the same experiment to continue, in a new run directory,
    from its newest saved weights (harness.rundirs.find_resume_point) and their global step;
    `exp.nb_steps` stays the total budget, so the resumed run trains the steps left. The replay
    memory is not saved: it refills, and training waits `nb_steps_warmup` steps again.

    Raises UserError for mistakes in the experiment and RunInterrupted when stopped by a signal.
    """
    log = log or sys.stdout
    exp = exp.validate()
    resume = None
    if resume_from is not None:
        from harness.rundirs import prepare_resume

        resume = prepare_resume(exp, resume_from)  # every check before the new run directory exists
    start_step = resume.step if resume is not None else 0
    nb_steps = exp.nb_steps - start_step
    check_buildable(exp)  # an unknown env id or a network that does not build leaves no run directory
    run_dir = make_run_dir(runs_dir, exp.name or "unnamed", exp.seed)
    started = dt.datetime.now().astimezone()
    files.write_json(run_dir / "config.json", {
        "experiment": exp.to_dict(),
        "run": {
            "command": command or sys.argv,
            "created": started.isoformat(timespec="seconds"),
            "host": platform.node(),
            "versions": _versions(),
            "eval_seed": exp.seed + EVAL_SEED_OFFSET,
            **({"validation_seed": exp.seed + VALIDATION_SEED_OFFSET} if exp.validation_interval else {}),
            **({"resumed_from": str(resume.run_dir), "resumed_at_step": resume.step,
                "resumed_from_weights": str(resume.weights)} if resume is not None else {}),
        },
    })
    print(f"run {exp.name} seed {exp.seed} -> {run_dir}", file=log, flush=True)
    if resume is not None:
        print(f"resuming {resume.run_dir} at step {resume.step} ({resume.source} {resume.weights.name}); "
              f"{nb_steps} steps left of {exp.nb_steps}", file=log, flush=True)

    from harness.agents import build_agent, make_env
    from harness.callbacks import BestWeightsKeeper, MetricsFileLogger, ProgressLogger, PruningCheckpoint
    from harness.tensorboard import TensorBoardLogger

    wall_start = time.monotonic()
    seed_everything(exp.seed)
    env = make_env(exp, seed=exp.seed)
    # A resumed run numbers everything by global step: the epsilon schedule (step_offset), the
    # checkpoints, metrics.json's nb_steps, progress lines and TensorBoard.
    agent = build_agent(exp, env, step_offset=start_step)
    if resume is not None:
        # Checked by prepare_resume; keras-rl's load_weights also copies them to the target network.
        agent.load_weights(str(resume.weights))

    interval = exp.log_interval or max(1, nb_steps // 20)
    file_logger = MetricsFileLogger(run_dir / "metrics.json", step_offset=start_step)
    callbacks = [
        file_logger,
        PruningCheckpoint(run_dir / "checkpoints", interval=exp.checkpoint_interval, keep=exp.keep_checkpoints,
                          step_offset=start_step),
        ProgressLogger(nb_steps, interval, step_offset=start_step, stream=log),
        TensorBoardLogger(run_dir / "tensorboard", step_offset=start_step),
    ]
    keeper = None
    if exp.validation_interval:
        keeper = BestWeightsKeeper(
            run_dir / BEST_WEIGHTS, exp.validation_interval, exp.validation_episodes,
            make_env=lambda: make_env(exp, seed=exp.seed + VALIDATION_SEED_OFFSET), score=score_episodes,
            action_repetition=exp.action_repetition, step_offset=start_step, stream=log)
        callbacks.append(keeper)
    for factory in exp.callbacks:
        callbacks.append(factory(run_dir))

    evaluation = None
    with SignalGuard() as guard:
        train_start = time.monotonic()
        with guard.interruptible():
            agent.fit(env, nb_steps=nb_steps, action_repetition=exp.action_repetition, callbacks=callbacks,
                      verbose=0)
        train_seconds = time.monotonic() - train_start
        # keras-rl flushes metrics in `on_train_end`, which a signal during `on_train_begin` skips.
        file_logger.save_data()
        steps_this_run = int(agent.step)
        steps = start_step + steps_this_run  # the global step count reached
        episodes = len(file_logger.data.get("episode", []))
        files.write_text(run_dir / "model.json", agent.model.to_json())
        files.write_with(run_dir / "weights.h5", lambda tmp: agent.save_weights(tmp, overwrite=True))
        eval_weights = "weights.h5"
        if not guard.interrupted:
            with guard.interruptible():
                if keeper is not None:
                    if not keeper.history or keeper.history[-1][0] != steps:
                        keeper.validate()  # the final weights are a candidate too
                    if keeper.best is not None and keeper.best[0] != steps:
                        agent.load_weights(str(run_dir / BEST_WEIGHTS))
                    eval_weights = BEST_WEIGHTS
                evaluation = evaluate(exp, agent, exp.eval_episodes, exp.seed + EVAL_SEED_OFFSET)
                # The scripted players (random, perfect/heuristic) on the same env seed, for comparison.
                from harness.baselines import run_baselines

                evaluation["baselines"] = run_baselines(exp, exp.eval_episodes, exp.seed + EVAL_SEED_OFFSET)
        env.close()
        interrupted = guard.interrupted
        signal_number = guard.signal_number

    summary = {
        "experiment": exp.name,
        "seed": exp.seed,
        "steps": steps,
        "steps_this_run": steps_this_run,
        "resumed_from": str(resume.run_dir) if resume is not None else None,
        "resumed_at_step": start_step,
        "nb_steps": exp.nb_steps,
        "episodes": episodes,
        "wall_seconds": round(time.monotonic() - wall_start, 3),
        "train_seconds": round(train_seconds, 3),
        "steps_per_second": round(steps_this_run / max(train_seconds, 1e-9), 1),
        "eval": evaluation,
        "eval_weights": eval_weights if evaluation is not None else None,
        "validation": None if keeper is None else {
            "interval": exp.validation_interval,
            "episodes": exp.validation_episodes,
            "seed": exp.seed + VALIDATION_SEED_OFFSET,
            "seconds": round(keeper.seconds, 3),
            "best_step": keeper.best[0] if keeper.best else None,
            "best_score": keeper.best[1] if keeper.best else None,
            "history": [{"step": step, "score": score} for step, score in keeper.history],
        },
        "interrupted": interrupted,
        "signal": signal.Signals(signal_number).name if interrupted else None,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
    }
    files.write_json(run_dir / "summary.json", summary)
    if not interrupted:
        try:  # demo.gif: the greedy agent's first evaluation episodes; a failure must not lose the run
            from harness.media import write_demo

            write_demo(exp, agent, run_dir / "demo.gif", seed=exp.seed + EVAL_SEED_OFFSET)
        except (Exception, KeyboardInterrupt) as err:  # Ctrl-C here: the run is saved, skip the GIF
            print(f"warning: demo.gif not written ({type(err).__name__}: {err}); "
                  f"`make play RUN={run_dir} GIF=...` films the saved agent", file=log, flush=True)
    try:  # curves.png is redrawn from the files above; a plotting failure must not lose the run
        from harness.plots import write_run_curves

        write_run_curves(run_dir)
    except (Exception, KeyboardInterrupt) as err:  # Ctrl-C here: the run is saved, skip the plot
        print(f"warning: curves.png not written ({type(err).__name__}: {err}); "
              f"`python -m harness plot {run_dir}` redraws it", file=log, flush=True)
    if evaluation is not None:
        print(f"eval over {evaluation['episodes']} episodes: mean return {evaluation['mean_return']:.3f}, "
              f"{evaluation['score_name']} {evaluation['score']:.3f}", file=log, flush=True)
        for player, result in (evaluation.get("baselines") or {}).items():
            print(f"  {player} player: mean return {result['mean_return']:.3f}, "
                  f"{result['score_name']} {result['score']:.3f}", file=log, flush=True)
    print(f"saved {run_dir}", file=log, flush=True)
    if interrupted:
        raise RunInterrupted(run_dir, signal_number)
    return run_dir

