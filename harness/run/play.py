"""`play`: rebuild a saved agent from its run directory and watch it play, without training.

The agent is rebuilt from the run's own files: the experiment from config.json, the network from
model.json (Keras JSON architecture), its weights from weights.h5 (HDF5), or from best_weights.h5
when summary.json says the run evaluated those (`validation_interval`). It plays greedy episodes
with keras-rl's `agent.test` through `harness.run.evaluation.evaluate`, the function the run used for its
own evaluation. By default it plays the run's evaluation episodes with the run's evaluation seed,
so it reproduces summary.json's `eval` (mean return and score) exactly: the greedy policy has no
randomness, and the env's episodes are fixed by the seed.

With a GIF path, the first episodes are filmed during the same evaluation (harness.run.media).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from harness.core.errors import UserError, one_line
from harness.core.rundir import (
    BEST_WEIGHTS,
    MODEL,
    WEIGHTS,
    experiment_from_config,
    read_config,
    read_summary,
    require_run_dir,
)
from harness.core.schema import Experiment
from harness.core.scoring import EVAL_SEED_OFFSET, crashes_text
from harness.kerasrl.agents import build_agent, load_weights_checked, make_env
from harness.kerasrl.compat import Callback, keras
from harness.kerasrl.models import CUSTOM_LAYERS
from harness.kerasrl.recurrent import Memoryless
from harness.run import media
from harness.run.evaluation import evaluate
from harness.run.runner import seed_everything
from harness.run.scripted import run_scripted_players


class EpisodeProgress(Callback):
    """One console line per finished episode: its return, length and time."""

    def __init__(self, episodes: int, stream: TextIO) -> None:
        super().__init__()
        self.episodes = episodes
        self.stream = stream
        self._started = time.monotonic()

    def on_episode_begin(self, episode: int, logs: dict | None = None) -> None:
        self._started = time.monotonic()

    def on_episode_end(self, episode: int, logs: dict) -> None:
        print(
            f"episode {episode + 1:>3d}/{self.episodes}: return {float(logs['episode_reward']):8.2f}, "
            f"{int(logs.get('nb_steps', 0))} steps, {time.monotonic() - self._started:.1f}s",
            file=self.stream,
            flush=True,
        )


def load_agent(run_dir: str | Path) -> tuple[Experiment, dict[str, Any], Any]:
    """(experiment, config, compiled agent with the weights its evaluation used) for a finished run."""
    run_dir = require_run_dir(run_dir, "RUN")
    config = read_config(run_dir, "RUN")
    # play never trains, so a loss function that config.json can only name does not matter here.
    exp = experiment_from_config(config, run_dir / "config.json", loss_unused=True)
    model_path, weights_path = run_dir / MODEL, run_dir / WEIGHTS
    # The weights the run's own evaluation used; only the two names the runner writes are accepted.
    evaluated = (read_summary(run_dir) or {}).get("eval_weights")
    if evaluated == BEST_WEIGHTS:
        weights_path = run_dir / evaluated
    for path in (model_path, weights_path):
        if not path.is_file():
            raise UserError(
                f"{run_dir} has no {path.name}: the run crashed or is still running "
                "(model.json and weights.h5 are saved when training ends)"
            )

    seed_everything(exp.seed)
    env = make_env(exp, seed=None)  # only for the spaces the agent is built with
    try:
        # A dueling run's model.json holds the head keras-rl's DQNAgent adds itself (a Lambda layer,
        # whose Python function Keras rightly refuses to load from JSON); its network is rebuilt from
        # the config instead (model=None), and DQNAgent adds the same head again.
        model = None
        if not exp.enable_dueling_network:
            try:
                model = keras.models.model_from_json(model_path.read_text(), custom_objects=CUSTOM_LAYERS)
            except Exception as err:  # malformed JSON, an unknown layer, code in a Lambda: a bad file
                raise UserError(f"{model_path} is not a Keras model architecture: {one_line(err)}") from None
        try:
            agent = build_agent(exp, env, model=model)
        except ValueError as err:
            raise UserError(f"{model_path} does not fit {exp.env_id}: {one_line(err)}") from None
    finally:
        env.close()
    load_weights_checked(agent, weights_path, f"the network in {model_path.name}")
    return exp, config, agent


def _int_setting(config: dict[str, Any], key: str, fallback: int) -> int:
    value = config["run"].get(key, fallback)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UserError(f"config.json run.{key}={value!r}; expected an integer")
    return value


def play(
    run_dir: str | Path,
    episodes: int | None = None,
    seed: int | None = None,
    gif: str | Path | None = None,
    stream: TextIO | None = None,
    env_kwargs: dict[str, Any] | None = None,
    memoryless: bool = False,
) -> dict[str, Any]:
    """Play a saved agent greedily; print each episode, the mean return and the game's score.

    Defaults: the run's own evaluation episodes and seed, which reproduce its summary.json.
    `env_kwargs` plays a variant of the run's game (these over the run's own env_kwargs, e.g. a
    CAVE agent trained on the plain game, evaluated with flicker=0.5); the variant must give the
    observations and actions the network was built for. `memoryless` (recurrent runs): the
    agent's LSTM state is zeroed before every action (harness.kerasrl.recurrent.Memoryless).
    Returns the evaluation (as `harness.run.runner.evaluate` gives it).
    """
    stream = stream or sys.stdout
    gif_path = media.check_gif_path(gif) if gif else None
    exp, config, agent = load_agent(run_dir)
    run_dir = Path(run_dir)
    if memoryless and not exp.recurrent:
        raise UserError(
            f"--memoryless zeroes a recurrent agent's state before every action; {run_dir} is a run of "
            f"{exp.name}, which has none (recurrent=false)"
        )
    seed = _int_setting(config, "eval_seed", exp.seed + EVAL_SEED_OFFSET) if seed is None else seed
    episodes = exp.eval_episodes if episodes is None else episodes
    variant = {k: v for k, v in (env_kwargs or {}).items() if exp.env_kwargs.get(k, _UNSET) != v}
    if variant:
        exp = _game_variant(exp, variant)
    if gif_path is not None and not media.rgb_array_supported(exp):
        raise UserError(f"env {exp.env_id} has no rgb_array render mode; a GIF needs one")

    game = exp.env_id + (f" with {json.dumps(variant)}" if variant else "")
    how = ", its LSTM state zeroed before every action" if memoryless else ""
    print(f"play {run_dir}: {exp.name} ({game}), {episodes} episodes, seed {seed}{how}", file=stream, flush=True)
    callbacks: list[Any] = [EpisodeProgress(episodes, stream)]
    if memoryless:
        callbacks.insert(0, Memoryless())
    recorder = media.FrameRecorder() if gif_path is not None else None
    if recorder is not None:
        callbacks.append(recorder)
    evaluation = evaluate(
        exp, agent, episodes, seed, render_mode="rgb_array" if recorder is not None else None, callbacks=callbacks
    )
    print(
        f"mean return {evaluation['mean_return']:.3f}, {evaluation['score_name']} "
        f"{evaluation['score']:.3f} over {episodes} episodes{crashes_text(evaluation)}",
        file=stream,
        flush=True,
    )

    if variant:
        _print_scripted_players(exp, episodes, seed, evaluation, stream)
    summary = read_summary(run_dir)
    own = (summary or {}).get("eval")
    if (
        not variant
        and not memoryless
        and isinstance(own, dict)
        and own.get("seed") == seed
        and own.get("episodes") == episodes
    ):
        same = own.get("mean_return") == evaluation["mean_return"] and own.get("score") == evaluation["score"]
        print(
            f"the run's own evaluation (same seed and episodes): mean return {own.get('mean_return')}, "
            f"{own.get('score_name')} {own.get('score')} ({'identical' if same else 'DIFFERENT'})",
            file=stream,
            flush=True,
        )
    if recorder is not None:
        assert gif_path is not None  # a recorder is made only for a gif
        media.write_gif(gif_path, recorder.frames, media.frames_per_second(exp))
        print(f"wrote {gif_path} ({len(recorder.frames)} frames)", file=stream, flush=True)
    return evaluation


_UNSET = object()


def _print_scripted_players(exp: Experiment, episodes: int, seed: int, evaluation: dict, stream: TextIO) -> None:
    """On a variant of the game the run's own baselines do not apply: the scripted players' scores
    on the same episodes of the variant, and the agent's share of each."""
    players = run_scripted_players(exp, episodes, seed)
    for name, result in (players or {}).items():
        share = f" (the agent: {100 * evaluation['score'] / result['score']:.1f}% of it)" if result["score"] else ""
        print(
            f"{name} player on the same episodes: {result['score_name']} {result['score']:.3f}{share}",
            file=stream,
            flush=True,
        )


def _game_variant(exp: Experiment, variant: dict[str, Any]) -> Experiment:
    """`exp` on its game with `variant` over its env_kwargs, checked to give the observations and
    actions the run's network takes (a variant that changes them cannot be played by it)."""
    changed = dataclasses.replace(exp, env_kwargs={**exp.env_kwargs, **variant})
    spaces = []
    for game in (exp, changed):
        env = make_env(game, seed=None)  # a setting the game rejects: its one-line UserError
        spaces.append((env.observation_space, env.action_space))
        env.close()
    for label, a, b in zip(("observation space", "action space"), *spaces, strict=True):
        if a != b:
            raise UserError(
                f"--env-kwargs {json.dumps(variant)} changes {exp.env_id}'s {label} from {a} to {b}; "
                "the run's network takes the first: only settings that keep both can be played"
            )
    return changed


def cli_play(args: Any) -> int:
    """`python -m harness play RUN_DIR [--episodes N] [--seed S] [--gif out.gif] [--env-kwargs JSON]
    [--memoryless]`."""
    play(
        args.run_dir,
        episodes=args.episodes,
        seed=args.seed,
        gif=args.gif,
        env_kwargs=args.env_kwargs,
        memoryless=args.memoryless,
    )
    return 0
