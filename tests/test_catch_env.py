"""Catch env: Gymnasium API, seeding, game rules, the perfect player, rendering and argument checks."""

from __future__ import annotations

import importlib
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.catch import _ACTIONS, CatchEnv, catch_rate, perfect_action

LEFT, STAY, RIGHT = 0, 1, 2


def _step_until_end(env: gymnasium.Env, action_fn) -> tuple[bool, bool, dict]:
    while True:
        _, _, terminated, truncated, info = env.step(action_fn())
        if terminated or truncated:
            return terminated, truncated, info


# --- Registration and the Gymnasium API ---------------------------------------------------------
def test_registered_with_time_limit():
    spec = gymnasium.spec("Catch-v0")
    assert spec.entry_point == "envs.catch:CatchEnv"
    assert spec.kwargs == {"size": 8, "interval": 4}
    assert spec.max_episode_steps == 500


def test_importing_twice_neither_fails_nor_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(envs)
    assert "Catch-v0" in gymnasium.registry


@pytest.mark.parametrize("kwargs", [{}, {"size": 16}, {"interval": 1}, {"size": 5, "interval": 9}])
def test_check_env_passes_without_warnings(kwargs):
    # Through gymnasium.make so the env has a spec and check_env also tests every render mode.
    env = gymnasium.make("Catch-v0", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("size", [8, 16])
def test_check_env_on_a_direct_instance(size):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(CatchEnv(size=size), skip_render_check=True)


def test_spaces_and_constants():
    env = CatchEnv(size=16)
    assert _ACTIONS == (-1, 0, 1)
    assert env.action_space == gymnasium.spaces.Discrete(3)
    assert env.observation_space == gymnasium.spaces.Box(0.0, 1.0, (16, 16), np.float32)


# --- Seeding ------------------------------------------------------------------------------------
def _rollout(seed: int, steps: int = 200) -> list:
    env = gymnasium.make("Catch-v0")
    actions = np.random.default_rng(0).integers(3, size=steps)  # the same actions for every seed
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
    return type(a) is type(b) and a == b


def test_same_seed_same_trajectory():
    first, second = _rollout(seed=123), _rollout(seed=123)
    # Random play misses within a few balls, so the 200 steps cross several unseeded resets.
    assert sum(len(item) == 2 for item in first) > 2
    assert _same(first, second)


def test_different_seed_different_trajectory():
    assert not _same(_rollout(seed=123), _rollout(seed=124))


# --- Game rules ---------------------------------------------------------------------------------
def test_starting_state():
    env = CatchEnv(size=8)
    obs, info = env.reset(seed=3)
    assert env.paddle == 4
    assert len(env.balls) == 1 and env.balls[0][0] == 0
    assert info == {"caught": 0, "missed": 0}
    assert obs[7].tolist() == [0, 0, 0, 1, 1, 1, 0, 0]
    assert obs[0].sum() == 1 and obs[1:7].sum() == 0


def test_paddle_stays_on_the_board():
    env = CatchEnv(size=8, interval=100)  # one ball only, so nothing lands for a while
    env.reset(seed=0)
    for _ in range(5):
        env.step(LEFT)
    assert env.paddle == 1
    env.reset(seed=0)
    for _ in range(5):
        env.step(RIGHT)
    assert env.paddle == 6


def test_balls_fall_and_spawn_every_interval():
    env = CatchEnv(size=8, interval=2)
    env.reset(seed=0)
    env.step(STAY)
    assert [row for row, _ in env.balls] == [1]
    env.step(STAY)
    assert [row for row, _ in env.balls] == [2, 0]
    obs, *_ = env.step(STAY)
    assert [row for row, _ in env.balls] == [3, 1]
    assert obs[:7].sum() == 2


def test_catch_gives_plus_one():
    env = CatchEnv(size=8)
    env.reset(seed=5)
    rewards = []
    for _ in range(7):  # the first ball lands on step size - 1
        obs, reward, terminated, truncated, info = env.step(perfect_action(env))
        rewards.append(reward)
    assert rewards == [0.0] * 6 + [1.0]
    assert info == {"caught": 1, "missed": 0}
    assert not terminated and not truncated
    assert [row for row, _ in env.balls] == [3]  # the caught ball is gone, the next one falls on


def test_miss_gives_minus_one_and_terminates():
    env = CatchEnv(size=8)
    env.reset(seed=5)
    ((_, col),) = env.balls
    away = RIGHT if col < 4 else LEFT  # 6 moves to the far edge leave the ball uncovered
    for _ in range(6):
        _, reward, terminated, _, _ = env.step(away)
        assert reward == 0.0 and not terminated
    _, reward, terminated, truncated, info = env.step(away)
    assert reward == -1.0 and terminated and not truncated
    assert info == {"caught": 0, "missed": 1}


def test_info_counts_are_per_episode():
    env = CatchEnv(size=8)
    env.reset(seed=5)
    for _ in range(7):
        env.step(perfect_action(env))
    _, info = env.reset()
    assert info == {"caught": 0, "missed": 0}


@pytest.mark.parametrize("size,interval", [(8, 4), (16, 4), (8, 1), (8, 2), (5, 7)])
def test_each_ball_spawns_within_interval_of_the_previous(size, interval):
    env = CatchEnv(size=size, interval=interval)
    env.reset(seed=1)
    previous = env.balls[-1][1]
    for _ in range(2000):
        _, _, terminated, _, _ = env.step(int(env.np_random.integers(3)))
        if env.balls and env.balls[-1][0] == 0:  # a ball spawned this step
            assert abs(env.balls[-1][1] - previous) <= interval
            previous = env.balls[-1][1]
        if terminated:
            env.reset()
            previous = env.balls[-1][1]


def test_first_ball_covers_every_column():
    env = CatchEnv(size=8)
    columns = {env.reset(seed=seed)[0][0].argmax() for seed in range(200)}
    assert columns == set(range(8))


def test_random_rollout_stays_in_observation_space():
    env = gymnasium.make("Catch-v0")
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    for _ in range(1000):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert obs in env.observation_space and obs.dtype == np.float32
        assert reward in (-1.0, 0.0, 1.0)
        if terminated or truncated:
            obs, _ = env.reset()
            assert obs in env.observation_space


# --- The perfect player -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,episodes",
    [
        ({}, 1000),
        ({"size": 16}, 300),
        ({"interval": 1}, 300),
        ({"interval": 2}, 300),
        ({"size": 5, "interval": 9}, 100),
    ],
)
def test_perfect_player_never_misses(kwargs, episodes):
    env = gymnasium.make("Catch-v0", **kwargs)
    caught = 0
    for episode in range(episodes):
        env.reset(seed=episode)
        terminated, truncated, info = _step_until_end(env, lambda: perfect_action(env.unwrapped))
        assert truncated and not terminated and info["missed"] == 0, (episode, info)
        caught += info["caught"]
    # Balls land every `interval` steps from step size - 1 until the 500-step cap.
    size, interval = kwargs.get("size", 8), kwargs.get("interval", 4)
    assert caught == episodes * ((500 - (size - 1)) // interval + 1)


def test_perfect_action_without_a_ball_stays():
    env = CatchEnv(size=8, interval=50)
    env.reset(seed=0)
    for _ in range(7):
        env.step(perfect_action(env))
    assert env.balls == [] and perfect_action(env) == STAY


def test_catch_rate():
    assert catch_rate(3, 1) == 0.75
    assert catch_rate(5, 0) == 1.0
    assert catch_rate(0, 0) == 0.0
    with pytest.raises(ValueError, match="caught"):
        catch_rate(-1, 0)


# --- Rendering ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size,pixels", [(8, 128), (16, 128), (5, 130)])
def test_render_rgb_array(size, pixels):
    env = gymnasium.make("Catch-v0", size=size, render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    assert before.shape == (pixels, pixels, 3) and before.dtype == np.uint8
    assert len(np.unique(before.reshape(-1, 3), axis=0)) == 3  # background, ball, paddle
    env.step(STAY)
    assert not np.array_equal(before, env.render())


def test_render_ansi():
    env = gymnasium.make("Catch-v0", size=16, render_mode="ansi")
    env.reset(seed=0)
    lines = env.render().split("\n")
    assert len(lines) == 16 and all(len(line) == 16 for line in lines)
    assert lines[-1] == "." * 7 + "===" + "." * 6
    assert "".join(lines[:-1]).count("o") == 1
    assert set("".join(lines)) == {".", "o", "="}


def test_render_without_mode_warns_and_returns_none():
    env = CatchEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


# --- Argument checks ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"size": 3}, "size"),
        ({"size": "8"}, "size"),
        ({"size": 8.0}, "size"),
        ({"size": True}, "size"),
        ({"interval": 0}, "interval"),
        ({"interval": 1.5}, "interval"),
    ],
)
def test_invalid_kwargs_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CatchEnv(**kwargs)
    with pytest.raises(ValueError, match=name):
        gymnasium.make("Catch-v0", **kwargs)


def test_unknown_render_mode_raises():
    # Directly: gymnasium.make warns about an undeclared render mode before the env can raise.
    with pytest.raises(ValueError, match="render_mode"):
        CatchEnv(render_mode="human")


def test_numpy_ints_are_accepted():
    env = CatchEnv(size=np.int64(16), interval=np.int32(2))
    assert (env.size, env.interval) == (16, 2) and type(env.size) is int
    env.reset(seed=0)
    env.step(np.int64(2))
    assert env.paddle == 9


@pytest.mark.parametrize("action", [3, -1, 1.5, "1", None])
def test_invalid_action_raises(action):
    env = CatchEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)
