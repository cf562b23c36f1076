"""Cave env: Gymnasium API, seeding, game rules, scripted players, rendering and argument checks."""

from __future__ import annotations

import importlib
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.cave import CaveEnv, heuristic_action
from harness.run.scripted import random_player as random_action

RELEASE, PRESS = 0, 1
ALIVE, CRASH = 0.01, -1.0
LEVELS = {0, 96, 160, 255}  # background, wall, block, ship


def _episode(env: gymnasium.Env, player, seed: int) -> tuple[int, bool, dict]:
    """Play one episode; return (steps, terminated, last info)."""
    env.reset(seed=seed)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(player())
        steps += 1
        if terminated or truncated:
            return steps, terminated, info


def _ship_hits(env: CaveEnv) -> bool:
    """Whether the ship's square overlaps a wall or block, computed from the state arrays."""
    row, x, size = env.ship_row, env.ship_x, env.ship_size
    cols = slice(x, x + size)
    if row < env.ceiling[cols].max() or row + size > env.floor[cols].min():
        return True
    top, bottom = env.block_top[cols], env.block_bottom[cols]
    return bool(((bottom > top) & (top < row + size) & (row < bottom)).any())


def _expected_obs(env: CaveEnv) -> np.ndarray:
    """The screen drawn from the state arrays, column by column."""
    obs = np.zeros((env.screen, env.screen), dtype=np.uint8)
    for col in range(env.screen):
        obs[: env.ceiling[col], col] = 96
        obs[env.floor[col] :, col] = 96
        obs[env.block_top[col] : env.block_bottom[col], col] = 160
    row, x, size = env.ship_row, env.ship_x, env.ship_size
    obs[max(row, 0) : max(row + size, 0), x : x + size] = 255
    return obs


def _blocks_just_completed(env: CaveEnv) -> list[tuple[slice, int, int]]:
    """Blocks whose last column is `ship_size` columns from the right edge, so that every column
    the ship can share with them is on screen: (shared columns, block top, block bottom)."""
    size, screen = env.ship_size, env.screen
    blocked = env.block_bottom > env.block_top
    last = screen - size
    if not blocked[last] or blocked[last + 1]:
        return []
    first = last
    while first > 0 and blocked[first - 1]:
        first -= 1
    assert first >= size - 1, "the block's columns before it should be on screen too"
    shared = slice(first - size + 1, last + size)
    return [(shared, int(env.block_top[last]), int(env.block_bottom[last]))]


# --- Registration and the Gymnasium API ---------------------------------------------------------
def test_registered_with_time_limit():
    spec = gymnasium.spec("Cave-v0")
    assert spec.entry_point == "envs.cave:CaveEnv"
    assert spec.kwargs == {"screen": 96}
    assert spec.max_episode_steps == 10_000


def test_importing_twice_neither_fails_nor_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(envs)
    assert "Cave-v0" in gymnasium.registry and "Catch-v0" in gymnasium.registry


@pytest.mark.parametrize(
    "kwargs", [{}, {"screen": 32}, {"screen": 64}, {"gap_min": 0.25}, {"block_interval": None}, {"flicker": 0.5}]
)
def test_check_env_passes_without_warnings(kwargs):
    # Through gymnasium.make so the env has a spec and check_env also tests every render mode.
    env = gymnasium.make("Cave-v0", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("screen", [96, 48])
def test_check_env_on_a_direct_instance(screen):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(CaveEnv(screen=screen), skip_render_check=True)


def test_spaces():
    env = CaveEnv()
    assert env.action_space == gymnasium.spaces.Discrete(2)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (96, 96), np.uint8)
    assert CaveEnv(screen=64).observation_space.shape == (64, 64)
    assert env.metadata == {"render_modes": ["rgb_array"], "render_fps": 30}


# --- Seeding ------------------------------------------------------------------------------------
def _rollout(seed: int, steps: int = 400) -> list:
    env = gymnasium.make("Cave-v0")
    actions = np.random.default_rng(0).integers(2, size=steps)  # the same actions for every seed
    trajectory = [env.reset(seed=seed)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(int(action))
        trajectory.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            trajectory.append(env.reset())  # no seed: the env's generator carries on
    return trajectory


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_same_seed_same_trajectory():
    first, second = _rollout(seed=123), _rollout(seed=123)
    # Random play crashes within tens of frames, so the 400 steps cross several unseeded resets.
    assert sum(len(item) == 2 for item in first) > 3
    assert _same(first, second)


def test_different_seed_different_trajectory():
    assert not _same(_rollout(seed=123), _rollout(seed=124))


def test_each_reset_draws_a_new_cave():
    env = CaveEnv()
    first, _ = env.reset(seed=0)
    second, _ = env.reset()
    assert not np.array_equal(first, second)


# --- Game rules ---------------------------------------------------------------------------------
def test_starting_state():
    env = CaveEnv()
    obs, info = env.reset(seed=3)
    assert info == {"frames": 0} and env.frames == 0 and env.crash is None
    assert (env.ship_x, env.ship_size, env.ship_velocity) == (24, 4, 0.0)
    cols = slice(24, 28)
    # Centred in the gap over its columns, which is 60 px high everywhere.
    assert env.ship_y == (env.ceiling[cols].max() + env.floor[cols].min() - 4) / 2
    assert (env.floor - env.ceiling == 60).all()
    assert (env.block_bottom == env.block_top).all()
    assert abs((env.ceiling[-1] + env.floor[-1]) / 2 - 48) <= 1
    assert set(np.unique(obs)) == {0, 96, 255}
    assert (obs == 255).sum() == 16


def test_ship_physics():
    env = CaveEnv()
    env.reset(seed=0)
    y = env.ship_y
    env.step(PRESS)
    assert env.ship_velocity == -0.25 and env.ship_y == y - 0.25
    env.step(RELEASE)
    assert env.ship_velocity == 0.0 and env.ship_y == y - 0.25
    env.step(RELEASE)
    env.step(RELEASE)
    assert env.ship_velocity == 0.5 and env.ship_y == y + 0.5
    speeds = []
    env.reset(seed=0)
    for _ in range(12):
        env.step(PRESS)
        speeds.append(env.ship_velocity)
    assert speeds[7:] == [-2.0] * 5  # clipped at 2 px/frame


@pytest.mark.parametrize("action,wall", [(PRESS, "ceiling"), (RELEASE, "floor")])
def test_holding_or_never_pressing_crashes_into_a_wall(action, wall):
    for seed in range(5):
        env = gymnasium.make("Cave-v0")
        env.reset(seed=seed)
        u = env.unwrapped
        rewards = []
        while True:
            _, reward, terminated, truncated, info = env.step(action)
            rewards.append(reward)
            if terminated or truncated:
                break
        assert terminated and not truncated
        assert rewards[:-1] == [ALIVE] * (len(rewards) - 1) and rewards[-1] == CRASH
        assert info["frames"] == len(rewards) - 1
        assert u.crash == wall and info["crash"] == wall
        cols = slice(u.ship_x, u.ship_x + u.ship_size)
        if wall == "ceiling":
            assert u.ship_row < u.ceiling[cols].max()
        else:
            assert u.ship_row + u.ship_size > u.floor[cols].min()
        assert len(rewards) < 40  # from mid-gap, with a 60 px gap, at up to 2 px/frame


def test_random_rollout_stays_in_observation_space_and_counts_frames():
    env = gymnasium.make("Cave-v0")
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space and info == {"frames": 0}
    steps, episodes = 0, 0
    for _ in range(1000):
        obs, reward, terminated, truncated, info = env.step(random_action(env.unwrapped, rng))
        steps += 1
        assert obs in env.observation_space and obs.dtype == np.uint8
        assert set(np.unique(obs)) <= LEVELS
        # frames: +1 on every step that did not crash; the crashing step does not count.
        if terminated:
            assert reward == CRASH and info == {"frames": steps - 1, "crash": env.unwrapped.crash}
        else:
            assert reward == ALIVE and info == {"frames": steps}
        if terminated or truncated:
            episodes += 1
            obs, info = env.reset()
            steps = 0
            assert obs in env.observation_space and info == {"frames": 0}
    assert episodes >= 5


def _block_seeker(env: CaveEnv) -> int:
    """The pilot until a block is within 12 columns of the ship, then steer for its middle."""
    ahead = slice(env.ship_x, env.ship_x + env.ship_size + 12)
    top, bottom = env.block_top[ahead], env.block_bottom[ahead]
    blocked = bottom > top
    if not blocked.any():
        return heuristic_action(env)
    first = int(np.argmax(blocked))
    target = (top[first] + bottom[first]) / 2
    return int(env.ship_y + env.ship_size / 2 + 5 * env.ship_velocity > target)


def test_crash_exactly_when_the_ship_overlaps_a_wall_or_block():
    env = CaveEnv()
    players = {"ceiling": lambda: PRESS, "floor": lambda: RELEASE, "block": lambda: _block_seeker(env)}
    for seed, (cause, player) in enumerate(3 * list(players.items())):
        env.reset(seed=seed)
        for step in range(1000):
            obs, _, terminated, _, _ = env.step(player())
            assert terminated == _ship_hits(env), (seed, step)
            assert np.array_equal(obs, _expected_obs(env)), (seed, step)
            if terminated:
                break
        assert terminated and env.crash == cause, seed


def test_observation_is_a_fresh_array():
    env = CaveEnv()
    first, _ = env.reset(seed=0)
    kept = first.copy()
    second, *_ = env.step(RELEASE)
    second[:] = 7
    assert np.array_equal(first, kept) and not np.shares_memory(first, second)


def test_state_arrays_are_read_only():
    env = CaveEnv()
    env.reset(seed=0)
    for array in (env.ceiling, env.floor, env.block_top, env.block_bottom):
        with pytest.raises(ValueError):
            array[0] = 0


@pytest.mark.parametrize("screen,gap_min", [(96, 1 / 3), (96, 0.25), (64, 0.4)])
def test_gap_shrinks_to_the_minimum_and_never_below(screen, gap_min):
    # No blocks: the pilot must survive the 2,000 frames the gap takes to reach its minimum.
    env = CaveEnv(screen=screen, gap_min=gap_min, block_interval=None)
    env.reset(seed=2)
    gap_min_px = round(gap_min * screen)
    assert env.gap_min_px == gap_min_px
    wall = max(1, round(4 * screen / 96))
    newest = []
    for t in range(1, 2001):
        _, _, terminated, truncated, _ = env.step(heuristic_action(env))
        assert not terminated, t
        gaps = env.floor - env.ceiling
        assert gaps.min() >= gap_min_px
        assert env.ceiling.min() >= wall and env.floor.max() <= screen - wall
        newest.append(int(gaps[-1]))
    start = int(0.625 * screen)
    expected = [max(gap_min_px, int(start - 0.02 * screen / 96 * t)) for t in range(1, 2001)]
    assert newest == expected
    assert newest[0] > gap_min_px and newest[-1] == gap_min_px


@pytest.mark.parametrize("kwargs", [{}, {"gap_min": 0.25}, {"block_interval": 20}, {"screen": 64}])
def test_blocks_come_after_the_grace_period_inside_the_gap_and_passable(kwargs):
    env = CaveEnv(**kwargs)
    # Intervals between blocks shrink as the game goes on (_BLOCK_RAMP): the widest spacing is the
    # one drawn at the start, the narrowest one drawn by the last frame looked at (1,500).
    low, high = env._block_gaps_at(1500)[0], env._block_gaps_at(0)[1]
    blocks, starts = 0, []
    for seed in range(3):
        env.reset(seed=seed)
        for t in range(1, 1501):
            _, _, terminated, _, _ = env.step(heuristic_action(env))
            blocked = env.block_bottom > env.block_top
            if t < 100:
                assert not blocked.any(), t
            if blocked[-1] and not blocked[-2]:
                starts.append((seed, t))
            # Every block column lies inside the gap.
            assert (env.ceiling[blocked] <= env.block_top[blocked]).all()
            assert (env.block_bottom[blocked] <= env.floor[blocked]).all()
            for shared, top, bottom in _blocks_just_completed(env):
                blocks += 1
                assert 8 * env.screen / 96 - 1 <= bottom - top <= 16 * env.screen / 96 + 1
                above = top - env.ceiling[shared].max()
                below = env.floor[shared].min() - bottom
                assert max(above, below) >= env.passage == 3 * env.ship_size
            if terminated:  # blocks come faster and faster: the pilot meets one it cannot dodge
                break
    assert blocks >= 10
    assert all(t >= 100 for _, t in starts)
    spacings = [b - a for (s, a), (t, b) in zip(starts, starts[1:]) if s == t]
    assert min(spacings) >= low
    if not kwargs:  # the default cave is wide enough that no block is ever left out
        assert max(spacings) <= high


def test_no_blocks_when_block_interval_is_none():
    env = CaveEnv(block_interval=None)
    env.reset(seed=0)
    for _ in range(600):
        env.step(heuristic_action(env))
        assert (env.block_bottom == env.block_top).all()


# --- The scripted players -----------------------------------------------------------------------
def test_heuristic_survives_ten_times_longer_than_random():
    env = gymnasium.make("Cave-v0", max_episode_steps=3000)
    random_frames, heuristic_frames = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        _, _, info = _episode(env, lambda rng=rng: random_action(env.unwrapped, rng), seed)
        random_frames.append(info["frames"])
        _, _, info = _episode(env, lambda: heuristic_action(env.unwrapped), seed)
        heuristic_frames.append(info["frames"])
    assert 10 <= np.mean(random_frames) <= 150  # random play dies quickly
    assert np.mean(heuristic_frames) >= 10 * np.mean(random_frames)
    assert np.mean(heuristic_frames) >= 1000


def test_random_action_uses_the_given_generator():
    env = CaveEnv()
    actions = [random_action(env, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(actions)) == 1 and actions[0] in (0, 1)
    rng = np.random.default_rng(7)
    assert {random_action(env, rng) for _ in range(50)} == {0, 1}


@pytest.mark.parametrize("screen", [32, 64, 192])
def test_other_screens_play_the_same_game(screen):
    env = gymnasium.make("Cave-v0", screen=screen, max_episode_steps=1500, block_interval=None)
    u = env.unwrapped
    assert u.ship_size >= 2 and u.ship_x == screen // 4
    steps, terminated, _ = _episode(env, lambda: heuristic_action(u), 0)
    assert steps == 1500 and not terminated


# --- Rendering ----------------------------------------------------------------------------------
def test_render_rgb_array():
    env = gymnasium.make("Cave-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    before = env.render()
    assert before.shape == (192, 192, 3) and before.dtype == np.uint8
    assert len(np.unique(before.reshape(-1, 3), axis=0)) == 3  # background, walls, ship
    # Each observation pixel becomes a 2 x 2 square of its level's colour.
    small = before[::2, ::2]
    assert np.array_equal(before, np.repeat(np.repeat(small, 2, axis=0), 2, axis=1))
    colours = [np.unique(small[obs == level], axis=0) for level in np.unique(obs)]
    assert all(len(colour) == 1 for colour in colours)
    assert len({tuple(colour[0]) for colour in colours}) == len(colours)
    env.step(RELEASE)
    assert not np.array_equal(before, env.render())


def test_render_without_mode_warns_and_returns_none():
    env = CaveEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


# --- Argument checks ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"screen": 30}, "screen"),
        ({"screen": 97}, "screen"),
        ({"screen": "96"}, "screen"),
        ({"screen": 96.0}, "screen"),
        ({"screen": True}, "screen"),
        ({"gap_min": 0.2}, "gap_min"),
        ({"gap_min": 0.7}, "gap_min"),
        ({"gap_min": "0.3"}, "gap_min"),
        ({"gap_min": True}, "gap_min"),
        ({"gap_min": None}, "gap_min"),
        ({"block_interval": 19}, "block_interval"),
        ({"block_interval": 0}, "block_interval"),
        ({"block_interval": 50.0}, "block_interval"),
        ({"flicker": 1.0}, "flicker"),
        ({"flicker": -0.1}, "flicker"),
        ({"flicker": "0.5"}, "flicker"),
    ],
)
def test_invalid_kwargs_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CaveEnv(**kwargs)
    with pytest.raises(ValueError, match=name):
        gymnasium.make("Cave-v0", **kwargs)


def test_unknown_render_mode_raises():
    # Directly: gymnasium.make warns about an undeclared render mode before the env can raise.
    with pytest.raises(ValueError, match="render_mode"):
        CaveEnv(render_mode="human")


def test_numpy_numbers_are_accepted():
    env = CaveEnv(screen=np.int64(64), gap_min=np.float32(0.4), block_interval=np.int32(30))
    assert (env.screen, env.block_interval) == (64, 30) and type(env.screen) is int
    env.reset(seed=0)
    env.step(np.int64(1))
    assert env.ship_velocity < 0


@pytest.mark.parametrize("action", [2, -1, 1.5, "1", None])
def test_invalid_action_raises(action):
    env = CaveEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


# ---------------------------------------------------------------------------------------------
# Flicker (partial observability, as in flickering Pong)


def _flicker_rollout(flicker: float, seed: int, steps: int = 600):
    env = gymnasium.make("Cave-v0", flicker=flicker)
    obs, _ = env.reset(seed=seed)
    seen, states = [obs], [env.unwrapped._cave.copy()]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(heuristic_action(env.unwrapped))
        seen.append(obs)
        states.append(env.unwrapped._cave.copy())
        if terminated or truncated:
            obs, _ = env.reset()
            seen.append(obs)
            states.append(env.unwrapped._cave.copy())
    return seen, states


def test_flicker_blanks_observations_at_its_rate_and_leaves_the_game_alone():
    plain, plain_states = _flicker_rollout(0.0, seed=5)
    flick, flick_states = _flicker_rollout(0.5, seed=5)
    # The same caves and the same scripted flight: blanking draws from its own stream.
    assert len(plain) == len(flick)
    assert all(np.array_equal(a, b) for a, b in zip(plain_states, flick_states, strict=True))
    blank = [not obs.any() for obs in flick]
    assert not any(not obs.any() for obs in plain)  # the plain game never shows a blank screen
    assert 0.4 < np.mean(blank) < 0.6
    # Every frame that is not blanked is the real one.
    assert all(np.array_equal(a, b) for a, b, hidden in zip(plain, flick, blank, strict=True) if not hidden)
    # Seeded: the same seed blanks the same frames; another seed others.
    again, _ = _flicker_rollout(0.5, seed=5)
    other, _ = _flicker_rollout(0.5, seed=6)
    assert [not o.any() for o in again] == blank
    assert [not o.any() for o in other[: len(blank)]] != blank[: len(other)]


def test_flicker_does_not_change_the_scripted_pilots_score():
    env_plain, env_flick = gymnasium.make("Cave-v0"), gymnasium.make("Cave-v0", flicker=0.5)
    for seed in range(3):
        _, _, plain = _episode(env_plain, lambda: heuristic_action(env_plain.unwrapped), seed)
        _, _, flick = _episode(env_flick, lambda: heuristic_action(env_flick.unwrapped), seed)
        assert plain["frames"] == flick["frames"]
