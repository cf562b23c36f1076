"""The recurrent agent (harness.kerasrl.recurrent) and sequence replay (harness.kerasrl.sequence_memory):
the LSTM state is zero at every episode start and carried within an episode, a replayed sequence
never crosses an episode start, burn-in steps carry no gradient, a train step's loss matches a
NumPy oracle, same seed gives the same run, `play` replays the run's evaluation, the settings'
errors, and cave_drqn through the command line."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.core.schema import Experiment, apply_overrides
from harness.kerasrl.agents import build_agent, make_env, new_session
from harness.kerasrl.callbacks import play_greedy
from harness.kerasrl.compat import Callback, backend, tf
from harness.kerasrl.fast import _make_callable
from harness.kerasrl.recurrent import ENCODER, HEAD, LSTM, Memoryless, loss_of
from harness.kerasrl.sequence_memory import SequenceMemory
from harness.run.play import play
from harness.run.runner import run
from tests.helpers import cli, tiny

CATCH_DRQN = Experiment(
    env_id="Catch-v0",
    network="dense",
    network_kwargs={"hidden": [16]},
    recurrent=True,
    lstm_units=8,
    sequence_length=3,
    burn_in=2,
    n_step=2,
    nb_steps=160,
    nb_steps_warmup=60,
    memory_limit=1_000,
    batch_size=4,
    optimizer="adam",
    learning_rate=1e-3,
    eval_episodes=3,
    checkpoint_interval=100,
    eps_anneal_steps=200,
    name="catch_drqn",
)


def _agent(exp: Experiment = CATCH_DRQN, fit_steps: int = 0):
    new_session(exp.seed)
    env = make_env(exp, seed=exp.seed)
    agent = build_agent(exp, env)
    if fit_steps:
        agent.fit(env, nb_steps=fit_steps, verbose=0)
    return agent, env


def _episode_observations(env, steps: int) -> list[np.ndarray]:
    observations = [env.reset()]
    for _ in range(steps - 1):
        observation, _, done, _ = env.step(1)
        observations.append(observation)
        if done:
            break
    return observations


# --- acting: the hidden state ----------------------------------------------------------------


def test_the_state_is_carried_within_an_episode_and_zero_at_its_start():
    agent, env = _agent()
    observations = _episode_observations(env, 5)
    agent.reset_states()
    stepped = [agent.compute_q_values([obs]) for obs in observations]
    # The Keras model runs each prefix of the episode from a zero state with the stock LSTM layer.
    for t, q_values in enumerate(stepped):
        prefix = np.array(observations[: t + 1], dtype=np.float32)[None, :, None]
        np.testing.assert_allclose(q_values, agent.model.predict_on_batch(prefix)[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(stepped[0], stepped[-1])  # the carried state changes the values
    carried = agent.compute_q_values([observations[0]])  # the state after the whole prefix
    agent.reset_states()
    assert all(np.all(part == 0) for part in agent.acting_state)
    np.testing.assert_array_equal(agent.compute_q_values([observations[0]]), stepped[0])
    assert not np.allclose(carried, stepped[0])


class _StateAtEpisodeStart(Callback):
    def __init__(self, agent):
        super().__init__()
        self.agent, self.first_states = agent, []

    def on_step_begin(self, step, logs=None):
        if step == 0:  # the episode's step counter: its first step
            self.first_states.append(self.agent.acting_state)


def test_every_episode_of_test_and_fit_starts_from_zero_and_validation_keeps_the_training_state():
    agent, env = _agent()
    watcher = _StateAtEpisodeStart(agent)
    agent.fit(env, nb_steps=80, verbose=0, callbacks=[watcher])
    agent.test(env, nb_episodes=3, visualize=False, verbose=0, callbacks=[watcher])
    assert len(watcher.first_states) >= 4
    assert all(np.all(h == 0) and np.all(c == 0) for h, c in watcher.first_states)
    # play_greedy (validation) plays what test plays and hands the interrupted episode's state back.
    agent.compute_q_values([env.reset()])
    held = agent.acting_state
    assert not np.all(held[0] == 0)
    greedy = play_greedy(agent, make_env(CATCH_DRQN, seed=7), 3)
    np.testing.assert_array_equal(agent.acting_state[0], held[0])
    tested = agent.test(make_env(CATCH_DRQN, seed=7), nb_episodes=3, visualize=False, verbose=0)
    assert greedy.returns == tested.history["episode_reward"]


# --- sequence replay ---------------------------------------------------------------------------


def _fill(memory: SequenceMemory, episodes: list[int]) -> None:
    """Episodes as keras-rl's fit stores them: each observation is (episode, step), the terminal
    flag on the last transition, then the final observation with a dummy transition."""
    for episode, length in enumerate(episodes):
        for step in range(length + 1):
            observation = np.array([episode + 1, step + 1], dtype=np.uint8)
            final = step == length
            memory.append(observation, 0 if final else 1, 0.0 if final else 1.0, terminal=step == length - 1)


@pytest.mark.parametrize("limit", [1_000, 37])  # 37: the ring has wrapped, the oldest episode is cut
def test_a_sampled_sequence_never_crosses_an_episode_start(limit):
    memory = SequenceMemory(limit=limit, seed=3)
    _fill(memory, [1, 2, 7, 3, 12, 1, 5, 9, 2, 4])
    burn_in, length, n_step = 4, 5, 2
    batch = memory.sample_sequences(256, length, burn_in, 0.9, n_step)
    assert batch.frames.shape == (256, burn_in + length + n_step, 2)
    for frames, valid, mask, bootstrap, discounts in zip(
        batch.frames, batch.valid, batch.mask, batch.bootstrap, batch.discounts
    ):
        assert np.all(frames[~valid] == 0)  # nothing from another episode fills the gaps
        shown = frames[valid]
        assert len(set(shown[:, 0])) == 1  # one episode
        assert np.all(np.diff(shown[:, 1].astype(int)) == 1)  # consecutive steps, no holes
        positions = np.flatnonzero(valid)
        assert np.all(np.diff(positions) == 1)
        first_step = int(frames[burn_in, 1])  # the first loss step's step number (1-based)
        # The burn-in is cut only at the episode's first stored observation.
        assert positions[0] == burn_in - min(burn_in, first_step - int(shown[0, 1]))
        assert mask[0] and np.all(np.diff(mask.astype(int)) <= 0)  # loss steps: a prefix
        steps = np.flatnonzero(mask)
        # A loss step is a real transition: its next observation is in the sequence, at its bootstrap.
        assert np.all(valid[burn_in + steps + 1]) and np.all(valid[bootstrap[steps]])
        assert np.all(bootstrap[steps] > burn_in + steps)
        assert np.all(discounts[~mask] == 0)
    assert batch.valid[:, :burn_in].sum() < batch.valid[:, :burn_in].size  # some burn-ins were cut
    assert (~batch.mask).any()  # and some sequences ended early


def test_sequence_returns_are_the_ring_memorys_n_step_returns_and_memory_stays_flat():
    memory = SequenceMemory(limit=50, seed=0)
    rng = np.random.default_rng(1)
    for i in range(120):
        memory.append(
            rng.integers(0, 255, (3,), dtype=np.uint8), int(rng.integers(2)), float(rng.normal()), i % 11 == 10
        )
    buffer = memory.observations
    assert buffer is not None and buffer.shape == (50, 3) and buffer.dtype == np.uint8
    first = memory.first_steps(64)
    batch = memory.sequences_at(first, 4, 2, 0.9, 3)
    for j in range(4):
        keep = batch.mask[:, j]
        expected = memory.batch_at(first[keep] + j, 0.9, 3)
        np.testing.assert_allclose(batch.returns[keep, j], expected.returns, rtol=1e-6)
        np.testing.assert_array_equal(batch.discounts[keep, j], expected.discounts)
    assert memory.observations is buffer  # never reallocated


# --- training ----------------------------------------------------------------------------------


def test_burn_in_steps_get_no_gradient_and_their_transitions_do_not_enter_the_loss():
    agent, _ = _agent(fit_steps=150)
    batch = agent.memory.sample_sequences(16, agent.sequence_length, agent.burn_in, agent.gamma, agent.n_step)
    frames = agent.train_graph["feeds"][0]
    gradient = tf.gradients(agent.train_graph["loss"], frames)[0]
    grad = _make_callable(agent._session, agent.train_graph["feeds"], [gradient])(*agent.train_feeds(batch))[0]
    positions = batch.frames.shape[1]
    per_position = np.abs(grad).reshape(len(batch.frames), positions, -1).sum(axis=(0, 2))
    assert np.all(per_position[: agent.burn_in] == 0)
    assert np.all(per_position[agent.burn_in : agent.burn_in + agent.sequence_length] > 0)
    # The burn-in transitions' actions and rewards (their targets' inputs) do not enter the loss:
    # changing them in the memory leaves it unchanged (one sequence at a time, as sequences overlap).
    loss, memory = loss_of(agent), agent.memory
    for first in memory.first_steps(5):
        sequence = memory.sequences_at(np.array([first]), agent.sequence_length, agent.burn_in, agent.gamma, 2)
        slots = memory._physical(first - 1 - np.arange(agent.burn_in))
        kept = memory.rewards[slots].copy(), memory.actions[slots].copy()
        memory.rewards[slots], memory.actions[slots] = 99.0, 1 - memory.actions[slots]
        changed = memory.sequences_at(np.array([first]), agent.sequence_length, agent.burn_in, agent.gamma, 2)
        memory.rewards[slots], memory.actions[slots] = kept
        assert loss(changed) == loss(sequence)
        # The same change on the first loss step's reward does reach the loss: the check above
        # would see a burn-in reward that leaked into a target.
        own = memory._physical(np.array([first]))
        reward = memory.rewards[own].copy()
        memory.rewards[own] = 99.0
        leaked = memory.sequences_at(np.array([first]), agent.sequence_length, agent.burn_in, agent.gamma, 2)
        memory.rewards[own] = reward
        assert loss(leaked) != loss(sequence)
    # Masked steps' targets are out of the loss too.
    masked = batch._replace(returns=np.where(batch.mask, batch.returns, 99.0).astype(np.float32))
    assert loss(masked) == loss(batch)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _numpy_q(model, feeds, positions):
    """Q values (batch, positions, actions) of a recurrent model on the train feeds: the Keras
    encoder and head, the LSTM in NumPy from a zero state, held where a position is invalid."""
    frames, valid = feeds[0], feeds[1]
    encoder, lstm, head = model.get_layer(ENCODER).layer, model.get_layer(LSTM).cell, model.get_layer(HEAD)
    features = encoder.predict_on_batch(frames).reshape(len(valid), positions, -1)
    kernel, recurrent, bias = (backend.get_value(w) for w in (lstm.kernel, lstm.recurrent_kernel, lstm.bias))
    h = np.zeros((len(valid), lstm.units))
    c = np.zeros_like(h)
    outputs = []
    for t in range(positions):
        i, f, g, o = np.split(features[:, t] @ kernel + h @ recurrent + bias, 4, axis=1)
        c_next = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h_next = _sigmoid(o) * np.tanh(c_next)
        keep = valid[:, t : t + 1] > 0
        h, c = np.where(keep, h_next, h), np.where(keep, c_next, c)
        outputs.append(h)
    stacked = np.stack(outputs, axis=1).reshape(-1, lstm.units).astype(np.float32)
    return head.predict_on_batch(stacked).reshape(len(valid), positions, -1)


def test_one_train_step_matches_a_numpy_oracle_of_the_masked_sequence_loss():
    agent, _ = _agent(fit_steps=150)
    batch = agent.memory.sample_sequences(16, agent.sequence_length, agent.burn_in, agent.gamma, agent.n_step)
    feeds = agent.train_feeds(batch)
    positions = batch.frames.shape[1]
    online, target = _numpy_q(agent.model, feeds, positions), _numpy_q(agent.target_model, feeds, positions)
    rows = np.arange(len(batch.frames))[:, None]
    steps = agent.burn_in + np.arange(agent.sequence_length)[None, :]
    best = online[rows, batch.bootstrap].argmax(axis=-1)  # Double DQN
    next_values = np.take_along_axis(target[rows, batch.bootstrap], best[..., None], -1)[..., 0]
    targets = batch.returns + batch.discounts * next_values
    taken = np.take_along_axis(online[rows, steps], batch.actions[..., None], -1)[..., 0]
    error = np.abs(targets - taken)
    huber = np.where(error < 1.0, 0.5 * error**2, error - 0.5)  # delta_clip = 1
    mask = batch.mask.astype(np.float64)
    expected_loss = (huber * mask).sum() / mask.sum()
    expected_mean_q = online[rows, steps].max(axis=-1)[batch.mask].mean()
    before = agent.model.get_weights()
    loss, _mae, mean_q = agent.train_on_batch(batch)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(mean_q, expected_mean_q, rtol=1e-5)
    assert any(not np.array_equal(a, b) for a, b in zip(before, agent.model.get_weights()))


@pytest.mark.parametrize(
    "changes",
    [
        ["enable_dueling_network=true"],
        pytest.param(
            ["distributional=true", "v_min=-1", "v_max=1", "atoms=11", "enable_dueling_network=true"],
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["noisy=true", "enable_double_dqn=false", "loss=mse", "target_model_update=0.01"], marks=pytest.mark.slow
        ),
    ],
)
def test_recurrent_heads_and_options_train(changes):
    exp = apply_overrides(CATCH_DRQN, changes)
    agent, env = _agent(exp, fit_steps=70)
    loss, *_ = agent.train_on_batch(agent.sample_batch())
    assert np.isfinite(loss)
    agent.test(env, nb_episodes=1, visualize=False, verbose=0)


# --- runs --------------------------------------------------------------------------------------


def _weights(path):
    import h5py

    arrays = []
    with h5py.File(path) as stored:
        stored.visititems(lambda name, obj: arrays.append(obj[()]) if hasattr(obj, "shape") else None)
    return arrays


def test_same_seed_same_run_and_play_replays_its_evaluation(tmp_path):
    exp = dataclasses.replace(CATCH_DRQN, validation_interval=80, validation_episodes=2)
    first = run(exp, tmp_path / "a", log=io.StringIO())
    second = run(exp, tmp_path / "b", log=io.StringIO())
    one, two = (json.loads((d / "summary.json").read_text()) for d in (first, second))
    assert one["eval"]["returns"] == two["eval"]["returns"]
    rewards = [json.loads((d / "metrics.json").read_text())["episode_reward"] for d in (first, second)]
    assert rewards[0] == rewards[1]
    weights = [_weights(d / "weights.h5") for d in (first, second)]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    assert play(first, stream=io.StringIO())["returns"] == one["eval"]["returns"]


def test_memoryless_play_acts_on_each_frame_alone(tmp_path):
    from harness.core.scoring import EVAL_SEED_OFFSET
    from harness.run.evaluation import evaluate
    from harness.run.play import load_agent

    run_dir = run(CATCH_DRQN, tmp_path / "drqn", log=io.StringIO())
    exp, _, agent = load_agent(run_dir)
    acted: list[tuple[np.ndarray, int]] = []
    forward = agent.forward

    def recording_forward(observation):
        action = forward(observation)
        acted.append((np.array(observation), int(action)))
        return action

    agent.forward = recording_forward
    seed = exp.seed + EVAL_SEED_OFFSET
    alone = evaluate(exp, agent, exp.eval_episodes, seed, callbacks=[Memoryless()])
    # The oracle: the Keras model, which runs a sequence from a zero state, on each frame by itself.
    frames = np.stack([observation for observation, _ in acted])[:, None, None]  # (step, time, window, *obs)
    oracle = np.argmax(agent.model.predict_on_batch(frames), axis=-1)
    assert [action for _, action in acted] == oracle.tolist()
    # With its memory the agent starts from zero only at the episode's first step.
    acted.clear()
    evaluate(exp, agent, exp.eval_episodes, seed)
    assert len(acted) > exp.eval_episodes
    with_memory = [
        int(np.argmax(agent.model.predict_on_batch(np.stack([o for o, _ in acted[:k]])[None, :, None])))
        for k in range(1, min(len(acted), 6))
    ]
    assert with_memory == [action for _, action in acted[: len(with_memory)]]
    # play --memoryless is that evaluation, and refuses a run without a recurrent agent.
    assert play(run_dir, memoryless=True, stream=io.StringIO())["returns"] == alone["returns"]
    plain = run(tiny(load_experiment("catch_dense")), tmp_path / "dense", log=io.StringIO())
    with pytest.raises(UserError, match="has none .recurrent=false."):
        play(plain, memoryless=True, stream=io.StringIO())


@pytest.mark.parametrize(
    "changes, fragment",
    [
        (["recurrent=true", "prioritized_replay=true"], "prioritized_replay=True with recurrent=true"),
        (["recurrent=true", "fast_path=false"], "recurrent=True needs the fast path"),
        (["recurrent=true", "window_length=4"], "window_length=4 with recurrent=true"),
        (["recurrent=true", "memory_interval=2"], "memory_interval=2 with recurrent=true"),
        (["recurrent=true", "sequence_length=0"], "sequence_length=0 is not allowed"),
        (["recurrent=true", "burn_in=-1"], "burn_in=-1 is not allowed"),
        (["lstm_units=0"], "lstm_units=0 is not allowed"),
    ],
)
def test_unsupported_settings_are_one_line_errors(changes, fragment):
    with pytest.raises(UserError, match=fragment) as err:
        apply_overrides(load_experiment("catch_dense"), changes)
    assert "\n" not in str(err.value)


def test_a_conv_encoder_has_no_hidden_layer_of_its_own():
    exp = apply_overrides(tiny(load_experiment("cave_drqn")), ['network_kwargs={"hidden": 512}'])
    new_session(0)
    with pytest.raises(UserError, match="takes the place of the dense hidden layer"):
        build_agent(exp, make_env(exp, seed=0))


@pytest.mark.slow  # two processes that import TensorFlow: 35 s on a loaded 2-core machine
def test_cave_drqn_smoke_runs_through_the_cli_and_plays_back(tmp_path):
    sets = ["nb_steps_warmup=60", "memory_limit=500", "eval_episodes=1", "validation_interval=0", "batch_size=2"]
    result = cli("run", "cave_drqn", "--steps", "100", *(f"--set={kv}" for kv in sets), "--runs-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "cave_drqn").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    played = cli("play", str(run_dir))
    assert played.returncode == 0, played.stderr[-2000:]
    assert "(identical)" in played.stdout
    assert summary["eval"]["episodes"] == 1
