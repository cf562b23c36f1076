"""keras-rl callbacks the runner adds to every run (users add their own through the schema).

- `MetricsFileLogger`: keras-rl's FileLogger, writing metrics.json atomically and every few seconds.
- `GlobalStep`: a resumed run's agent counts global steps, as the uninterrupted run's did.
- `StateCheckpoint`: the whole training state (harness.kerasrl.checkpoint) at the first episode end
  after every interval, keeping the newest K.
- `ProgressLogger`: one line per interval with steps/s and time left.
- `EpisodeRecorder`: each episode's return and final `info` (the game's score lives there).
- `BestWeightsKeeper`: periodic greedy validation (`play_greedy`), keeping the best weights, and
  telling each round's score to an optional judge that may stop training (`Pruned`: a tuning
  study's pruner, harness.launch.study.TrialReporter).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from harness.core import files
from harness.core.rundir import CHECKPOINTS, list_states, state_name
from harness.kerasrl import checkpoint
from harness.kerasrl.agents import write_weights
from harness.kerasrl.compat import Callback, FileLogger


class MetricsFileLogger(FileLogger):
    """keras-rl's FileLogger, with two changes: the file is replaced atomically (keras-rl rewrites it
    in place, so a crash mid-write loses every episode), and it is flushed every `flush_seconds`
    rather than every N episodes (episode lengths vary by orders of magnitude during training).
    `step_offset` is added to `nb_steps` (0 when the agent counts global steps, as the runner's
    does); `restore` continues a checkpointed run's episodes."""

    def __init__(self, filepath: str | Path, flush_seconds: float = 10.0, step_offset: int = 0) -> None:
        super().__init__(str(filepath), interval=None)
        self.flush_seconds = flush_seconds
        self.step_offset = step_offset
        self.episode_offset = 0
        self._last_flush = time.monotonic()

    def restore(self, data: dict[str, list]) -> None:
        """Start from a checkpoint's episodes (strict JSON's null back to NaN); keras-rl's `fit`
        numbers the new ones from 0, so they are renumbered after them."""
        self.data = {key: [math.nan if v is None else v for v in values] for key, values in data.items()}
        self.episode_offset = len(self.data.get("episode", []))

    def on_episode_end(self, episode: int, logs: dict) -> None:
        if self.step_offset and "nb_steps" in logs:
            logs = {**logs, "nb_steps": self.step_offset + int(logs["nb_steps"])}
        super().on_episode_end(episode, logs)
        if self.episode_offset:
            self.data["episode"][-1] += self.episode_offset  # keras-rl appended fit's own number
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.save_data()

    def save_data(self) -> None:
        if not self.data:
            # keras-rl writes nothing before the first episode ends; a run stopped that early still
            # gets a metrics.json, with every column present and empty.
            names = list(getattr(self, "metrics_names", []))
            names += ["episode_reward", "nb_episode_steps", "nb_steps", "episode", "duration"]
            files.write_json(self.filepath, {name: [] for name in names})
            return
        order = np.argsort(self.data["episode"], kind="stable")
        # np.array(...).tolist() turns NumPy scalars into JSON-ready Python numbers, as keras-rl does.
        sorted_data = {key: np.array(values)[order].tolist() for key, values in self.data.items()}
        files.write_json(self.filepath, sorted_data)
        self._last_flush = time.monotonic()


class GlobalStep(Callback):
    """A resumed run's agent counts global steps from `start`, as the uninterrupted run's did.

    keras-rl's `fit` sets `agent.step = 0` after `on_train_begin`; the first `on_episode_begin`
    comes after that and before the first action, so setting the step there is in time for every
    rule that reads it: storing every `memory_interval`, training every `train_interval` after the
    warm-up, the target update every `target_model_update`, epsilon and prioritized replay's beta.
    `fit`'s `nb_steps` is then the total budget. Goes first in the callback list."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start: int | None = int(start)

    def on_episode_begin(self, episode: int, logs: dict | None = None) -> None:
        if self.start is not None:
            self.model.step = type(self.model.step)(self.start)  # fit's counter type (compat: int64)
            self.start = None


class StateCheckpoint(Callback):
    """The whole training state (harness.kerasrl.checkpoint) in `checkpoints/state-<step>/`, at the
    first episode end after every `interval` global steps, keeping the newest `keep`.

    Why at an episode end: the env is reset before the agent acts again, so its random generators
    are all of the game a resumed run needs; mid-episode the game's own state (ball positions, the
    cave ahead) would have to be saved too, and each game's differently. The cost is a checkpoint
    later by at most one episode. `collect()` gives the JSON data the runner's other callbacks carry
    on (metrics.json's episodes, the validation history); `best_weights`, the validated best
    weights' file, is copied in. `with_memory=False` leaves the replay memory out
    (`checkpoint_memory=false`). `start_step`: the global step a resumed run starts at.
    """

    def __init__(
        self,
        run_dir: str | Path,
        interval: int,
        keep: int,
        start_step: int = 0,
        with_memory: bool = True,
        collect: Callable[[], dict[str, Any]] | None = None,
        best_weights: Path | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.interval, self.keep = int(interval), int(keep)
        self.next_due = (int(start_step) // self.interval + 1) * self.interval
        self.with_memory = with_memory
        self.collect = collect or dict
        self.best_weights = best_weights

    def on_episode_end(self, episode: int, logs: dict | None = None) -> None:
        step = int(self.model.step)
        if step < self.next_due:
            return
        self.next_due = (step // self.interval + 1) * self.interval
        directory = self.run_dir / CHECKPOINTS / state_name(step)
        checkpoint.save(directory, self.model, self.env, self.collect(), self.with_memory, self.best_weights)
        for _, old in list_states(self.run_dir)[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)


class Diverged(Exception):
    """Training produced a NaN or infinity in a watched metric (raised out of keras-rl's `fit`)."""

    def __init__(self, step: int, metric: str, value: float) -> None:
        super().__init__(f"training diverged at step {step}: {metric} is {value}")
        self.step = step
        self.metric = metric
        self.value = value


class Pruned(Exception):
    """A validation round's judge stopped training (raised out of keras-rl's `fit`)."""

    def __init__(self, step: int, score: float, reason: str) -> None:
        super().__init__(f"pruned at step {step}: {reason}")
        self.step = step
        self.score = score
        self.reason = reason


# Called with (global step, score) after each validation round; a returned text stops training
# with that reason (`Pruned`), None lets it go on.
Judge = Callable[[int, float], "str | None"]


class DivergenceGuard(Callback):
    """Stops training at the first train step whose loss or mean Q is NaN or infinite.

    keras-rl keeps training on NaN (every later step is NaN too, and the run still ends with a
    score); this raises `Diverged` from `on_step_end`, which leaves keras-rl's `fit` at once. Put
    it before the checkpoint callback, so that no checkpoint is written from the diverged weights.
    Steps that did not train (warm-up, between train intervals) report NaN by design and are
    skipped: a step trained when `step > nb_steps_warmup` and `step % train_interval == 0`, the
    rule of keras-rl's `DQNAgent.backward`. `step_offset` numbers steps globally on a resume.
    """

    WATCHED = ("loss", "mean_q")

    def __init__(self, step_offset: int = 0) -> None:
        super().__init__()
        self.step_offset = step_offset
        self._indexes: list[tuple[int, str]] | None = None

    def on_step_end(self, step: int, logs: dict | None = None) -> None:
        agent = self.model
        if self._indexes is None:
            names = list(agent.metrics_names)
            self._indexes = [(names.index(name), name) for name in self.WATCHED if name in names]
        trained = agent.step > agent.nb_steps_warmup and agent.step % agent.train_interval == 0
        metrics = (logs or {}).get("metrics")
        if not trained or metrics is None:
            return
        for index, name in self._indexes:
            value = float(metrics[index])
            if not math.isfinite(value):
                raise Diverged(self.step_offset + agent.step + 1, name, value)


class ProgressLogger(Callback):
    """Progress on the console: step, percent, steps/s, time left, and the interval's episode return,
    loss, mean Q and epsilon. Written for the harness because keras-rl's TrainIntervalLogger prints
    neither speed nor time left and, off a terminal, nothing until each interval ends."""

    def __init__(self, total_steps: int, interval: int, step_offset: int = 0, stream: TextIO | None = None) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.interval = max(1, interval)
        self.step_offset = step_offset
        self.stream = stream or sys.stdout
        self.steps = 0
        self._reset_interval()

    def _reset_interval(self) -> None:
        self.interval_start = time.monotonic()
        self.interval_steps = 0
        self.rewards: list[float] = []
        self.metric_rows: list[Any] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.train_start = time.monotonic()
        self.metrics_names = list(self.model.metrics_names)
        self._print(f"training for {self.total_steps} steps")

    def on_step_end(self, step: int, logs: dict) -> None:
        self.steps += 1
        self.interval_steps += 1
        self.metric_rows.append(logs.get("metrics"))
        if self.steps % self.interval == 0 or self.steps == self.total_steps:
            self._report()

    def on_episode_end(self, episode: int, logs: dict) -> None:
        self.rewards.append(float(logs["episode_reward"]))

    def on_train_end(self, logs: dict | None = None) -> None:
        elapsed = time.monotonic() - self.train_start
        aborted = bool(logs and logs.get("did_abort"))
        verb = "stopped" if aborted else "done"
        self._print(
            f"{verb} after {self.steps} steps in {elapsed:.1f}s ({self.steps / max(elapsed, 1e-9):.0f} steps/s)"
        )

    def _report(self) -> None:
        now = time.monotonic()
        rate = self.interval_steps / max(now - self.interval_start, 1e-9)
        left = (self.total_steps - self.steps) / rate if rate > 0 else math.inf
        parts = [
            f"step {self.step_offset + self.steps:>8d}/{self.step_offset + self.total_steps}",
            f"{100.0 * self.steps / self.total_steps:5.1f}%",
            f"{rate:6.0f} steps/s",
            f"left {_format_seconds(left)}",
        ]
        if self.rewards:
            parts.append(f"episodes {len(self.rewards)} return {np.mean(self.rewards):.2f}")
        rows = [r for r in self.metric_rows if r is not None and len(r) == len(self.metrics_names)]
        if rows:
            with np.errstate(all="ignore"):
                table = np.array(rows, dtype=float)
                for name in ("loss", "mean_q", "mean_eps"):
                    if name in self.metrics_names:
                        column = table[:, self.metrics_names.index(name)]
                        if np.isfinite(column).any():
                            parts.append(f"{name} {np.nanmean(column):.4g}")
        self._print(" | ".join(parts))
        self._reset_interval()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def _format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class EpisodeRecorder(Callback):
    """Each episode's return, length and final `info` (the env's own counters: balls caught, frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.final_infos: list[dict] = []
        self._last_info: dict = {}

    def on_episode_begin(self, episode: int, logs: dict | None = None) -> None:
        self._last_info = {}

    def on_step_end(self, step: int, logs: dict) -> None:
        # keras-rl sums numeric info values over action repetitions; the env's own last info is
        # exact, so read it from the adapter when there is one.
        self._last_info = dict(getattr(self.env, "last_info", None) or logs.get("info", {}))

    def on_episode_end(self, episode: int, logs: dict) -> None:
        self.returns.append(float(logs["episode_reward"]))
        self.lengths.append(int(logs.get("nb_steps", logs.get("nb_episode_steps", 0))))
        self.final_infos.append(self._last_info)


def play_greedy(agent: Any, env: Any, episodes: int, action_repetition: int = 1) -> EpisodeRecorder:
    """Play `episodes` greedy episodes of `agent` on `env` without changing the agent's state.

    The same loop as keras-rl's `Agent.test` (processor calls, zero-padded window of the last
    `window_length` observations, action repetition, greedy test policy), written out because
    `test` resets `agent.step`, the step counter that drives training, so it cannot run inside
    `fit`. Returns an EpisodeRecorder holding each episode's return, length and final `info`.
    """
    # Greedy play is not training: with noisy layers the agent then acts on its mean weights.
    training, agent.training = agent.training, False
    # A recurrent agent (harness.kerasrl.recurrent) carries an LSTM state between steps: each greedy
    # episode starts from zero, and the training episode this interrupts gets its own state back.
    held = agent.acting_state if getattr(agent, "recurrent", False) else None
    try:
        return _play_greedy(agent, env, episodes, action_repetition)
    finally:
        agent.training = training
        if held is not None:
            agent.acting_state = held


def _play_greedy(agent: Any, env: Any, episodes: int, action_repetition: int) -> EpisodeRecorder:
    recorder = EpisodeRecorder()
    processor = agent.processor
    window = int(getattr(agent.memory, "window_length", 1))
    for _ in range(episodes):
        observation = env.reset()
        if getattr(agent, "recurrent", False):
            agent.reset_states()  # as keras-rl's test does at every episode start
        if processor is not None:
            observation = processor.process_observation(observation)
        states = [np.zeros_like(observation)] * (window - 1) + [observation]
        total, steps, done, info = 0.0, 0, False, {}
        while not done:
            q_values = agent.compute_q_values(states)
            action = agent.test_policy.select_action(q_values=q_values)
            if processor is not None:
                action = processor.process_action(action)
            for _ in range(action_repetition):
                observation, reward, done, info = env.step(action)
                if processor is not None:
                    observation, reward, done, info = processor.process_step(observation, reward, done, info)
                total += float(reward)
                if done:
                    break
            steps += 1
            states = states[1:] + [observation]  # always the last `window` observations
        recorder.returns.append(total)
        recorder.lengths.append(steps)
        recorder.final_infos.append(dict(getattr(env, "last_info", None) or info))
    return recorder


class BestWeightsKeeper(Callback):
    """Every `interval` training steps, play `episodes` greedy validation episodes on a fresh env
    seeded with `seed` (the same episodes each round) and save the weights whenever the game's score
    beats every earlier round, to `path` (atomically).

    DQN's greedy policy swings by tens of percent between neighbouring checkpoints while the
    training return looks flat; keeping the best validated weights (as rl-baselines3-zoo's
    EvalCallback keeps best_model) evaluates the agent at its best rather than wherever the budget
    happened to end. `make_env()` builds the validation env; `score(env, recorder)` turns the
    episodes into the game's (score, score name), as `harness.run.runner.score_episodes` does.
    `history` holds (global step, score) per round; `best` the best of them. `judge` (optional)
    hears every round's (global step, score); when it answers with a reason during training, the
    round raises `Pruned` and training stops there (the final round after training is only told).
    """

    def __init__(
        self,
        path: str | Path,
        interval: int,
        episodes: int,
        make_env: Any,
        score: Any,
        action_repetition: int = 1,
        step_offset: int = 0,
        stream: TextIO | None = None,
        judge: Judge | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.judge = judge
        self.verdict: str | None = None
        self.interval = interval
        self.episodes = episodes
        self.make_env = make_env
        self.score = score
        self.action_repetition = action_repetition
        self.step_offset = step_offset
        self.stream = stream or sys.stdout
        self.steps = 0
        self.history: list[tuple[int, float]] = []
        self.best: tuple[int, float] | None = None
        self.seconds = 0.0

    def on_step_end(self, step: int, logs: dict | None = None) -> None:
        self.steps += 1
        if (self.step_offset + self.steps) % self.interval == 0:  # global steps: a resumed run keeps the rounds
            score = self.validate()
            if self.verdict:
                raise Pruned(self.step_offset + self.steps, score, self.verdict)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the rounds so far (JSON data)."""
        return {"history": [list(row) for row in self.history], "best": list(self.best) if self.best else None}

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue a checkpoint's rounds (its best weights are copied to `path` by the runner)."""
        self.history = [(int(step), float(score)) for step, score in saved["history"]]
        self.best = (int(saved["best"][0]), float(saved["best"][1])) if saved["best"] else None

    def validate(self) -> float:
        """One validation round now, told to the judge (its answer in `verdict`); returns its score."""
        started = time.monotonic()
        env = self.make_env()
        try:
            recorder = play_greedy(self.model, env, self.episodes, self.action_repetition)
            score, score_name = self.score(env, recorder)
            score = float(score)
        finally:
            env.close()
        global_step = self.step_offset + self.steps
        self.history.append((global_step, score))
        improved = self.best is None or score > self.best[1]
        if improved:
            write_weights(self.model, self.path)
            self.best = (global_step, score)
        self.seconds += time.monotonic() - started
        assert self.best is not None  # the first round always improves on None
        print(
            f"validation at step {global_step}: {score_name} {score:.3f} over {self.episodes} episodes"
            f"{' (best so far, saved)' if improved else f' (best {self.best[1]:.3f} at step {self.best[0]})'}",
            file=self.stream,
            flush=True,
        )
        self.verdict = self.judge(global_step, score) if self.judge is not None else None
        return score
