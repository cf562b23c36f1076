"""Distributional C51 (harness.kerasrl.distributional) against NumPy oracles: the categorical
projection (atoms pushed outside [v_min, v_max], terminal transitions, returns landing exactly on
an atom), the head's Q values as the distributions' means, one train step's cross-entropy with
Double DQN and n-step targets, prioritized replay's priorities; the settings' checks; and every
component together in one run that `play` replays."""

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
from harness.kerasrl.distributional import categorical_head, logits_model, project, support
from harness.kerasrl.prioritized import PrioritizedRingMemory
from harness.run.play import play
from harness.run.runner import run
from tests.helpers import tiny
from tests.test_replay import _drawable_slots

V_MIN, V_MAX = -2.0, 3.0


def _oracle_projection(returns, discounts, probabilities, v_min, v_max):
    """Bellemare et al. (2017), Algorithm 1, one sample and one atom at a time."""
    batch, atoms = probabilities.shape
    z = np.linspace(v_min, v_max, atoms)
    delta = (v_max - v_min) / (atoms - 1)
    out = np.zeros((batch, atoms))
    for i in range(batch):
        for j in range(atoms):
            moved = min(max(returns[i] + discounts[i] * z[j], v_min), v_max)
            b = (moved - v_min) / delta
            low, up = int(np.floor(b)), int(np.ceil(b))
            if low == up:
                out[i, low] += probabilities[i, j]
            else:
                out[i, low] += probabilities[i, j] * (up - b)
                out[i, up] += probabilities[i, j] * (b - low)
    return out


@pytest.mark.parametrize("atoms", [2, 11, 51])
def test_projection_matches_the_papers_algorithm(atoms):
    rng = np.random.default_rng(atoms)
    batch = 64
    # Returns far outside the support, discounts of a terminal (0), one step and n steps.
    returns = rng.uniform(-6.0, 7.0, batch).astype(np.float32)
    discounts = rng.choice([0.0, 0.99, 0.99**3], batch).astype(np.float32)
    # Exactly on an atom: a terminal transition whose return is a support value.
    returns[:4], discounts[:4] = support(V_MIN, V_MAX, atoms)[[0, atoms // 2, -1, 1]], 0.0
    probabilities = rng.dirichlet(np.ones(atoms), batch).astype(np.float32)
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        got = session.run(
            project(tf.constant(returns), tf.constant(discounts), tf.constant(probabilities), V_MIN, V_MAX)
        )
    want = _oracle_projection(returns, discounts, probabilities, V_MIN, V_MAX)
    np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)  # still distributions
    for k, atom in enumerate([0, atoms // 2, atoms - 1, 1]):
        assert got[k, atom] == pytest.approx(1.0, abs=1e-6)  # a terminal on an atom: all mass there


def _c51_agent(changes=()):
    exp = apply_overrides(
        tiny(load_experiment("catch_dense")),
        ["distributional=true", f"v_min={V_MIN}", f"v_max={V_MAX}", "atoms=11", *changes],
    )
    new_session(exp.seed)
    env = make_env(exp, seed=exp.seed)
    return exp, build_agent(exp, env), env


def test_q_values_are_the_distributions_means():
    _, agent, env = _c51_agent()
    states = np.random.default_rng(0).integers(0, 2, (5, 1, 8, 8)).astype(np.float32)
    head = categorical_head(agent.model)
    logits = logits_model(agent.model).predict_on_batch(states).reshape(5, 2 + 1, 11)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(
        agent.compute_batch_q_values(states), (p * support(head.v_min, head.v_max, 11)).sum(-1), rtol=1e-5, atol=1e-6
    )
    env.close()


def test_train_step_is_the_cross_entropy_of_the_projected_double_dqn_target():
    exp, agent, env = _c51_agent(["n_step=3", "prioritized_replay=true", "gamma=0.9"])
    memory = agent.memory
    assert isinstance(memory, PrioritizedRingMemory)
    rng = np.random.default_rng(1)
    for _ in range(300):  # catch-like frames, rewards in {-1, 0, 1}
        memory.append(
            rng.integers(0, 2, (8, 8)).astype(np.float32),
            int(rng.integers(3)),
            float(rng.integers(-1, 2)),
            rng.random() < 0.05,
        )
    slots = _drawable_slots(memory)
    memory.update_priorities(slots, rng.uniform(0.1, 2.0, len(slots)))
    batch = memory.sample_batch(exp.batch_size, exp.gamma, n_step=3, step=0)
    z = support(V_MIN, V_MAX, 11)

    def probabilities(model, states):
        logits = logits_model(model).predict_on_batch(states).reshape(len(states), 3, 11)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        return p / p.sum(-1, keepdims=True)

    rows = np.arange(exp.batch_size)
    best = (probabilities(agent.model, batch.bootstrap) * z).sum(-1).argmax(1)  # Double DQN: online argmax
    next_p = probabilities(agent.target_model, batch.bootstrap)[rows, best]
    projected = _oracle_projection(batch.returns, batch.discounts, next_p, V_MIN, V_MAX)
    p0 = probabilities(agent.model, batch.state0)[rows, batch.actions]
    cross_entropy = -(projected * np.log(p0)).sum(-1)
    agent.training = True
    loss = agent.train_on_batch(batch)[0]
    assert loss == pytest.approx(float(np.mean(batch.weights * cross_entropy)), rel=1e-4)
    last = {int(s): k for k, s in enumerate(batch.slots)}
    for slot, k in last.items():  # the priority is the cross-entropy
        assert memory.priorities[slot] == pytest.approx(cross_entropy[k] + exp.per_eps, rel=1e-4)
    env.close()


@pytest.mark.parametrize(
    "changes, fragment",
    [
        (["v_min=3", "v_max=3"], "expected v_min < v_max"),
        (["loss=mse"], "does not apply with distributional=true"),
        (["atoms=1"], "atoms=1 is not allowed"),
        (["fast_path=false"], "needs the fast path"),
    ],
)
def test_bad_distributional_settings_are_one_line_errors(changes, fragment):
    with pytest.raises(UserError, match=fragment) as err:
        apply_overrides(load_experiment("catch_dense"), ["distributional=true", *changes])
    assert "\n" not in str(err.value)


def test_every_component_together_runs_and_play_replays_it(tmp_path):
    exp = apply_overrides(
        dataclasses.replace(tiny(load_experiment("catch_dense")), validation_interval=100),
        [
            "distributional=true",
            "v_min=-2",
            "v_max=3",
            "noisy=true",
            "prioritized_replay=true",
            "n_step=3",
            "enable_dueling_network=true",
        ],
    )
    assert exp.policy == "greedy"
    run_dir = run(exp, tmp_path, log=io.StringIO())
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite([v for v in metrics["mean_q"] if v is not None]).all()
    assert play(run_dir, stream=io.StringIO())["returns"] == summary["eval"]["returns"]


@pytest.mark.parametrize("dueling_type", ["avg", "max", "naive"])
def test_dueling_atoms_combine_value_and_advantage_per_atom(dueling_type):
    _, agent, env = _c51_agent(["enable_dueling_network=true", f"dueling_type={dueling_type}"])
    head = agent.model.get_layer("atom_logits")
    assert type(head).__name__ == "DuelingAtoms" and not agent.enable_dueling_network  # keras-rl's head is not added
    features_model = keras.Model(agent.model.inputs, agent.model.layers[-3].output)
    states = np.random.default_rng(0).integers(0, 2, (4, 1, 8, 8)).astype(np.float32)
    features = features_model.predict_on_batch(states)
    (wv, bv), (wa, ba) = head.value.get_weights(), head.advantage.get_weights()
    value = (features @ wv + bv)[:, None, :]
    advantage = (features @ wa + ba).reshape(4, 3, 11)
    shift = {"avg": advantage.mean(1, keepdims=True), "max": advantage.max(1, keepdims=True), "naive": 0.0}
    want = (value + advantage - shift[dueling_type]).reshape(4, 33)
    np.testing.assert_allclose(logits_model(agent.model).predict_on_batch(states), want, rtol=1e-5, atol=1e-5)
    env.close()
