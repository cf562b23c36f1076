"""Cave: fly a ship through a scrolling cave by holding or releasing one button.

This module owns the Cave environment (`CaveEnv`) and its state-reading pilot
(`heuristic_action`), the upper baseline; the random player, the lower one, is the same for every
game (`harness.run.scripted.random_player`). Registration lives in `envs/__init__.py`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, SupportsFloat

import gymnasium
import numpy as np
from gymnasium import logger, spaces

from envs._checks import check_action, check_int, check_real

_ACTION_NAMES = ("release", "press")  # action 1 holds the button: thrust up

# --- Game constants ---------------------------------------------------------------------------
# Lengths and speeds are given in pixels of the native 96-pixel screen; a `screen` of another size
# scales every vertical length and speed (and the ship's and blocks' widths) by screen / 96, so the
# game plays the same in frames. The scroll is always one column per frame: time constants are in
# frames and do not scale, and a wider screen shows more frames of cave ahead.
_NATIVE = 96
_MIN_SCREEN = 32

# Ship: a square at a fixed column, a quarter of the way across the screen.
_SHIP_COLUMN = 0.25  # fraction of the width
_SHIP_SIZE = 4  # px; at least 2 px at any screen, so it survives 2x downsampling by averaging
_GRAVITY = 0.25  # px / frame^2, downward, when the button is released
_THRUST = 0.25  # px / frame^2, upward, when the button is held (replaces gravity)
_MAX_SPEED = 2.0  # px / frame; vertical speed is clipped to +-this

# Cave: the gap's centre follows a bounded random walk whose slope (drift) is itself a bounded
# random walk, so the walls bend smoothly: at most _DRIFT_MAX px per column, well under the ship's
# top speed, so the ship can always follow them.
_GAP_START = 0.625  # gap height at the start of an episode, fraction of the screen (60 px)
_GAP_MIN = 1 / 3  # default `gap_min`, fraction of the screen (32 px)
_GAP_MIN_RANGE = (0.25, _GAP_START)  # allowed `gap_min`
_GAP_SHRINK = 0.02  # px per frame: 1 px every 50 frames, 60 -> 32 px in 1,400 frames
_WALL_MIN = 4  # px; ceiling and floor are always at least this thick
_DRIFT_JERK = 0.08  # px / column^2: the slope's random-walk step (uniform in +-this)
_DRIFT_MAX = 0.6  # px / column

# Blocks: rectangles inside the gap, scrolling with the cave.
_GRACE = 100  # frames: no block enters the screen before this frame of an episode
_BLOCK_INTERVAL = 50  # default `block_interval`: mean frames between two blocks entering
_BLOCK_INTERVAL_SPREAD = 0.2  # intervals are uniform in interval * (1 -+ this): 40..60 frames
_MIN_BLOCK_INTERVAL = 20  # smallest allowed `block_interval`
# The game speeds up: the mean interval between blocks shrinks linearly from `block_interval` to
# _BLOCK_INTERVAL_LATE over the first _BLOCK_RAMP frames, so that even a good pilot eventually
# meets a block it cannot dodge and scores stay informative instead of hitting the time limit.
_BLOCK_INTERVAL_LATE = 16
_BLOCK_RAMP = 2_000
_BLOCK_WIDTH = 6  # px (columns)
_BLOCK_HEIGHT = (8, 16)  # px, inclusive range of a block's height before it is fitted in the gap
_PASSAGE = 3  # ship sizes: free height kept above or below every block (12 px)

# Rewards: a crash costs as much as 100 frames of survival earn (see the class docstring).
_ALIVE_REWARD = 0.01
_CRASH_REWARD = -1.0

# Second seed word of the flicker generator's stream (any constant: it only keeps the stream apart
# from the env's own).
_FLICKER_STREAM = 0xF11C

# Gray levels of the observation; distinct, and the ship the brightest.
_BACKGROUND = 0
_WALL = 96
_BLOCK = 160
_SHIP = 255

# rgb_array colours (indexed by gray level) and upscaling for videos.
_PALETTE = {_BACKGROUND: (15, 15, 30), _WALL: (140, 95, 60), _BLOCK: (150, 150, 165), _SHIP: (255, 215, 40)}
_RENDER_SCALE = 2


def _scaled(px: float, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(px * scale)))


class CaveEnv(gymnasium.Env):
    """Fly a ship through a scrolling cave that narrows over time, dodging blocks, with one button.

    ## Description
    A side-scroller on a `screen` x `screen` grayscale screen (96 x 96 by default; the sizes below
    are for that screen). The ship, a 4 x 4 pixel square, stays in columns 24 to 27; the cave
    scrolls left one column per frame and a new column appears at the right edge. Holding the
    button accelerates the ship upward, releasing it lets gravity pull it down (0.25 px/frame^2
    either way), and its vertical speed is clipped to +-2 px/frame. Position and velocity are
    floats; the ship is drawn, and collides, at its rounded position.

    The gap between ceiling and floor bends smoothly (its centre is a random walk with a bounded,
    randomly changing slope of at most 0.6 px per column) and shrinks by 1 px every 50 frames, from
    60 px down to `gap_min` of the screen (32 px by default). The first block enters the screen on
    a frame drawn uniformly from 100 to 120 (the grace period), the next ones every
    `block_interval` frames on average (uniform within +-20%: 40 to 60 frames at first). The game
    speeds up: that mean shrinks linearly to 16 frames over the first 2,000 frames, so even a good
    pilot eventually meets a block it cannot dodge (the heuristic pilot averages about 1,700
    frames, a random player about 50). A block is 6
    columns wide and 8 to 16 px high (lowered if needed to fit). Each block lies inside the gap and
    leaves a passage of at least 12 px (3 ship heights) above or below it over every column the
    ship can share with it; a block that cannot be fitted that way (only in a very narrow cave) is
    left out. The task tests steering with momentum, a delayed effect of each press, and planning
    a route around obstacles seen ~70 frames ahead.

    Within a step: (1) the action sets the ship's acceleration, then its velocity (clipped) and
    position are updated, (2) the cave scrolls one column left and a new column enters at the right
    edge, (3) the ship crashes if its square overlaps a wall or block pixel.

    ## Action Space
    `Discrete(2)`:
    - 0: release the button (gravity pulls the ship down)
    - 1: hold the button (thrust pushes the ship up)

    An action outside the space raises `ValueError`.

    ## Observation Space
    `Box(0, 255, (screen, screen), uint8)`: the native screen, row 0 at the top. Background is 0,
    ceiling and floor 96, blocks 160 and the ship 255 (drawn last, so also over what it hit).
    Agents are expected to downsample it (e.g. 2x by averaging, to 48 x 48); the ship then still
    covers 2 x 2 pixels.

    ## Starting State
    A block-free cave with a 60 px gap, centred vertically at the right edge (within a pixel) and
    wandering from there leftward; the ship is at rest, centred in the gap over its columns. Each
    reset draws a new cave from the env's generator.

    ## Reward
    +0.01 for each frame survived, -1 for a crash (instead of the +0.01). An episode of n frames
    then returns 0.01 n, minus 1 if it ended in a crash: the return still ranks players by survival
    time, while a crash outweighs the 100 frames before it, so near-term credit is dominated by
    avoiding it. Both values are in [-1, 1] and survive reward clipping unchanged.

    ## Episode End
    - Termination: the ship touches the ceiling, the floor or a block.
    - Truncation: none in the env itself; the registered `Cave-v0` truncates after 10,000 steps.

    `info` holds `{"frames": int}`, the frames survived so far in the episode: it is the number of
    steps taken that did not crash, i.e. it increments on every step except the crashing one, so
    an episode that crashes on its n-th step ends with `frames == n - 1`. This is the game's score.
    The crashing step's `info` also holds `"crash"`: what was hit ("ceiling", "floor" or "block"),
    as the `crash` property tells (None before a crash).

    ## Arguments
    ```python
    gymnasium.make("Cave-v0", screen=96, gap_min=1/3, block_interval=50, flicker=0.0, render_mode=None)
    ```
    - `screen`: side of the square screen in pixels, an even int >= 32 (96 by default). Lengths and
      speeds scale with screen / 96 so the game plays the same; a bigger screen shows more cave
      ahead (the scroll is always one column per frame).
    - `gap_min`: the narrowest gap, as a fraction of the screen height, a real number in
      [0.25, 0.625] (1/3 by default, 32 px); 0.625 keeps the gap from shrinking at all.
    - `block_interval`: mean frames between two blocks, an int >= 20 (50 by default), or None for
      a cave without blocks.
    - `flicker`: the probability, in [0, 1), that an observation is blanked (all zeros), as in
      Hausknecht & Stone's flickering Pong: the game goes on unseen for that frame. 0 by default
      (the game as it always was). Blanking is drawn from a generator of its own, seeded with the
      env's seed at `reset(seed=...)`, so a seed gives the same caves with or without flicker, and
      the scripted players, which read the game state, score the same. `render()` shows the real
      screen.
    - `render_mode`: None or "rgb_array": the screen in colour (dark blue background, brown walls,
      gray blocks, yellow ship), upscaled 2x to (2 screen, 2 screen, 3) uint8 for videos.

    ## Version History
    - v0: Initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    # The game's score over several episodes, read by the harness from each episode's final info.
    score_name = "frames"

    @staticmethod
    def score_episodes(final_infos: list[dict[str, Any]]) -> float:
        """Mean frames survived per episode."""
        return float(np.mean([info["frames"] for info in final_infos]))

    def __init__(
        self,
        screen: int = 96,
        gap_min: float = _GAP_MIN,
        block_interval: int | None = _BLOCK_INTERVAL,
        flicker: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        screen = check_int("screen", screen, _MIN_SCREEN, "an even number of pixels, e.g. 96")
        if screen % 2:
            raise ValueError(f"screen must be an even int >= {_MIN_SCREEN} (e.g. 96); got {screen!r}")
        low, high = _GAP_MIN_RANGE
        gap_min = check_real("gap_min", gap_min, low, high, "fraction of the screen height, e.g. 1/3")
        if block_interval is not None:
            block_interval = check_int(
                "block_interval",
                block_interval,
                _MIN_BLOCK_INTERVAL,
                "mean frames between two blocks, or None for no blocks",
            )
        flicker = check_real("flicker", flicker, 0.0, 1.0, "probability that an observation is blanked, below 1")
        if flicker >= 1.0:
            raise ValueError(f"flicker must be a real number in [0, 1) (1 would blank every frame); got {flicker!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}; got {render_mode!r}")
        self.screen = screen
        self.gap_min = float(gap_min)
        self.block_interval = block_interval
        self.flicker = float(flicker)
        self._flicker_rng: np.random.Generator | None = None
        self.render_mode = render_mode

        # Everything in pixels of this screen.
        scale = screen / _NATIVE
        self._ship_x = int(screen * _SHIP_COLUMN)
        self._ship_size = _scaled(_SHIP_SIZE, scale, minimum=2)
        self._gravity = _GRAVITY * scale
        self._thrust = _THRUST * scale
        self._max_speed = _MAX_SPEED * scale
        self._gap_start = _GAP_START * screen
        self._gap_min_px = int(round(self.gap_min * screen))
        self._gap_shrink = _GAP_SHRINK * scale
        self._wall_min = _scaled(_WALL_MIN, scale)
        self._drift_jerk = _DRIFT_JERK * scale
        self._drift_max = _DRIFT_MAX * scale
        self._block_width = _scaled(_BLOCK_WIDTH, scale, minimum=2)
        self._block_height = (_scaled(_BLOCK_HEIGHT[0], scale, minimum=2), _scaled(_BLOCK_HEIGHT[1], scale, minimum=2))
        self._passage = _PASSAGE * self._ship_size
        if block_interval is not None:
            spread = int(round(block_interval * _BLOCK_INTERVAL_SPREAD))
            self._block_gaps = (block_interval - spread, block_interval + spread)

        self.action_space = spaces.Discrete(len(_ACTION_NAMES))
        self.observation_space = spaces.Box(0, 255, (screen, screen), np.uint8)

        # The scrolling state. `_cave` rows are ceiling, floor, block top, block bottom per screen
        # column (int arrays; rows [ceiling, floor) are open, [block top, block bottom) is a block,
        # empty when equal). `_pixels` is the screen without the ship. Both scroll by one column
        # per step (a 384-byte and a 9-KB memmove at 96 px). Columns are generated one at a time,
        # or a block and its surroundings at once into `_pending`.
        self._cave = np.zeros((4, screen), dtype=np.int32)
        self._pixels = np.zeros((screen, screen), dtype=np.uint8)
        self._pending: deque[tuple[int, int, int, int]] = deque()
        self._y = 0.0  # ship's top edge (row, float, down is positive)
        self._vy = 0.0  # px / frame, down is positive
        self._t = 0  # steps taken in the episode; the newest column entered on frame _t
        self._frames = 0
        self._crash: str | None = None
        self._centre = 0.0  # random walk of the gap's centre (row) ...
        self._drift = 0.0  # ... and its slope, px per column
        self._next_block = 0  # entering frame of the next block's first column

    # --- State, read by `heuristic_action` and tests ----------------------------------------
    @property
    def ship_x(self) -> int:
        """Leftmost screen column of the ship (it covers `ship_size` columns from there)."""
        return self._ship_x

    @property
    def ship_size(self) -> int:
        """Side of the ship's square in pixels."""
        return self._ship_size

    @property
    def ship_y(self) -> float:
        """Row of the ship's top edge (float; down is positive). It is drawn at `ship_row`."""
        return self._y

    @property
    def ship_row(self) -> int:
        """Top row of the ship as drawn and as used for collisions: `ship_y` rounded half up."""
        return math.floor(self._y + 0.5)

    @property
    def ship_velocity(self) -> float:
        """Vertical velocity in pixels per frame (down is positive)."""
        return self._vy

    @property
    def ceiling(self) -> np.ndarray:
        """Per screen column, the first open row: rows above it are ceiling (read-only view)."""
        return self._view(0)

    @property
    def floor(self) -> np.ndarray:
        """Per screen column, the first floor row below the gap (read-only view)."""
        return self._view(1)

    @property
    def block_top(self) -> np.ndarray:
        """Per column, the first block row (`block_bottom` where there is none; read-only)."""
        return self._view(2)

    @property
    def block_bottom(self) -> np.ndarray:
        """Per screen column, one past the last block row (read-only view)."""
        return self._view(3)

    @property
    def frames(self) -> int:
        """Frames survived in this episode (`info["frames"]`)."""
        return self._frames

    @property
    def crash(self) -> str | None:
        """What the ship hit on the episode's last step: "ceiling", "floor", "block", or None."""
        return self._crash

    @property
    def gap_min_px(self) -> int:
        """The narrowest gap in pixels."""
        return self._gap_min_px

    @property
    def passage(self) -> int:
        """Free height in pixels kept above or below every block."""
        return self._passage

    # --- Gymnasium API ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, int | str]]:
        super().reset(seed=seed)
        if self.flicker and (seed is not None or self._flicker_rng is None):
            # Its own stream, so that flickering draws do not change the caves the seed gives.
            self._flicker_rng = np.random.default_rng(None if seed is None else [seed, _FLICKER_STREAM])
        self._t = 0
        self._frames = 0
        self._crash = None
        self._pending.clear()
        self._centre = self.screen / 2
        self._drift = 0.0
        # The starting screen: the columns that entered on frames -(screen - 1) .. 0. They are
        # generated from the right edge leftward, so that the newest column is the one centred;
        # the walk then carries on rightward from it, with its slope reversed.
        columns = [self._new_column(0)]
        centre, drift = self._centre, self._drift
        columns += [self._new_column(0) for _ in range(self.screen - 1)]
        self._cave[:] = np.array(columns[::-1], dtype=np.int32).T
        self._centre, self._drift = centre, -drift
        self._pixels[:] = _BACKGROUND
        for col in range(self.screen):
            self._draw_column(col)
        if self.block_interval is not None:
            low, high = self._block_gaps
            self._next_block = _GRACE + int(self.np_random.integers(high - low + 1))
        ceiling = self._cave[0, self._ship_x : self._ship_x + self._ship_size].max()
        floor = self._cave[1, self._ship_x : self._ship_x + self._ship_size].min()
        self._y = float(ceiling + floor - self._ship_size) / 2
        self._vy = 0.0
        return self._seen(self._get_obs()), self._get_info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, int | str]]:
        index = check_action(action, _ACTION_NAMES)

        # (1) Ship physics.
        vy = self._vy - self._thrust if index else self._vy + self._gravity
        vy = min(max(vy, -self._max_speed), self._max_speed)
        self._vy = vy
        self._y += vy

        # (2) Scroll: every column moves one left, a new one enters at the right edge.
        self._t += 1
        if not self._pending:
            self._generate()
        cave, pixels = self._cave, self._pixels
        cave[:, :-1] = cave[:, 1:]
        cave[:, -1] = self._pending.popleft()
        pixels[:, :-1] = pixels[:, 1:]
        self._draw_column(self.screen - 1)

        # (3) Collision: any wall or block pixel under the ship's square.
        row, x, size = self.ship_row, self._ship_x, self._ship_size
        under = pixels[max(row, 0) : max(row + size, 0), x : x + size]
        if row < 0 or row + size > self.screen or under.any():
            self._crash = self._crash_cause(row, under)
            reward, terminated = _CRASH_REWARD, True
        else:
            self._frames += 1
            reward, terminated = _ALIVE_REWARD, False
        return self._seen(self._get_obs()), reward, terminated, False, self._get_info()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            # Gymnasium's convention (as in its own envs): warn and return None, do not raise.
            logger.warn(
                "You are calling render method without specifying any render mode. "
                "You can specify the render_mode at initialization, "
                f'e.g. gymnasium.make("{self.spec.id if self.spec else "Cave-v0"}", '
                'render_mode="rgb_array")'
            )
            return None
        image = _RGB_LUT[self._get_obs()]
        return np.repeat(np.repeat(image, _RENDER_SCALE, axis=0), _RENDER_SCALE, axis=1)

    # --- Helpers ----------------------------------------------------------------------------
    def _view(self, index: int) -> np.ndarray:
        view = self._cave[index].view()
        view.flags.writeable = False
        return view

    def _gap_height(self, frame: int) -> int:
        """Gap height of the column that enters the screen on `frame` (columns before 0: start)."""
        shrunk = self._gap_start - self._gap_shrink * max(frame, 0)
        return max(self._gap_min_px, int(shrunk))

    def _new_column(self, frame: int) -> tuple[int, int, int, int]:
        """Advance the gap's random walk by one column; return (ceiling, floor, 0, 0)."""
        gap = self._gap_height(frame)
        drift = self._drift + self.np_random.uniform(-self._drift_jerk, self._drift_jerk)
        drift = min(max(drift, -self._drift_max), self._drift_max)
        centre = self._centre + drift
        low = self._wall_min + gap / 2
        high = self.screen - self._wall_min - gap / 2
        if centre < low:  # bounce off the edge of the screen
            centre, drift = low, abs(drift)
        elif centre > high:
            centre, drift = high, -abs(drift)
        self._centre, self._drift = centre, drift
        ceiling = math.floor(centre - gap / 2 + 0.5)
        return ceiling, ceiling + gap, 0, 0

    def _generate(self) -> None:
        """Queue the next column, or a block and the columns around it."""
        frame = self._t  # the first queued column enters on this frame
        if self.block_interval is None or frame < self._next_block:
            self._pending.append(self._new_column(frame))
            return
        # A block of `width` columns. The ship (`size` columns wide) shares a column with it from
        # `size - 1` columns before to `size - 1` after, so the free band is measured over those
        # too: the last `size - 1` columns on screen and `size - 1` more queued after the block.
        size, width = self._ship_size, self._block_width
        columns = [self._new_column(frame + i) for i in range(width + size - 1)]
        before = self._cave[:2, self.screen - (size - 1) :]
        top = max(int(before[0].max(initial=0)), max(c[0] for c in columns))
        bottom = min(int(before[1].min(initial=self.screen)), min(c[1] for c in columns))
        free = bottom - top
        height = int(self.np_random.integers(self._block_height[0], self._block_height[1] + 1))
        height = min(height, free - self._passage)
        if height >= self._block_height[0]:
            # Block tops leaving a passage above: [top + passage, bottom - height]; below:
            # [top, bottom - height - passage]. Uniform over the union of the two ranges.
            above = range(top + self._passage, bottom - height + 1)
            below = range(top, bottom - height - self._passage + 1)
            choices = sorted(set(above) | set(below))
            block_top = choices[int(self.np_random.integers(len(choices)))]
            for i in range(width):
                columns[i] = (columns[i][0], columns[i][1], block_top, block_top + height)
        self._pending.extend(columns)
        low, high = self._block_gaps_at(frame)
        self._next_block = frame + int(self.np_random.integers(low, high + 1))

    def _block_gaps_at(self, frame: int) -> tuple[int, int]:
        """Range of frames until the next block, for a block entering on `frame` (see _BLOCK_RAMP)."""
        assert self.block_interval is not None  # only called when the cave has blocks
        progress = min(1.0, max(frame, 0) / _BLOCK_RAMP)
        mean = self.block_interval + (_BLOCK_INTERVAL_LATE - self.block_interval) * progress
        spread = int(round(mean * _BLOCK_INTERVAL_SPREAD))
        mean = int(round(mean))
        return (mean - spread, mean + spread)

    def _draw_column(self, col: int) -> None:
        ceiling, floor, block_top, block_bottom = self._cave[:, col]
        pixels = self._pixels[:, col]
        pixels[:ceiling] = _WALL
        pixels[ceiling:floor] = _BACKGROUND
        pixels[floor:] = _WALL
        if block_bottom > block_top:
            pixels[block_top:block_bottom] = _BLOCK

    def _crash_cause(self, row: int, under: np.ndarray) -> str:
        if (under == _BLOCK).any():
            return "block"
        ceiling = self._cave[0, self._ship_x : self._ship_x + self._ship_size].max()
        return "ceiling" if row < ceiling else "floor"

    def _get_obs(self) -> np.ndarray:
        # A fresh array every call: callers (replay memories) keep the observations they get.
        obs = self._pixels.copy()
        row, x = self.ship_row, self._ship_x
        obs[max(row, 0) : max(row + self._ship_size, 0), x : x + self._ship_size] = _SHIP
        return obs

    def _seen(self, obs: np.ndarray) -> np.ndarray:
        """The observation the agent gets: blanked with probability `flicker`."""
        if self.flicker and self._flicker_rng is not None and self._flicker_rng.random() < self.flicker:
            obs[:] = 0
        return obs

    def _get_info(self) -> dict[str, int | str]:
        # The crash's cause rides on the last step's info, so evaluation can say what the agents
        # die of (keras-rl's loops skip non-numeric info values when they sum them).
        if self._crash is None:
            return {"frames": self._frames}
        return {"frames": self._frames, "crash": self._crash}


_RGB_LUT = np.zeros((256, 3), dtype=np.uint8)
for _level, _rgb in _PALETTE.items():
    _RGB_LUT[_level] = _rgb


# --- Scripted players ---------------------------------------------------------------------------
# The pilot's distances are in ship sizes (4 columns on the native screen); its lead is in frames.
_LOOKAHEAD = 8.0  # columns past the ship that the pilot looks at
_COMMIT = 1.5  # a block closer than this no longer changes the side the pilot passes it on
_SAFE = 1.5  # columns past the ship whose walls always bound the target
_LEAD = 5.0  # frames of velocity extrapolation


def heuristic_action(env: CaveEnv) -> int:
    """Return the action of a scripted pilot that reads the env's state (not its pixels).

    The pilot looks at the columns the ship covers now and the next 8 ship sizes (32 columns,
    i.e. frames, on the native screen) and picks a target row:
    - no block there: the middle of the free band (lowest ceiling row to highest floor row);
    - a block there: the middle of the passage above or below it, measured over the columns the
      ship will share with the block. If only one passage is at least 2 ship sizes high, it takes
      that one. Otherwise, while the block is more than 1.5 ship sizes away, it takes the one with
      the better score (its height minus half the ship's distance to it, so that it keeps to a
      passage once it heads for it); closer, it keeps to the side of the block it is on.
    The target is then clipped so that the ship stays 1/4 of its size clear of the walls of the
    next 1.5 ship sizes of columns. The pilot presses when the ship's centre, extrapolated 5 frames
    at its current velocity, is below the target: a bang-bang controller with a velocity term,
    which brakes before it overshoots. It holds no state of its own: the action is a function of
    the env's state.

    Args:
        env: the unwrapped env (`gymnasium.make(...).unwrapped`); it is read, not changed.

    Returns:
        1 (press) or 0 (release).
    """
    x, size = env.ship_x, env.ship_size
    ahead = slice(x, x + size + int(_LOOKAHEAD * size))
    ceiling, floor = env.ceiling[ahead], env.floor[ahead]
    block_top, block_bottom = env.block_top[ahead], env.block_bottom[ahead]
    centre = env.ship_y + size / 2
    blocked = block_bottom > block_top
    if not blocked.any():
        top, bottom = int(ceiling.max()), int(floor.min())
    else:
        # The first block ahead (it may have begun left of `x`) and the walls over the columns
        # the ship shares with it.
        first = int(np.argmax(blocked))
        rest = blocked[first:]
        last = first + int(np.argmin(rest)) if not rest.all() else len(blocked)  # one past it
        near = slice(max(first - size + 1, 0), last + size - 1)
        top, bottom = int(ceiling[near].max()), int(floor[near].min())
        b_top, b_bottom = int(block_top[first]), int(block_bottom[first])
        above, below = (top, b_top), (b_bottom, bottom)
        fits_above, fits_below = (band[1] - band[0] >= 2 * size for band in (above, below))
        if fits_above != fits_below:
            go_above = fits_above
        elif first < _COMMIT * size:
            go_above = centre < (b_top + b_bottom) / 2
        else:

            def score(band):
                return band[1] - band[0] - abs(centre - (band[0] + band[1]) / 2) / 2

            go_above = score(above) >= score(below)
        top, bottom = above if go_above else below
    # Whatever lies ahead, stay clear of the walls of the next few columns.
    now = slice(0, size + int(_SAFE * size))
    low = int(ceiling[now].max()) + 0.75 * size
    high = int(floor[now].min()) - 0.75 * size
    target = min(max((top + bottom) / 2, low), high) if low <= high else (low + high) / 2
    return int(centre + _LEAD * env.ship_velocity > target)
