"""Scripted players (no learning), their scores, and `python -m harness baseline ENV_ID`.

Each game has a random player (the floor an agent must clear) and a scripted player that reads the
env's state (the bar it is measured against): Catch's perfect player, which never misses, and
CAVE's heuristic pilot, which steers for the open gap ahead. The players themselves live beside
their games (`envs.catch.perfect_action`, `envs.cave.heuristic_action`); this module plays them.

Baselines play the way the runner evaluates an agent: a fresh env reset with the evaluation seed
on its first episode, later episodes continuing that env's random stream, and the score is the
game's own (`score_episodes` of the env class: catch rate, frames survived), else the mean return.
A run's summary.json holds them next to the agent's score (`eval.baselines`), on the same seed.

Imports no TensorFlow: the `baseline` command is quick.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

import gymnasium
import numpy as np
from gymnasium import spaces

import envs  # noqa: F401  (registers the project's env ids)
from envs.catch import CatchEnv, perfect_action
from envs.cave import CaveEnv, heuristic_action
from harness.core.errors import UserError, did_you_mean
from harness.core.scoring import crashes_text, episodes_result, score_episodes

# A player maps (the unwrapped env, a seeded generator) to an action; scripted players ignore rng.
Player = Callable[[gymnasium.Env, np.random.Generator], int]


def random_player(env: gymnasium.Env, rng: np.random.Generator) -> int:
    """Uniform over the env's actions, drawn from `rng` (so a seed gives the same episodes)."""
    return int(rng.integers(cast(spaces.Discrete, env.action_space).n))  # the games' actions are Discrete


# PLAYERS lists each scripted player under its own game's id only, so `env` is that game.
def _catch_perfect(env: gymnasium.Env, rng: np.random.Generator) -> int:
    return perfect_action(cast(CatchEnv, env))


def _cave_heuristic(env: gymnasium.Env, rng: np.random.Generator) -> int:
    return heuristic_action(cast(CaveEnv, env))


# Per env id, the players in the order they are reported; the first is always the random player.
PLAYERS: dict[str, dict[str, Player]] = {
    "Catch-v0": {"random": random_player, "perfect": _catch_perfect},
    "Cave-v0": {"random": random_player, "heuristic": _cave_heuristic},
}


@dataclass
class Episodes:
    """What a player did over its episodes (the fields the runner's scoring reads)."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    final_infos: list[dict] = field(default_factory=list)


def make_game(env_id: str, env_kwargs: dict | None = None) -> gymnasium.Env:
    """gymnasium.make(env_id, **env_kwargs) for an env that has baseline players."""
    if env_id not in PLAYERS:
        raise UserError(
            f"no scripted players for env {env_id!r}{did_you_mean(env_id, PLAYERS)}; envs with players: "
            f"{', '.join(PLAYERS)}"
        )
    try:
        return gymnasium.make(env_id, **(env_kwargs or {}))
    except (TypeError, ValueError) as err:
        raise UserError(f"env {env_id} with env_kwargs={env_kwargs}: {err}") from None


def play(
    env: gymnasium.Env,
    player: Player,
    episodes: int,
    seed: int,
    on_episode: Callable[[int, float, dict], None] | None = None,
) -> Episodes:
    """Play `episodes` episodes; the env is reset with `seed` first and continues its stream after,
    as the runner's evaluation env does. The player's generator is seeded with `seed` too."""
    rng = np.random.default_rng(seed)
    game = env.unwrapped
    out = Episodes()
    for episode in range(episodes):
        env.reset(seed=seed if episode == 0 else None)
        info: dict[str, Any]
        total, steps, done, info = 0.0, 0, False, {}
        while not done:
            _, reward, terminated, truncated, info = env.step(player(game, rng))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        out.returns.append(total)
        out.lengths.append(steps)
        out.final_infos.append(dict(info))
        if on_episode is not None:
            on_episode(episode, total, dict(info))
    return out


def score(env: gymnasium.Env, played: Episodes) -> tuple[float, str]:
    """The game's own score over the episodes (same rule as the runner's evaluation)."""
    return score_episodes(env, played)


def scores(
    env_id: str, env_kwargs: dict | None, episodes: int, seed: int, log: TextIO | None = None
) -> dict[str, dict[str, Any]]:
    """Every baseline player of `env_id` over `episodes` episodes from `seed`:
    {player: {score, score_name, mean_return, returns, lengths}}. With `log`, one line per episode."""
    out: dict[str, dict[str, Any]] = {}
    make_game(env_id, env_kwargs).close()  # an env without players or bad kwargs: UserError first
    for name, player in PLAYERS[env_id].items():
        env = make_game(env_id, env_kwargs)
        try:
            progress = None if log is None else _progress_printer(name, episodes, log)
            played = play(env, player, episodes, seed, progress)
            value, value_name = score(env, played)
        finally:
            env.close()
        out[name] = episodes_result(played, value, value_name)
    return out


def _progress_printer(name: str, episodes: int, log: TextIO) -> Callable[[int, float, dict], None]:
    def progress(episode: int, total: float, info: dict) -> None:
        # The env's own counters (caught/missed, frames) say more than the return alone.
        counters = "  ".join(
            f"{k} {v}" for k, v in info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        print(
            f"{name:<10} episode {episode + 1:>3d}/{episodes}: return {total:8.3f}"
            f"{'  ' + counters if counters else ''}",
            file=log,
            flush=True,
        )

    return progress


def run_scripted_players(exp: Any, episodes: int, seed: int) -> dict[str, dict[str, Any]] | None:
    """The baselines for a run's evaluation (summary.json `eval.baselines`), or None when the run's
    env has no scripted players."""
    if exp.env_id not in PLAYERS:
        return None
    return scores(exp.env_id, exp.env_kwargs, episodes, seed)


# --- `python -m harness baseline` -----------------------------------------------------------
def cmd_baseline(args: Any) -> int:
    """Print each player's per-episode results and its mean score and mean return."""
    env_kwargs = args.env_kwargs  # a dict (harness.cli.json_object)
    make_game(args.env_id, env_kwargs).close()  # reject a bad env or kwargs before any output
    print(
        f"{args.env_id} {json.dumps(env_kwargs) if env_kwargs else ''}".rstrip()
        + f": {args.episodes} episodes per player, env seed {args.seed}",
        flush=True,
    )
    results = scores(args.env_id, env_kwargs, args.episodes, args.seed, log=sys.stdout)
    print()
    for name, result in results.items():
        game_score = (
            "" if result["score_name"] == "mean_return" else f"mean {result['score_name']} {result['score']:.3f}  "
        )
        print(f"{name:<10} {game_score}mean return {result['mean_return']:.3f}{crashes_text(result)}", flush=True)
    return 0
