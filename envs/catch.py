"""Catch: move a paddle along the bottom row to catch balls falling from the top.

This module owns the Catch environment (`CatchEnv`), the perfect player used as the baseline
(`perfect_action`) and the catch-rate metric (`catch_rate`). Registration lives in `envs/__init__.py`.
"""

from __future__ import annotations

from collections import deque
from typing import Any, SupportsFloat

import gymnasium
import numpy as np
from gymnasium import logger, spaces

from envs._checks import check_action, check_int

# Paddle displacement of each action index.
_ACTIONS = (-1, 0, 1)  # left, stay, right
_ACTION_NAMES = ("left", "stay", "right")

_MIN_SIZE = 5  # below this the 3-wide paddle barely moves and the game is degenerate

# rgb_array colours: dark background so the (bright) objects stand out in videos and plots.
_BACKGROUND_RGB = (20, 20, 30)
_BALL_RGB = (255, 200, 40)
_PADDLE_RGB = (60, 160, 255)
_MIN_IMAGE_PX = 128  # rendered images are at least this many pixels on each side


class CatchEnv(gymnasium.Env):
    """Catch balls that fall one row per step with a 3-cell paddle on the bottom row.

    ## Description
    The board is a `size` x `size` grid. A ball appears in the top row when the episode starts and
    then every `interval` steps, so several balls may be falling at once. Every step each ball falls
    one row; when a ball reaches the bottom row it is caught if it lands on the paddle and missed
    otherwise. One miss ends the game. The task tests credit assignment over the `size - 1` steps a
    ball takes to fall, and juggling several balls at once.

    Each new ball's column is at most `interval` columns away from the previous ball's column (the
    first ball of an episode is uniform over all columns), so a perfect player can catch every ball
    (see `perfect_action`) and an episode only ends by the time limit of its registration.

    Within a step: (1) the paddle moves, (2) every ball falls one row, (3) a ball that enters the
    bottom row is resolved (caught or missed) and removed, (4) if the step count is a multiple of
    `interval`, a new ball appears in the top row.

    ## Action Space
    `Discrete(3)`:
    - 0: move the paddle one column left
    - 1: stay
    - 2: move the paddle one column right

    A move that would push the paddle past the edge leaves it where it is. An action outside the
    space raises `ValueError`.

    ## Observation Space
    `Box(0.0, 1.0, (size, size), float32)`: an image of the board, row 0 at the top. Ball cells and
    the three paddle cells (in row `size - 1`) are 1.0, the rest 0.0. Balls are only ever drawn in
    rows 0 to `size - 2`: they are resolved as they enter the bottom row.

    ## Starting State
    The paddle is centred on column `size // 2` and one ball is in row 0 at a uniformly random
    column.

    ## Reward
    +1 for each ball caught, -1 for a ball missed, 0 otherwise (the sum if several balls resolve in
    the same step).

    ## Episode End
    - Termination: a ball is missed.
    - Truncation: none in the env itself; the registered `Catch-v0` truncates after 500 steps.

    `info` holds `{"caught": int, "missed": int}`, the counts so far in the current episode.

    ## Arguments
    ```python
    gymnasium.make("Catch-v0", size=8, interval=4, render_mode=None)
    ```
    - `size`: side of the square board, an int >= 5 (8 by default; 16 is also used).
    - `interval`: steps between two new balls, an int >= 1 (4 by default).
    - `render_mode`: None, "rgb_array" (uint8 image of at least 128 x 128 pixels) or "ansi"
      (`size` lines of `size` characters: '.' empty, 'o' ball, '=' paddle).

    ## Version History
    - v0: Initial version.
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}

    # The game's score over several episodes, read by the harness from each episode's final info.
    score_name = "catch_rate"

    @staticmethod
    def score_episodes(final_infos: list[dict[str, int]]) -> float:
        """Catch rate over all the episodes: balls caught / balls resolved."""
        return catch_rate(sum(i["caught"] for i in final_infos), sum(i["missed"] for i in final_infos))

    def __init__(self, size: int = 8, interval: int = 4, render_mode: str | None = None) -> None:
        self.size = check_int("size", size, _MIN_SIZE, "e.g. 8 or 16")
        self.interval = check_int("interval", interval, 1, "steps between two new balls")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}; got {render_mode!r}")
        self.render_mode = render_mode

        self.action_space = spaces.Discrete(len(_ACTIONS))
        self.observation_space = spaces.Box(0.0, 1.0, (self.size, self.size), np.float32)

        # Ball state is kept as plain Python ints because `step` runs hundreds of thousands of
        # times: each ball is (spawn frame, column), oldest (lowest) first. A ball's row is
        # `frame - spawn frame`, so falling costs nothing but incrementing the frame counter.
        self._balls: deque[tuple[int, int]] = deque()
        self._paddle = self.size // 2  # centre column, kept in [1, size - 2]
        self._frame = 0
        self._last_col = 0  # column of the most recently spawned ball
        self._caught = 0
        self._missed = 0

    # --- State, read by `perfect_action` and tests -------------------------------------------
    @property
    def paddle(self) -> int:
        """Column of the paddle's centre cell."""
        return self._paddle

    @property
    def balls(self) -> list[tuple[int, int]]:
        """Balls in flight as (row, column), lowest (next to land) first."""
        return [(self._frame - born, col) for born, col in self._balls]

    # --- Gymnasium API ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, int]]:
        super().reset(seed=seed)
        self._balls.clear()
        self._paddle = self.size // 2
        self._frame = 0
        self._caught = 0
        self._missed = 0
        # The first ball has no predecessor: uniform over all columns. The paddle has size - 1
        # moves before it lands, more than the size // 2 - 1 it needs to reach either edge.
        self._spawn(int(self.np_random.integers(self.size)))
        return self._get_obs(), self._get_info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, int]]:
        index = check_action(action, _ACTION_NAMES)

        # (1) Move the paddle, keeping all three of its cells on the board.
        paddle = self._paddle + _ACTIONS[index]
        if 1 <= paddle <= self.size - 2:
            self._paddle = paddle

        # (2) Every ball falls one row: its row is frame - spawn frame.
        self._frame += 1

        # (3) Resolve the ball that entered the bottom row. Balls are at least one row apart, so at
        # most one lands per step; the loop is only defensive.
        reward = 0
        terminated = False
        landing_frame = self._frame - (self.size - 1)
        balls = self._balls
        while balls and balls[0][0] <= landing_frame:
            _, col = balls.popleft()
            if -1 <= col - self._paddle <= 1:
                self._caught += 1
                reward += 1
            else:
                self._missed += 1
                reward -= 1
                terminated = True

        # (4) A new ball every `interval` steps.
        if self._frame % self.interval == 0:
            # Drawn within `interval` columns of the previous ball, which is what makes every ball
            # catchable. Why: consecutive balls land exactly `interval` steps apart, so between
            # two landings the paddle makes exactly `interval` moves. If centre c caught the
            # previous ball at x_prev (|x_prev - c| <= 1), the nearest centre catching the new
            # ball at x_new is at most |x_new - c| - 1 <= |x_new - x_prev| + 1 - 1 <= interval
            # away; clipping that centre to [1, size - 2] only brings it closer, as c is in there.
            low = max(0, self._last_col - self.interval)
            high = min(self.size - 1, self._last_col + self.interval)
            self._spawn(int(self.np_random.integers(low, high + 1)))

        return self._get_obs(), float(reward), terminated, False, self._get_info()

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            # Gymnasium's convention (as in its own envs): warn and return None, do not raise.
            logger.warn(
                "You are calling render method without specifying any render mode. "
                "You can specify the render_mode at initialization, "
                f'e.g. gymnasium.make("{self.spec.id if self.spec else "Catch-v0"}", '
                'render_mode="rgb_array")'
            )
            return None
        if self.render_mode == "ansi":
            return self._render_ansi()
        return self._render_rgb()

    # --- Helpers ----------------------------------------------------------------------------
    def _spawn(self, col: int) -> None:
        self._balls.append((self._frame, col))
        self._last_col = col

    def _get_obs(self) -> np.ndarray:
        # A fresh array every call: callers (replay memories) keep the observations they get.
        obs = np.zeros((self.size, self.size), dtype=np.float32)
        frame = self._frame
        for born, col in self._balls:
            obs[frame - born, col] = 1.0
        obs[self.size - 1, self._paddle - 1 : self._paddle + 2] = 1.0
        return obs

    def _get_info(self) -> dict[str, int]:
        return {"caught": self._caught, "missed": self._missed}

    def _render_ansi(self) -> str:
        board = [["."] * self.size for _ in range(self.size)]
        for row, col in self.balls:
            board[row][col] = "o"
        for col in range(self._paddle - 1, self._paddle + 2):
            board[self.size - 1][col] = "="
        return "\n".join("".join(line) for line in board)

    def _render_rgb(self) -> np.ndarray:
        # Ceiling division so that every board size gives at least a 128 x 128 image
        # (16 px cells for size 8, 8 px for size 16, 26 px for size 5).
        cell = -(-_MIN_IMAGE_PX // self.size)
        grid = np.empty((self.size, self.size, 3), dtype=np.uint8)
        grid[:] = _BACKGROUND_RGB
        for row, col in self.balls:
            grid[row, col] = _BALL_RGB
        grid[self.size - 1, self._paddle - 1 : self._paddle + 2] = _PADDLE_RGB
        return np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)


def perfect_action(env: CatchEnv) -> int:
    """Return the action of a perfect Catch player for the env's current state.

    The player moves the paddle one column toward the nearest centre that catches the lowest ball
    still in flight (the next to land), and stays when it is already on one or no ball is falling.
    It never misses on a `CatchEnv` (see the spawn rule in `CatchEnv.step`), so it is the
    upper-bound baseline for agents.

    Args:
        env: the unwrapped env (`gymnasium.make(...).unwrapped`); it is read, not changed.

    Returns:
        An action index: 0 (left), 1 (stay) or 2 (right).
    """
    if not env._balls:
        return 1
    col = env._balls[0][1]
    paddle = env._paddle
    # Centres that catch a ball at `col` are col - 1 .. col + 1, clipped to where the paddle fits.
    target = min(max(paddle, col - 1, 1), col + 1, env.size - 2)
    return 1 + (target > paddle) - (target < paddle)


def catch_rate(caught: int, missed: int) -> float:
    """Fraction of resolved balls that were caught: caught / (caught + missed).

    When no ball has been resolved yet (both zero) it returns 0.0 rather than NaN: nothing has been
    shown to be caught, and a float that is always finite is safe to average, plot and compare.

    Raises:
        ValueError: if either count is negative.
    """
    if caught < 0 or missed < 0:
        raise ValueError(f"caught and missed must be >= 0; got caught={caught}, missed={missed}")
    total = caught + missed
    return caught / total if total else 0.0
