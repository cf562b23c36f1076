"""Property-based tests of both games over their keyword arguments and action sequences."""

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (importing the package registers the project's env ids)

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

catch_kwargs = st.fixed_dictionaries({"size": st.integers(5, 20), "interval": st.integers(1, 12)})
cave_kwargs = st.fixed_dictionaries(
    {
        "screen": st.integers(16, 80).map(lambda n: 2 * n),
        "gap_min": st.floats(0.25, 0.625),
        "block_interval": st.one_of(st.none(), st.integers(20, 120)),
    }
)


def _roll(env_id, kwargs, actions, seed, cap):
    env = gymnasium.make(env_id, max_episode_steps=cap, **kwargs)
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    steps, ended = 0, False
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward) and -1.0 <= reward <= 1.0
        if terminated or truncated:
            ended = True
            assert steps <= cap
            obs, info = env.reset()
            assert env.observation_space.contains(obs)
            steps = 0
    return ended


@FUZZ
@given(
    kwargs=catch_kwargs, actions=st.lists(st.integers(0, 2), min_size=1, max_size=300), seed=st.integers(0, 2**31 - 1)
)
def test_catch_observations_stay_in_space_and_episodes_end(kwargs, actions, seed):
    _roll("Catch-v0", kwargs, actions + [0] * 40, seed, cap=60)


@FUZZ
@given(
    kwargs=cave_kwargs, actions=st.lists(st.integers(0, 1), min_size=1, max_size=300), seed=st.integers(0, 2**31 - 1)
)
def test_cave_observations_stay_in_space_and_episodes_end(kwargs, actions, seed):
    _roll("Cave-v0", kwargs, actions + [1] * 120, seed, cap=400)


@FUZZ
@given(
    env_and_action=st.sampled_from([("Catch-v0", 3), ("Cave-v0", 2)]).flatmap(
        lambda pair: st.tuples(
            st.just(pair[0]),
            st.one_of(
                st.integers().filter(lambda a, n=pair[1]: not 0 <= a < n),
                st.floats(allow_nan=True),
                st.text(max_size=3),
                st.none(),
            ),
        )
    )
)
def test_invalid_actions_raise_clear_errors(env_and_action):
    env_id, action = env_and_action
    env = gymnasium.make(env_id, disable_env_checker=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.unwrapped.step(action)


@FUZZ
@given(size=st.one_of(st.integers(max_value=4), st.floats(), st.text(max_size=2), st.booleans()))
def test_invalid_catch_size_names_the_argument(size):
    with pytest.raises(ValueError, match="size"):
        gymnasium.make("Catch-v0", size=size)


@FUZZ
@given(interval=st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=2)))
def test_invalid_catch_interval_names_the_argument(interval):
    with pytest.raises(ValueError, match="interval"):
        gymnasium.make("Catch-v0", interval=interval)


@FUZZ
@given(
    screen=st.one_of(
        st.integers(max_value=31), st.integers(16, 100).map(lambda n: 2 * n + 1), st.floats(), st.text(max_size=2)
    )
)
def test_invalid_cave_screen_names_the_argument(screen):
    with pytest.raises(ValueError, match="screen"):
        gymnasium.make("Cave-v0", screen=screen)


@FUZZ
@given(gap_min=st.one_of(st.floats(max_value=0.2499), st.floats(min_value=0.6251), st.text(max_size=2)))
def test_invalid_cave_gap_names_the_argument(gap_min):
    with pytest.raises(ValueError, match="gap_min"):
        gymnasium.make("Cave-v0", gap_min=gap_min)


@FUZZ
@given(block_interval=st.one_of(st.integers(max_value=19), st.floats(), st.text(max_size=2)))
def test_invalid_cave_block_interval_names_the_argument(block_interval):
    with pytest.raises(ValueError, match="block_interval"):
        gymnasium.make("Cave-v0", block_interval=block_interval)
