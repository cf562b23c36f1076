"""Stable-Baselines3's update schedule as settings: `gradient_steps` (bursts of batches) and
`max_grad_norm` (global-norm gradient clipping), and PyTorch's initialisation of dense layers
(`network_kwargs={"init": "torch"}`).

- A burst of k batches is k single train steps on the same draws, one after another (exact
  weights), and `backward` reports their mean loss.
- Clipping to a tiny norm all but stops an update that is large without it; the optimizer
  carries the norm; bad values are one-line errors naming what is allowed.
- `init="torch"` draws every dense layer's weights and biases from U(+-1/sqrt(fan_in)), as
  PyTorch's nn.Linear does; the saved architecture rebuilds with the same initializers.
"""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.core.schema import apply_overrides
from harness.kerasrl.agents import new_session
from harness.kerasrl.memory import RingMemory
from harness.run.runner import run
from tests.helpers import tiny
from tests.test_fast_path import OBS, _episode_stream


def _agent(gradient_steps: int = 1, max_grad_norm: float | None = None, fresh_session: bool = True):
    from harness.kerasrl.compat import EpsGreedyQPolicy
    from harness.kerasrl.fast import FastDQNAgent
    from harness.kerasrl.models import dense
    from harness.kerasrl.optimizers import make_optimizer

    if fresh_session:
        new_session(0)
    memory = RingMemory(limit=200)
    for obs, action, reward, terminal in _episode_stream(np.random.default_rng(1), [7, 12, 5, 9, 20]):
        memory.append(obs, action, reward, terminal)
    agent = FastDQNAgent(
        model=dense((1, *OBS), 3, hidden=[16]),
        nb_actions=3,
        memory=memory,
        policy=EpsGreedyQPolicy(0.1),
        gamma=0.9,
        batch_size=16,
        nb_steps_warmup=0,
        target_model_update=100,
        delta_clip=1.0,
        gradient_steps=gradient_steps,
    )
    agent.compile(make_optimizer("rmsprop", 1e-2, max_grad_norm), metrics=["mae"])
    return agent


def test_a_burst_is_that_many_train_steps_in_a_row():
    burst = _agent(gradient_steps=3)
    single = _agent(gradient_steps=1, fresh_session=False)  # the same session, so both can train
    single.model.set_weights(burst.model.get_weights())
    single.target_model.set_weights(burst.target_model.get_weights())
    random.seed(11)
    burst_metrics = burst._train_burst()
    random.seed(11)
    singles = [single.train_on_batch(single.sample_batch()) for _ in range(3)]
    for ours, theirs in zip(burst.model.get_weights(), single.model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert burst_metrics[0] == pytest.approx(np.mean([m[0] for m in singles]), rel=1e-6)


def test_clipping_the_global_norm_shrinks_the_update():
    changes = []
    for norm in (None, 1e-9):
        agent = _agent(max_grad_norm=norm)
        before = agent.model.get_weights()
        random.seed(3)
        agent.train_on_batch(agent.sample_batch())
        after = agent.model.get_weights()
        changes.append(max(float(np.abs(a - b).max()) for a, b in zip(after, before, strict=True)))
    free, clipped = changes
    assert free > 1e-3 and clipped < free / 100, changes


def test_the_optimizer_carries_the_norm_and_bad_values_are_one_line_errors():
    from harness.kerasrl.optimizers import make_optimizer

    assert make_optimizer("adam", None, 10.0).global_clipnorm == 10.0
    assert make_optimizer("graves", None, None).global_clipnorm is None
    exp = load_experiment("catch_dense")
    for setting, allowed in (
        ("max_grad_norm=0", "> 0 or None"),
        ("gradient_steps=0", "positive integer"),
        ("optimizer_epsilon=-1e-4", "> 0 or None"),
    ):
        with pytest.raises(UserError, match=setting.split("=")[0]) as err:
            apply_overrides(exp, [setting])
        assert allowed in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"gradient_steps=4 needs the fast path"):
        apply_overrides(exp, ["fast_path=false", "gradient_steps=4"])


def test_a_run_with_bursts_and_clipping_trains_and_logs(tmp_path):
    exp = tiny(load_experiment("cartpole_dqn"), gradient_steps=4, train_interval=8, max_grad_norm=10.0)
    run_dir = run(exp, tmp_path, log=io.StringIO())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == exp.nb_steps
    config = json.loads((run_dir / "config.json").read_text())["experiment"]
    assert config["gradient_steps"] == 4 and config["max_grad_norm"] == 10.0


def _layer_bounds(model):
    """Per dense layer: (fan_in, largest |weight|, largest |bias|)."""
    bounds = []
    for layer in model.layers:
        if layer.__class__.__name__ == "Dense":
            weights, biases = layer.get_weights()
            bounds.append((weights.shape[0], float(np.abs(weights).max()), float(np.abs(biases).max())))
    return bounds


def test_torch_init_draws_weights_and_biases_within_one_over_root_fan_in():
    from harness.kerasrl.compat import keras
    from harness.kerasrl.models import build_network

    new_session(0)
    model = build_network("dense", (1, 2), 3, {"hidden": [256, 256], "init": "torch"})
    bounds = _layer_bounds(model)
    assert [fan_in for fan_in, _, _ in bounds] == [2, 256, 256]
    for fan_in, weight, bias in bounds:
        # 512+ draws of U(+-b) come within 2% of b; Glorot's bound for (2 -> 256) is 0.152, not 0.707.
        assert 0.98 * fan_in**-0.5 < weight <= fan_in**-0.5
        assert 0.0 < bias <= fan_in**-0.5
    assert bounds[0][2] > 0.9 * 2**-0.5  # the largest of 256 first-layer biases
    rebuilt = keras.models.model_from_json(model.to_json())
    assert [fan_in for fan_in, _, _ in _layer_bounds(rebuilt)] == [2, 256, 256]
    assert rebuilt.layers[1].get_config()["bias_initializer"]["class_name"] == "RandomUniform"

    glorot = _layer_bounds(build_network("dense", (1, 2), 3, {"hidden": [256, 256]}))
    assert glorot[0][1] <= (6 / 258) ** 0.5 and glorot[0][2] == 0.0


def test_an_unknown_init_is_a_one_line_error():
    from harness.kerasrl.models import build_network

    new_session(0)
    with pytest.raises(UserError, match=r"init='he' is unknown; expected one of glorot, torch"):
        build_network("dense", (1, 2), 3, {"hidden": [8], "init": "he"})
