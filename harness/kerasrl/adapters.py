"""Adapters between gymnasium environments and keras-rl's `Agent.fit` / `Agent.test` loop.

keras-rl speaks the old gym API: `reset()` returns the observation alone, `step()` returns
`(observation, reward, done, info)` and `render(mode=...)` takes the mode per call. Gymnasium
returns `(observation, info)` from `reset(seed=...)`, five values from `step()`, and fixes the
render mode when the env is made. `KerasRLEnv` translates one way, without changing the game.

Time-limit truncation: keras-rl has one `done` flag, which it stores in the replay memory as
"terminal". The adapter reports `done = terminated or truncated`, so an episode cut by the
registration's `max_episode_steps` ends as keras-rl expects, and the cut is recorded as
`info["TimeLimit.truncated"] = True` (the key old gym used) and in `last_truncated`. keras-rl's
DQNAgent treats that last transition as terminal and does not bootstrap from it; the fast path's
`bootstrap_truncation` setting reads `last_truncated` and bootstraps (harness.kerasrl.fast). The
caps of Catch and Cave are long compared with the horizon of their discount factor, so there the
bias is small; in the classic-control games every MountainCar episode that fails is cut at 200
steps, and keras-rl's default makes that cut look like a goal (no more -1 rewards).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np


class KerasRLEnv:
    """A gymnasium env seen through keras-rl's old-gym interface.

    Seeding: `seed` is used at the first `reset()` only (gymnasium's convention: later resets
    continue the env's random stream), and seeds the action space too, so that keras-rl's random
    start actions (`env.action_space.sample()`) are reproducible. `reseed(seed)` sets the seed for
    the next reset again.
    """

    def __init__(self, env: gymnasium.Env, seed: int | None = None) -> None:
        self.env = env
        self.action_space = env.action_space
        self.observation_space = env.observation_space
        self.last_info: dict[str, Any] = {}
        self.last_truncated = False
        self._pending_seed = seed
        if seed is not None:
            self.action_space.seed(seed)

    def reseed(self, seed: int | None) -> None:
        """Use `seed` at the next reset (None: continue the current random stream)."""
        self._pending_seed = seed
        if seed is not None:
            self.action_space.seed(seed)

    # keras-rl's old gym API ------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        observation, info = self.env.reset(seed=self._pending_seed)
        self._pending_seed = None
        self.last_info = dict(info)
        self.last_truncated = False
        return observation

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["TimeLimit.truncated"] = bool(truncated and not terminated)
        self.last_info = info
        self.last_truncated = info["TimeLimit.truncated"]
        return observation, float(reward), bool(terminated or truncated), info

    def render(self, mode: str = "human", close: bool = False) -> Any:
        """Render in the env's own `render_mode`; `mode` must match it (gymnasium fixes it at make)."""
        if close:
            return None
        own_mode = self.env.render_mode
        if own_mode is None:
            raise ValueError(
                f"render(mode={mode!r}) needs an env made with render_mode={mode!r}; "
                "this one was made without a render_mode"
            )
        if mode != "human" and mode != own_mode:
            raise ValueError(f"render(mode={mode!r}): this env renders {own_mode!r} only")
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    @property
    def unwrapped(self) -> gymnasium.Env:
        return self.env.unwrapped

    def __repr__(self) -> str:
        return f"KerasRLEnv({self.env})"
