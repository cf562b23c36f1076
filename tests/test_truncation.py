"""Time-limit truncation (`bootstrap_truncation`): a cut ends the episode but its target bootstraps.

- RingMemory.batch_at against a plain Python oracle, one-step and n-step, windows 1 and 4, over
  recorded episodes some of which end by a time-limit cut: a cut stops the sum (and sampling
  never crosses it) but its discount is gamma**m and its bootstrap state is the stored final
  observation; a game's terminal still has discount 0.
- The fast agent marks exactly the episodes gymnasium reported as truncated, nothing with the
  setting off; checkpoints keep the marks.
- The setting needs the fast path and is refused by the recurrent agent, in one line.
"""

from __future__ import annotations

import dataclasses

import gymnasium
import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.core.schema import apply_overrides
from harness.kerasrl.adapters import KerasRLEnv
from harness.kerasrl.agents import build_agent, new_session
from harness.kerasrl.memory import RingMemory
from harness.kerasrl.prioritized import PrioritizedRingMemory
from tests.test_fast_path import OBS, _episode_stream
from tests.test_replay import _oracle_window

GAMMA = 0.9
LENGTHS = [6, 2, 9, 1, 12, 4, 3, 1, 8]
CUT = {0, 2, 5, 8}  # episodes (indexes into LENGTHS) that end by a time-limit cut


def _recorded_with_cuts(memory: RingMemory) -> tuple[list[tuple], set[int]]:
    """Feed episodes into `memory`, marking the ends of the CUT episodes; return the stream and
    the stream indexes of the marked transitions."""
    stream, marked, episode = [], set(), 0
    for obs, action, reward, terminal in _episode_stream(np.random.default_rng(5), LENGTHS):
        memory.append(obs, action, reward, terminal)
        if terminal:
            if episode in CUT:
                memory.mark_truncated()
                marked.add(len(stream))
            episode += 1
        stream.append((obs, action, reward, terminal))
    stream += [(np.full(OBS, 251 + k, np.float32), k % 3, 1.0, False) for k in range(3)]
    for obs, action, reward, terminal in stream[-3:]:
        memory.append(obs, action, reward, terminal)
    return stream, marked


def _oracle(stream: list[tuple], marked: set[int], j: int, n: int, newest: int) -> tuple[float, float, int]:
    """(return, discount, bootstrap index): a marked terminal ends the sum and bootstraps."""
    total, m = 0.0, 0
    for k in range(n):
        if j + k >= newest:
            break
        _, _, reward, terminal = stream[j + k]
        total += GAMMA**k * reward
        m += 1
        if terminal:
            return total, (GAMMA**m if j + k in marked else 0.0), j + m
    return total, GAMMA**m, j + m


@pytest.mark.parametrize("memory_class", [RingMemory, PrioritizedRingMemory])
@pytest.mark.parametrize("window_length", [1, 4])
@pytest.mark.parametrize("n_step", [1, 3])
def test_cut_episodes_bootstrap_and_terminals_do_not(memory_class, window_length, n_step):
    memory = memory_class(limit=45, window_length=window_length)  # wraps: 62 appends
    stream, marked = _recorded_with_cuts(memory)
    first = len(stream) - memory.nb_entries
    last = np.arange(window_length, memory.nb_entries - 1)
    last = last[~memory.terminals[memory._physical(last - 1)]]  # sampling never draws an episode's final row
    batch = memory.batch_at(last, GAMMA, n_step)
    newest = len(stream) - 1
    saw = {"cut": 0, "terminal": 0}
    for row, logical in enumerate(last):
        j = first + int(logical)
        expected_return, expected_discount, boot = _oracle(stream, marked, j, n_step, newest)
        assert batch.returns[row] == pytest.approx(expected_return, abs=1e-5)
        assert batch.discounts[row] == pytest.approx(expected_discount, abs=1e-6)
        if expected_discount > 0:
            np.testing.assert_array_equal(batch.bootstrap[row], _oracle_window(stream, boot, window_length))
        ended = [k for k in range(j, boot) if stream[k][3]]
        if ended:
            saw["cut" if ended[0] in marked else "terminal"] += 1
    assert saw["cut"] and saw["terminal"]  # both kinds of episode end fell inside a target


def test_a_mark_needs_a_terminal_and_is_overwritten_with_the_slot():
    memory = RingMemory(limit=4)
    with pytest.raises(ValueError, match="no transition"):
        memory.mark_truncated()
    memory.append(np.ones(OBS), 0, 0.0, False)
    with pytest.raises(ValueError, match="not terminal"):
        memory.mark_truncated()
    memory.append(np.ones(OBS), 0, 0.0, True)
    memory.mark_truncated()
    assert memory.truncations.sum() == 1
    for _ in range(4):  # the ring comes round to the marked slot
        memory.append(np.ones(OBS), 0, 0.0, False)
    assert memory.truncations.sum() == 0


def test_checkpoint_state_keeps_the_marks():
    memory = RingMemory(limit=45, window_length=4)
    _recorded_with_cuts(memory)
    arrays, meta = memory.get_state()
    restored = RingMemory(limit=45, window_length=4)
    restored.set_state({k: v.copy() for k, v in arrays.items()}, meta)
    np.testing.assert_array_equal(restored.truncations, memory.truncations)
    older = {k: v for k, v in arrays.items() if k != "truncations"}  # a checkpoint from before the marks
    restored.set_state(older, meta)
    assert not restored.truncations.any()


def _trained_memory(bootstrap: bool) -> tuple[RingMemory, list[bool]]:
    """Train the fast agent on CartPole capped at 12 steps; return its memory and, per episode,
    whether gymnasium reported it truncated."""
    exp = dataclasses.replace(
        load_experiment("cartpole_dqn"),
        nb_steps=300,
        nb_steps_warmup=50,
        batch_size=16,
        train_interval=1,
        gradient_steps=1,
        memory_limit=1_000,
        bootstrap_truncation=bootstrap,
        seed=0,
    )
    new_session(exp.seed)
    env = KerasRLEnv(gymnasium.make("CartPole-v1", max_episode_steps=12), seed=exp.seed)
    ends: list[bool] = []
    from rl.callbacks import Callback  # after harness.kerasrl.compat has chosen tf-keras

    class Recorder(Callback):
        def on_episode_end(self, episode, logs=None):
            ends.append(env.last_truncated)

    agent = build_agent(exp, env)
    agent.fit(env, nb_steps=exp.nb_steps, callbacks=[Recorder()], verbose=0)
    return agent.memory, ends


@pytest.mark.parametrize("bootstrap", [True, False])
def test_the_agent_marks_the_episodes_gymnasium_cut(bootstrap):
    memory, ends = _trained_memory(bootstrap)
    assert any(ends) and not all(ends)  # both a 12-step cut and a fallen pole happened
    stored = memory.nb_entries
    terminal = memory.terminals[memory._physical(np.arange(stored))]
    marks = memory.truncations[memory._physical(np.arange(stored))]
    # Episodes are stored in order; the last may still be running when fit stops.
    ended = terminal.nonzero()[0]
    cut = np.array(ends[: len(ended)])
    np.testing.assert_array_equal(marks[ended], cut if bootstrap else np.zeros_like(cut))
    assert not marks[~terminal].any()


def test_the_setting_needs_the_fast_path_and_no_recurrent_agent():
    exp = load_experiment("catch_dense")
    with pytest.raises(UserError, match=r"bootstrap_truncation=True needs the fast path") as err:
        apply_overrides(exp, ["fast_path=false", "bootstrap_truncation=true"])
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match=r"bootstrap_truncation=True with recurrent=true") as err:
        apply_overrides(load_experiment("cave_drqn"), ["bootstrap_truncation=true"])
    assert "\n" not in str(err.value)
