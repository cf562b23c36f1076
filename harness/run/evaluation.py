"""Greedy evaluation of an agent: keras-rl's `agent.test` on a fresh, seeded env, scored by the game."""

from __future__ import annotations

from typing import Any

from harness.core.schema import Experiment
from harness.core.scoring import episodes_result, score_episodes
from harness.kerasrl.agents import make_env
from harness.kerasrl.callbacks import EpisodeRecorder


def evaluate(
    exp: Experiment, agent: Any, episodes: int, seed: int, render_mode: str | None = None, callbacks: list | None = None
) -> dict[str, Any]:
    """Greedy evaluation with keras-rl's `agent.test` on a fresh env seeded with `seed`."""
    env = make_env(exp, seed=seed, render_mode=render_mode)
    recorder = EpisodeRecorder()
    # keras-rl's `test` builds its first state from the memory's recent observations, which after
    # training still hold the unfinished last training episode's frames; with a window of several
    # frames they would leak into the first evaluation state. Forgetting them starts it zero-padded,
    # as every later episode, validation rounds and `make play` (a fresh memory) start.
    recent = getattr(agent.memory, "recent_observations", None)
    if recent is not None:
        recent.clear()
        agent.memory.recent_terminals.clear()
    try:
        agent.test(
            env,
            nb_episodes=episodes,
            action_repetition=exp.action_repetition,
            visualize=False,
            verbose=0,
            callbacks=[recorder, *(callbacks or [])],
        )
        score, score_name = score_episodes(env, recorder)
    finally:
        env.close()
    return {"episodes": episodes, "seed": seed, **episodes_result(recorder, score, score_name)}
