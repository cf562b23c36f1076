"""Noisy networks (harness.kerasrl.noisy): the layer against a plain Dense oracle, its noise drawn
per call and seeded, the agent's switch (noise while training, mean weights for greedy play, the
target network's noise untouched), and the settings (noisy=true makes training greedy; it needs
the fast path)."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.core.schema import apply_overrides
from harness.kerasrl.agents import build_agent, make_env, new_session
from harness.kerasrl.compat import keras, tf
from harness.kerasrl.noisy import NoisyDense, noisy_layers
from harness.run.play import play
from harness.run.runner import run
from tests.helpers import tiny

X = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)


def _pair(sigma0: float):
    """A NoisyDense model and a plain Dense model holding its mu weights."""
    noisy = keras.Sequential([keras.layers.InputLayer(input_shape=(4,)), NoisyDense(5, "relu", sigma0=sigma0)])
    plain = keras.Sequential([keras.layers.InputLayer(input_shape=(4,)), keras.layers.Dense(5, "relu")])
    layer = noisy.layers[0]
    plain.set_weights([keras.backend.get_value(layer.mu_kernel), keras.backend.get_value(layer.mu_bias)])
    return noisy, plain, layer


def _set_noise(layer, on: bool) -> None:
    tf.compat.v1.keras.backend.get_session().run(tf.compat.v1.assign(layer.noise_scale, 1.0 if on else 0.0))


def test_sigma_zero_is_a_plain_dense_layer():
    new_session(0)
    noisy, plain, _ = _pair(sigma0=0.0)
    np.testing.assert_allclose(noisy.predict_on_batch(X), plain.predict_on_batch(X), rtol=1e-6, atol=1e-7)


def test_noise_is_drawn_per_call_shared_by_the_batch_and_off_gives_the_mean():
    new_session(0)
    noisy, plain, layer = _pair(sigma0=0.5)
    first, second = noisy.predict_on_batch(np.repeat(X[:1], 2, axis=0)), noisy.predict_on_batch(X[:1])
    assert not np.allclose(first[0], second[0])  # a new draw each call
    np.testing.assert_array_equal(first[0], first[1])  # one draw for the whole batch
    _set_noise(layer, False)
    np.testing.assert_allclose(noisy.predict_on_batch(X), plain.predict_on_batch(X), rtol=1e-6, atol=1e-7)
    # The switch is not a weight: saving and copying weights never carry it.
    assert [w.name.split("/")[-1] for w in noisy.weights] == [
        "mu_kernel:0",
        "sigma_kernel:0",
        "mu_bias:0",
        "sigma_bias:0",
    ]


def test_the_noise_is_seeded():
    def draws(seed):
        new_session(seed)
        noisy, _, _ = _pair(sigma0=0.5)
        return [noisy.predict_on_batch(X) for _ in range(3)]

    same = [np.array_equal(a, b) for a, b in zip(draws(3), draws(3), strict=True)]
    other = [np.array_equal(a, b) for a, b in zip(draws(3), draws(4), strict=True)]
    assert all(same) and not any(other)


def _noisy_agent():
    exp = apply_overrides(tiny(load_experiment("catch_dense")), ["noisy=true"])
    new_session(exp.seed)
    env = make_env(exp, seed=exp.seed)
    return build_agent(exp, env), env


def test_agent_acts_with_noise_in_training_and_on_mean_weights_in_greedy_play():
    agent, env = _noisy_agent()
    state = [env.reset()]
    agent.training = True
    assert not np.array_equal(agent.compute_q_values(state), agent.compute_q_values(state))
    agent.training = False
    greedy = agent.compute_q_values(state)
    np.testing.assert_array_equal(greedy, agent.compute_q_values(state))
    # The target network keeps its noise on (it is only used for training targets).
    target = [agent.target_model.predict_on_batch(np.asarray(state)[None]) for _ in range(2)]
    assert not np.array_equal(*target)
    assert len(noisy_layers(agent.model)) == 2  # the hidden layer and the Q head
    env.close()


def test_noisy_setting_makes_training_greedy_unless_told_otherwise():
    exp = load_experiment("catch_dense")
    assert apply_overrides(exp, ["noisy=true"]).policy == "greedy"
    assert apply_overrides(exp, ["noisy=true", "policy=linear_eps"]).policy == "linear_eps"
    with pytest.raises(UserError, match=r"noisy=True needs the fast path"):
        apply_overrides(exp, ["fast_path=false", "noisy=true"])
    with pytest.raises(UserError, match="noisy_sigma0"):
        apply_overrides(exp, ["noisy_sigma0=-1"])


def test_noisy_run_replays_its_evaluation_with_play(tmp_path):
    exp = dataclasses.replace(
        apply_overrides(tiny(load_experiment("catch_dense")), ["noisy=true"]), validation_interval=100
    )
    run_dir = run(exp, tmp_path, log=io.StringIO())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["eval_weights"] == "best_weights.h5"
    assert play(run_dir, stream=io.StringIO())["returns"] == summary["eval"]["returns"]
