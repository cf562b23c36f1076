"""Replay beyond keras-rl: n-step returns (RingMemory.batch_at) and prioritized replay
(harness.kerasrl.prioritized), each against a NumPy oracle.

- n-step: stored returns, bootstrap discounts and bootstrap states equal a plain Python
  computation over recorded episodes with terminals inside the n-step window, for window
  lengths 1 and 4, with the ring wrapped around; n_step=1 is keras-rl's one-step batch.
- Sum tree: prefix-sum search and updates against np.cumsum / np.searchsorted; after many
  partial updates its sums and searches are bit for bit those of a tree built from its leaves.
- Prioritized replay: over 100,000 draws the sampling frequencies match priority**alpha
  (chi-square); the importance-sampling weights match (N P(i))**-beta / max; after a train step
  the stored priorities equal |delta| + eps of that batch and the loss is the weighted mean;
  wrap-around overwrites a slot's priority; only drawable transitions are drawn; a slot drawn
  twice keeps its last priority.
- Settings: both need the fast path (one-line error otherwise); they combine with each other,
  Double DQN, dueling, every loss and optimizer; catch_dense learns with them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.core.schema import apply_overrides
from harness.kerasrl.memory import RingMemory
from harness.kerasrl.prioritized import PrioritizedRingMemory
from harness.kerasrl.sum_tree import SumTree
from harness.run.runner import run
from tests.helpers import tiny
from tests.test_fast_path import OBS, _agents, _episode_stream

GAMMA = 0.9


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _recorded(memory: RingMemory, lengths: list[int], seed: int = 3) -> list[tuple]:
    """Feed keras-rl-style episodes into `memory`; return every appended (obs, action, reward, terminal)."""
    stream = list(_episode_stream(np.random.default_rng(seed), lengths))
    # An unfinished episode at the end (a run stopped mid-episode): its newest transitions have
    # fewer than n stored successors.
    stream += [(np.full(OBS, 251 + k, np.float32), k % 3, 1.0, False) for k in range(3)]
    for obs, action, reward, terminal in stream:
        memory.append(obs, action, reward, terminal)
    return stream


def _oracle_window(stream: list[tuple], newest: int, window_length: int) -> np.ndarray:
    """keras-rl's state ending at stream index `newest`: walk back, stop at an episode's end."""
    frames = [stream[newest][0]]
    for i in range(newest - 1, newest - window_length, -1):
        if stream[i - 1][3]:  # stream[i] is the final observation fit stores after `done`
            break
        frames.insert(0, stream[i][0])
    padding = [np.zeros_like(stream[0][0])] * (window_length - len(frames))
    return np.stack(padding + frames)


def _oracle_nstep(stream: list[tuple], j: int, n: int, newest: int) -> tuple[float, float, int]:
    """(return, discount, bootstrap index) of the transition at stream index j, in plain Python."""
    total, m = 0.0, 0
    for k in range(n):
        if j + k >= newest:  # no next observation stored yet
            break
        _, _, reward, terminal = stream[j + k]
        total += GAMMA**k * reward
        m += 1
        if terminal:
            return total, 0.0, j + m
    return total, GAMMA**m, j + m


@pytest.mark.parametrize("window_length", [1, 4])
@pytest.mark.parametrize("n_step", [2, 3, 5])
def test_n_step_returns_match_a_python_oracle(window_length, n_step):
    lengths = [6, 2, 9, 1, 12, 4, 3, 1, 8]  # terminals inside every n-step window somewhere
    limit = 40  # the ring wraps: 61 appends
    memory = RingMemory(limit=limit, window_length=window_length)
    stream = _recorded(memory, lengths)
    first = len(stream) - memory.nb_entries  # stream index of logical 0
    last = np.arange(window_length, memory.nb_entries - 1)
    batch = memory.batch_at(last, GAMMA, n_step)
    newest = len(stream) - 1
    saw_cut = saw_short = False
    for row, logical in enumerate(last):
        j = first + int(logical)
        expected_return, expected_discount, boot = _oracle_nstep(stream, j, n_step, newest)
        assert batch.returns[row] == pytest.approx(expected_return, abs=1e-5)
        assert batch.discounts[row] == pytest.approx(expected_discount, abs=1e-6)
        assert batch.actions[row] == stream[j][1]
        np.testing.assert_array_equal(batch.state0[row], _oracle_window(stream, j, window_length))
        if expected_discount > 0:
            np.testing.assert_array_equal(batch.bootstrap[row], _oracle_window(stream, boot, window_length))
        saw_cut |= expected_discount == 0 and boot - j < n_step
        saw_short |= expected_discount > 0 and boot - j < n_step
    assert saw_cut and saw_short  # the oracle's two special cases were both exercised
    assert batch.returns.dtype == batch.discounts.dtype == np.float32


def test_one_step_batch_is_keras_rls_transition():
    memory = RingMemory(limit=30, window_length=4)
    _recorded(memory, [6, 2, 9, 1, 12, 4])
    last = np.arange(4, memory.nb_entries - 1)
    last = last[~memory.terminals[memory._physical(last - 1)]]  # the ones sampling does not re-draw
    batch = memory.batch_at(last, GAMMA, 1)
    state0, actions, rewards, state1, terminal1 = memory.sample_arrays(len(last), batch_idxs=list(last))
    for got, want in ((batch.state0, state0), (batch.actions, actions), (batch.bootstrap, state1)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(batch.returns, rewards.astype(np.float32))
    np.testing.assert_array_equal(batch.discounts, np.where(terminal1, 0.0, np.float32(GAMMA)).astype(np.float32))


# ---------------------------------------------------------------------------------------------
# Sum tree and prioritized sampling


@pytest.mark.parametrize("branching", [2, 32])
@pytest.mark.parametrize("size", [1, 5, 64, 1000, 5000])
def test_sum_tree_finds_prefix_sums(size, branching):
    rng = np.random.default_rng(size)
    tree = SumTree(size, branching)
    values = rng.random(size) * (rng.random(size) > 0.3)
    values[0] = 0.5  # at least one non-zero
    tree.set(np.arange(size), values)
    some = np.unique(rng.integers(0, size, 7))  # a later, partial update
    values[some] = 0.25
    tree.set(some, np.full(len(some), 0.25))
    assert tree.total == pytest.approx(values.sum())
    mass = rng.random(500) * values.sum()
    np.testing.assert_array_equal(tree.find(mass), np.searchsorted(np.cumsum(values), mass, side="right"))
    # The edges (where the oracle's own rounding differs from the tree's) land on non-empty leaves.
    edges = np.array([0.0, np.nextafter(tree.total, 0.0)])
    assert np.all(values[tree.find(np.concatenate([mass, edges]))] > 0)


@pytest.mark.parametrize("branching", [2, 32])
def test_sum_tree_after_partial_updates_is_a_tree_built_from_its_leaves(branching):
    rng = np.random.default_rng(branching)
    size = 3000
    tree = SumTree(size, branching)
    for count in [size, 1, 35, 400, 7, 2000, 33, 3]:  # the whole-level and the gathered updates
        leaves = rng.choice(size, count, replace=False)
        tree.set(leaves, rng.random(count) ** 4 * (rng.random(count) > 0.2))
    rebuilt = SumTree(size, branching)
    rebuilt.set(np.arange(size), tree.levels[-1][:size].copy())
    assert tree.total == rebuilt.total
    assert all(np.array_equal(a, b) for a, b in zip(tree.levels, rebuilt.levels, strict=True))
    sums = np.cumsum(tree.levels[-1])
    near_edges = np.concatenate([sums, np.nextafter(sums, 0.0), np.nextafter(sums, np.inf)])
    mass = np.concatenate([rng.random(2000) * tree.total, near_edges[near_edges < tree.total]])
    np.testing.assert_array_equal(tree.find(mass), rebuilt.find(mass))


class _NumpySumTree:
    """The sum tree as NumPy computed it before harness.kerasrl.sum_tree's compiled walks: the oracle
    they must match addition for addition, so that a seed draws what it drew before."""

    def __init__(self, size: int, k: int) -> None:
        sizes, n = [], size
        while True:
            groups = -(-n // k)
            sizes.append(groups * k)
            if groups == 1:
                break
            n = groups
        self.k, self.levels = k, [np.zeros(n) for n in reversed(sizes)]
        self.running = [np.add.accumulate(level.reshape(-1, k), axis=-1).ravel() for level in self.levels]

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        k, index = self.k, np.asarray(leaves)
        self.levels[-1][index] = values
        for depth in range(len(self.levels) - 1, -1, -1):
            index = index // k
            rows = self.running[depth].reshape(-1, k)
            rows[index] = sums = np.add.accumulate(self.levels[depth].reshape(-1, k)[index], axis=-1)
            if depth:
                self.levels[depth - 1][index] = sums[:, -1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        mass, index = np.array(mass, dtype=np.float64), np.zeros(len(mass), dtype=np.int64)
        for running, level in zip(self.running, self.levels, strict=True):
            past = running.reshape(-1, self.k)[index] > mass[:, None]
            past[:, -1] = True
            index = index * self.k + past.argmax(axis=1)
            mass -= running[index] - level[index]
        return index


@pytest.mark.parametrize("branching", [2, 32])
def test_sum_tree_matches_the_numpy_oracle_bit_for_bit(branching):
    rng = np.random.default_rng(7 + branching)
    size = 50_000
    tree, oracle = SumTree(size, branching), _NumpySumTree(size, branching)
    for count in [size, 35, 1, 33, 4096, 35, 2]:
        leaves = rng.choice(size, count, replace=False)
        values = rng.random(count) ** 3 * (rng.random(count) > 0.1)
        tree.set(leaves, values)
        oracle.set(leaves, values)
        assert all(np.array_equal(a, b) for a, b in zip(tree.levels, oracle.levels, strict=True))
        total = oracle.running[0][-1]
        assert tree.total == total
        sums = np.cumsum(oracle.levels[-1])
        near = np.concatenate([sums[:2000], np.nextafter(sums[:2000], 0.0), rng.random(500) * total])
        mass = np.minimum(near, np.nextafter(total, 0.0))
        np.testing.assert_array_equal(tree.find(mass), oracle.find(mass))


def test_numba_loads_only_with_a_sum_tree():
    """The fast path without prioritized replay never imports Numba (80 MB of RSS, 120 with the walks)."""
    code = (
        "import sys, harness.kerasrl.fast, harness.kerasrl.prioritized; before = 'numba' in sys.modules; "
        "from harness.kerasrl.sum_tree import SumTree; SumTree(10); print(before, 'numba' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


def _prioritized(limit=64, window_length=1, alpha=0.6, seed=0) -> tuple[PrioritizedRingMemory, list]:
    memory = PrioritizedRingMemory(limit=limit, window_length=window_length, alpha=alpha, beta0=0.4, seed=seed)
    stream = _recorded(memory, [6, 2, 9, 1, 12, 4, 3, 8, 5, 2, 7])
    return memory, stream


def _drawable_slots(memory: PrioritizedRingMemory) -> np.ndarray:
    """The slots keras-rl's SequentialMemory could draw: state0 ending at logical j in
    [window_length, nb_entries - 2] that is not an episode's terminal observation."""
    logical = np.arange(memory.window_length, memory.nb_entries - 1)
    logical = logical[~memory.terminals[memory._physical(logical - 1)]]
    return memory._physical(logical)


def test_only_drawable_transitions_have_priority():
    memory, _ = _prioritized(limit=40, window_length=4)  # 70 appends: wrapped
    drawable = _drawable_slots(memory)
    assert memory.drawable == len(drawable)
    assert set(np.flatnonzero(memory.priorities)) == set(drawable.tolist())
    assert set(memory.sample_slots(2000).tolist()) <= set(drawable.tolist())


def test_sampling_frequencies_match_priorities():
    memory, _ = _prioritized(limit=64, alpha=0.7)
    slots = _drawable_slots(memory)
    rng = np.random.default_rng(1)
    memory.update_priorities(slots, rng.uniform(0.05, 3.0, len(slots)))
    draws = np.concatenate([memory.sample_slots(32) for _ in range(100_000 // 32 + 1)])[:100_000]
    counts = np.bincount(draws, minlength=memory.limit)[slots]
    expected_p = memory.priorities[slots] ** 0.7
    expected = expected_p / expected_p.sum() * len(draws)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = len(slots) - 1
    # The 0.1% critical value of chi-square with `dof` degrees of freedom (Wilson-Hilferty); a
    # sampler off by a few percent on one priority exceeds it by far at 100,000 draws.
    critical = dof * (1 - 2 / (9 * dof) + 3.09 * np.sqrt(2 / (9 * dof))) ** 3
    assert chi2 < critical, (chi2, critical)
    assert counts.sum() == len(draws)  # nothing outside the drawable slots


def test_importance_weights_match_the_formula():
    memory, _ = _prioritized()
    slots = _drawable_slots(memory)
    memory.update_priorities(slots, np.linspace(0.1, 2.0, len(slots)))
    drawn = memory.sample_slots(16)
    beta = memory.beta(0)
    assert beta == pytest.approx(0.4)
    p = memory.priorities**0.6
    probability = p[drawn] / p.sum()
    raw = (len(slots) * probability) ** -beta
    np.testing.assert_allclose(memory.importance_weights(drawn, beta), raw / raw.max(), rtol=1e-6)
    memory.beta_steps, memory.step_offset = 1000, 200
    assert memory.beta(300) == pytest.approx(0.4 + 0.6 * 0.5) and memory.beta(5000) == 1.0


def test_a_slot_drawn_twice_keeps_its_last_priority():
    memory, _ = _prioritized()
    first, second = _drawable_slots(memory)[:2]
    memory.update_priorities(np.array([first, second, first]), np.array([1.0, 2.0, -4.0]))
    assert memory.priorities[first] == 4.0 + 1e-6 and memory.priorities[second] == 2.0 + 1e-6
    memory.sample_slots(4)  # the tree takes the pending priorities
    assert memory.tree.get(np.array([first]))[0] == (4.0 + 1e-6) ** 0.6


def test_a_negative_alpha_is_refused():
    with pytest.raises(ValueError, match="alpha must be a number >= 0"):
        PrioritizedRingMemory(limit=8, alpha=-0.5)


def test_new_transitions_enter_at_the_maximum_priority_and_wraparound_overwrites():
    memory = PrioritizedRingMemory(limit=8, window_length=1, seed=0)
    obs = np.ones(OBS, np.float32)
    for k in range(5):
        memory.append(obs * k, 0, 1.0, False)
    slots = _drawable_slots(memory)
    memory.update_priorities(slots, np.full(len(slots), 5.0))  # max priority now 5 + eps
    memory.append(obs, 0, 1.0, False)  # slot 4 gets its next observation: enters at the max
    assert memory.priorities[4] == pytest.approx(5.0 + 1e-6)
    memory.update_priorities(np.array([2]), np.array([9.0]))
    for _ in range(4):  # fill and wrap: slot 0 and 1 are overwritten
        memory.append(obs, 1, 0.0, False)
    assert memory._next == 2 and memory.nb_entries == 8
    assert memory.priorities[1] == 0  # the newest: no next observation yet
    assert memory.priorities[0] == pytest.approx(9.0 + 1e-6)  # entered at the new maximum
    assert memory.priorities[2] == 0  # now logical 0 (< window_length): not drawable
    memory.append(obs, 1, 0.0, False)  # overwrites slot 2 (the old priority 9 is gone)
    assert memory.priorities[2] == 0 and memory.priorities[1] == pytest.approx(9.0 + 1e-6)
    assert memory.drawable == len(_drawable_slots(memory))


def _fast_agent_with(memory):
    from harness.kerasrl.compat import EpsGreedyQPolicy
    from harness.kerasrl.fast import FastDQNAgent
    from harness.kerasrl.models import dense
    from harness.kerasrl.optimizers import make_optimizer

    agent = FastDQNAgent(
        model=dense((1, *OBS), 3, hidden=[16]),
        nb_actions=3,
        memory=memory,
        policy=EpsGreedyQPolicy(0.1),
        gamma=GAMMA,
        batch_size=16,
        nb_steps_warmup=10,
        target_model_update=100,
        delta_clip=1.0,
        enable_double_dqn=True,
        n_step=3,
    )
    agent.compile(make_optimizer("adam", 1e-2), metrics=["mae"])
    return agent


def test_train_step_stores_td_errors_as_priorities_and_weights_the_loss():
    from harness.kerasrl.agents import new_session

    new_session(0)
    memory, _ = _prioritized(limit=200)
    agent = _fast_agent_with(memory)
    slots = _drawable_slots(memory)
    memory.update_priorities(slots, np.random.default_rng(2).uniform(0.1, 2.0, len(slots)))
    batch = memory.sample_batch(16, GAMMA, n_step=3, step=0)
    assert batch.weights is not None and batch.weights.min() < 1.0 == batch.weights.max()
    # The oracle, from the weights before the step: Double DQN n-step targets and Huber(1).
    online = agent.model.predict_on_batch(batch.state0)
    target_next = agent.target_model.predict_on_batch(batch.bootstrap)
    best = agent.model.predict_on_batch(batch.bootstrap).argmax(axis=1)
    targets = batch.returns + batch.discounts * target_next[np.arange(16), best]
    delta = targets - online[np.arange(16), batch.actions]
    huber = np.where(np.abs(delta) < 1.0, 0.5 * delta**2, np.abs(delta) - 0.5)
    metrics = agent.train_on_batch(batch)
    assert metrics[0] == pytest.approx(float(np.mean(batch.weights * huber)), rel=1e-5)
    # The last write of a slot drawn twice is the one kept (as numpy's assignment keeps it).
    last_of = {int(slot): k for k, slot in enumerate(batch.slots)}
    for slot, k in last_of.items():
        assert memory.priorities[slot] == pytest.approx(abs(delta[k]) + 1e-6, rel=1e-5)
    assert memory.max_priority >= max(abs(delta)) + 1e-6


def test_uniform_fast_path_trains_without_weights():
    stock, fast = _agents(True)  # the existing oracle agents: a RingMemory, n_step 1
    assert not fast.prioritized and fast.n_step == 1
    assert not any("is_weight" in t.name for t in fast.train_graph["feeds"])


# ---------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize("setting", ["n_step=3", "prioritized_replay=true"])
def test_stock_path_refuses_replay_settings(setting):
    exp = load_experiment("catch_dense")
    with pytest.raises(UserError, match=r"needs the fast path \(fast_path=true\)"):
        apply_overrides(exp, ["fast_path=false", setting])


@pytest.mark.parametrize(
    "setting, allowed",
    [("n_step=0", "positive integer"), ("per_beta0=1.5", "[0, 1]"), ("per_eps=0", "> 0"), ("per_alpha=-1", ">= 0")],
)
def test_bad_replay_settings_are_one_line_errors(setting, allowed):
    with pytest.raises(UserError, match=setting.split("=")[0]) as err:
        apply_overrides(load_experiment("catch_dense"), [setting])
    assert allowed in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"n_step": 3, "prioritized_replay": True},
        {"n_step": 2, "prioritized_replay": True, "enable_dueling_network": True, "loss": "mse", "optimizer": "graves"},
        {"prioritized_replay": True, "enable_double_dqn": False, "optimizer": "rmsprop", "target_model_update": 0.01},
        {"n_step": 4, "window_length": 2, "memory_interval": 2, "action_repetition": 2, "optimizer": "graves_nature"},
    ],
)
def test_replay_settings_combine(tmp_path, changes):
    exp = tiny(load_experiment("catch_dense"), **changes)
    summary = _summary(run(exp, tmp_path, log=io.StringIO()))
    assert summary["steps"] == exp.nb_steps and summary["eval"]["score"] is not None


@pytest.mark.slow
def test_catch_dense_learns_with_n_step_and_prioritized_replay(tmp_path):
    exp = dataclasses.replace(
        load_experiment("catch_dense"), n_step=3, prioritized_replay=True, nb_steps=6000, nb_steps_warmup=300
    )
    summary = _summary(run(exp, tmp_path, log=io.StringIO()))
    assert summary["eval"]["score"] >= 0.9, summary["eval"]
