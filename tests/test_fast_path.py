"""The fast path (harness/kerasrl/fast.py) against keras-rl's stock DQNAgent and SequentialMemory.

- RingMemory returns the same transitions as SequentialMemory for the same appends and indexes,
  window and episode boundaries included; its edge cases (wrap-around, windows across episode
  starts, fewer transitions than a batch, too few to sample).
- From the same weights and the same sampled batch, FastDQNAgent's update gives the same new weights
  and metrics as keras-rl's (1e-5), for DQN and Double DQN, Huber clipping, mse, Graves' RMSProp,
  a uint8-storing processor with a 4-frame window, hard and soft target updates; for a conv network
  with oneDNN on (conv networks' default) as well as off, and across the two.
- `fast_path` picks the classes; a short training run from the same seed follows the same
  trajectory on both paths; at full budget both paths learn catch_dense (slow).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest

from harness.core.registry import load_experiment
from harness.core.schema import apply_overrides
from harness.kerasrl.agents import agent_class_and_options, build_agent, make_env, make_memory, new_session
from harness.kerasrl.compat import (
    DQNAgent,
    EpsGreedyQPolicy,
    FileLogger,
    LinearAnnealedPolicy,
    SequentialMemory,
    TrainIntervalLogger,
    clone_model,
)
from harness.kerasrl.fast import FastDQNAgent
from harness.kerasrl.memory import RingMemory
from tests.helpers import ROOT, tiny

OBS = (3, 4)


# ---------------------------------------------------------------------------------------------
# Memory


def _episode_stream(rng: np.random.Generator, lengths: list[int], dtype=np.float32):
    """What keras-rl's fit appends: each step's (obs, action, reward, done), then after the last
    step the final observation with terminal=False. Observations are distinct and never zero, so
    zero padding can't be mistaken for a stored frame."""
    counter = 0
    for length in lengths:
        for t in range(length):
            counter += 1
            obs = np.full(OBS, counter % 250 + 1, dtype=dtype)
            obs[0, 0] = rng.integers(1, 200)
            yield obs, int(rng.integers(3)), float(rng.choice([-1.0, 0.0, 1.0])), t == length - 1
        counter += 1
        yield np.full(OBS, counter % 250 + 1, dtype=dtype), int(rng.integers(3)), 0.0, False


def _filled(window_length: int, limit: int, lengths: list[int], dtype=np.float32):
    stock = SequentialMemory(limit=limit, window_length=window_length)
    ring = RingMemory(limit=limit, window_length=window_length)
    for obs, action, reward, terminal in _episode_stream(np.random.default_rng(len(lengths)), lengths, dtype):
        assert_same_state(stock.get_recent_state(obs), ring.get_recent_state(obs))
        stock.append(obs.copy(), action, reward, terminal)
        ring.append(obs, action, reward, terminal)
    return stock, ring


def assert_same_state(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))


def assert_same_experiences(stock, ring):
    assert len(stock) == len(ring)
    for s, r in zip(stock, ring):
        assert_same_state(s.state0, r.state0)
        assert_same_state(s.state1, r.state1)
        assert s.action == r.action and s.reward == r.reward and bool(s.terminal1) == bool(r.terminal1)


def _sample_both(stock, ring, batch_size, batch_idxs=None, seed=0):
    random.seed(seed)
    np.random.seed(seed)
    expected = stock.sample(batch_size, batch_idxs)
    random.seed(seed)
    np.random.seed(seed)
    got = ring.sample(batch_size, batch_idxs)
    return expected, got


@pytest.mark.parametrize("window_length", [1, 4])
@pytest.mark.parametrize("limit", [1000, 37])  # 37: the ring wraps around several times
def test_ring_memory_returns_sequential_memorys_transitions(window_length, limit):
    lengths = [5, 1, 2, 9, 3, 1, 14, 4, 2, 6, 1, 3, 7]
    stock, ring = _filled(window_length, limit, lengths)
    assert ring.nb_entries == stock.nb_entries == min(limit, sum(lengths) + len(lengths))
    # Every index once (the draws for transitions right after a terminal come from the same seed).
    every = list(range(window_length, ring.nb_entries - 1))
    expected, got = _sample_both(stock, ring, len(every), every)
    assert_same_experiences(expected, got)
    # Random batches: the same draws from Python's and NumPy's generators, the same batch.
    for seed in range(5):
        expected, got = _sample_both(stock, ring, 16, seed=seed)
        assert_same_experiences(expected, got)
    # sample_arrays is what the agent trains on: the same batch as sample(), as arrays.
    random.seed(3)
    state0, actions, rewards, state1, terminal1 = ring.sample_arrays(8)
    random.seed(3)
    listed = ring.sample(8)
    assert state0.shape == state1.shape == (8, window_length, *OBS) and state0.dtype == np.float32
    assert_same_experiences(
        listed,
        [type(listed[0])(list(state0[k]), actions[k], rewards[k], list(state1[k]), terminal1[k]) for k in range(8)],
    )


def test_window_is_zero_padded_at_an_episode_start():
    # Episode A: 3 steps (terminal at the 3rd), then the final observation; episode B follows.
    ring = RingMemory(limit=100, window_length=4)
    frames = [np.full((2,), v, dtype=np.uint8) for v in range(1, 12)]
    flags = [False, False, True, False, False, False, False, False, False, False, False]
    for k, (frame, terminal) in enumerate(zip(frames, flags)):
        ring.append(frame, k % 3, float(k), terminal)
    # Logical index 5 (frame 6) is B's 2nd step: state0 = [0, 0, frame 5, frame 6] (frame 4 is A's
    # final observation and frame 3's step ended A), state1 = [0, frame 5, frame 6, frame 7].
    state0, action, reward, state1, terminal1 = ring.sample_arrays(1, batch_idxs=[5])
    assert state0.dtype == np.uint8
    np.testing.assert_array_equal(state0[0, :, 0], [0, 0, 5, 6])
    np.testing.assert_array_equal(state1[0, :, 0], [0, 5, 6, 7])
    assert (action[0], reward[0], terminal1[0]) == (5 % 3, 5.0, False)
    # The transition from A's final observation (frame 4; frame 3 ended A) to B's first is never
    # returned: it is re-drawn from Python's random, as SequentialMemory does.
    single = RingMemory(limit=100, window_length=1)
    for k, (frame, terminal) in enumerate(zip(frames, flags)):
        single.append(frame, k % 3, float(k), terminal)
    assert list(single.sample_indexes(2, batch_idxs=[2, 4])) == [3, 5]
    random.seed(0)
    idx = single.sample_indexes(1, batch_idxs=[3])
    assert idx[0] != 4 and not single.terminals[idx[0] - 2]


def test_ring_memory_edge_cases():
    # Fewer transitions than a batch: drawn with replacement (keras-rl warns), the same as stock.
    stock, ring = _filled(1, 100, [3, 2])
    assert ring.nb_entries == 7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, got = _sample_both(stock, ring, 32, seed=1)
    assert_same_experiences(expected, got)
    # Too few to sample at all: a clear error (SequentialMemory asserts).
    small = RingMemory(limit=10, window_length=4)
    for _ in range(5):
        small.append(np.ones(2), 0, 0.0, False)
    with pytest.raises(ValueError, match="not enough entries"):
        small.sample(2)
    # Out-of-range indexes are refused.
    with pytest.raises(ValueError, match="batch_idxs"):
        ring.sample(1, batch_idxs=[ring.nb_entries])
    # Outside training only the recent-state window moves (as SequentialMemory).
    before = ring.nb_entries
    ring.append(np.ones(OBS, np.float32), 0, 0.0, False, training=False)
    assert ring.nb_entries == before
    assert ring.get_config() == {"window_length": 1, "ignore_episode_boundaries": False, "limit": 100}


def test_ring_memory_keeps_dtype_and_stops_growing():
    ring = RingMemory(limit=50, window_length=4)
    frame = np.arange(6, dtype=np.uint8).reshape(2, 3)
    ring.append(frame, 0, 0.0, False)
    buffers = ring.observations
    assert buffers.dtype == np.uint8 and buffers.shape == (50, 2, 3)
    for k in range(500):
        ring.append(frame + k % 7, k % 3, 1.0, k % 11 == 10)
    assert ring.observations is buffers and ring.nb_entries == 50
    # The newest 50 transitions are the ones kept, oldest first.
    state0, actions, *_ = ring.sample_arrays(1, batch_idxs=[ring.nb_entries - 2])
    assert actions[0] == 498 % 3


# ---------------------------------------------------------------------------------------------
# One update: the same weights from the same batch


def _agents(
    double: bool,
    loss: str = "huber",
    optimizer: str = "rmsprop",
    window_length: int = 1,
    processor: bool = False,
    target_model_update: float = 3,
    seed: int = 0,
    network: str = "dense",
):
    """A stock keras-rl agent and a fast one with identical weights, memories and policies.
    `network="conv"`: two small Conv2D layers over the frames, channels-last (needs `processor`)."""
    from harness.kerasrl.agents import LossDQNAgent
    from harness.kerasrl.models import conv, dense
    from harness.kerasrl.optimizers import make_loss, make_optimizer
    from harness.kerasrl.processors import FrameProcessor

    new_session(seed)
    agents = []
    model = None
    channels_last = network == "conv"
    for fast in (False, True):
        proc = FrameProcessor(size=None, obs_low=0.0, obs_high=1.0, channels_last=channels_last) if processor else None
        if model is None:
            if channels_last:
                model = conv((*OBS, window_length), 3, filters=(8, 16), kernel_sizes=(2, 2), strides=(1, 1), hidden=16)
            else:
                model = dense((window_length, *OBS), 3, hidden=[16])
            this = model
        else:
            this = clone_model(model)  # same architecture and weights
        kwargs = dict(
            model=this,
            nb_actions=3,
            processor=proc,
            gamma=0.9,
            batch_size=16,
            nb_steps_warmup=10,
            train_interval=1,
            memory_interval=1,
            target_model_update=target_model_update,
            delta_clip=1.0,
            enable_double_dqn=double,
            policy=LinearAnnealedPolicy(
                EpsGreedyQPolicy(), attr="eps", value_max=1.0, value_min=0.1, value_test=0.0, nb_steps=100
            ),
        )
        if fast:
            memory = RingMemory(limit=500, window_length=window_length)
            loss_fn = None if loss == "huber" else make_loss(loss, 1.0)
            agent = FastDQNAgent(memory=memory, loss_fn=loss_fn, **kwargs)
        else:
            memory = SequentialMemory(limit=500, window_length=window_length)
            if loss == "huber":
                agent = DQNAgent(memory=memory, **kwargs)
            else:
                agent = LossDQNAgent(memory=memory, loss_fn=make_loss(loss, 1.0), **kwargs)
        agent.compile(make_optimizer(optimizer, 1e-2), metrics=["mae"])
        agents.append(agent)
    stock, fast = agents
    # The same replay data in both memories (rewards of +-3 so the Huber clip is exercised).
    rng = np.random.default_rng(seed)
    for obs, action, reward, terminal in _episode_stream(rng, [6, 2, 9, 1, 12, 4, 3, 8, 5, 2] * 3):
        stored = (obs % 2).astype(np.float32) if not processor else (obs % 2).astype(np.uint8) * 255
        for agent in agents:
            agent.memory.append(stored.copy(), action, 3.0 * reward, terminal)
    return stock, fast


def _train_steps(stock, fast, steps: int, first_step: int = 11):
    """`steps` backward calls on both agents from the same seeds; yields both metrics lists."""
    for k in range(steps):
        obs = np.full(OBS, k % 2, dtype=np.float32)
        if stock.processor is not None:
            obs = obs.astype(np.uint8) * 255
        out = []
        for agent in (stock, fast):
            agent.training = True
            agent.step = first_step + k
            agent.recent_observation, agent.recent_action = obs.copy(), k % 3
            random.seed(100 + k)
            np.random.seed(100 + k)
            out.append(agent.backward(1.0 if k % 3 else -3.0, terminal=k % 4 == 3))
        yield out


def _assert_same_weights(stock, fast, atol=1e-5):
    for a, b in zip(stock.model.get_weights(), fast.model.get_weights()):
        np.testing.assert_allclose(b, a, rtol=0, atol=atol)
    for a, b in zip(stock.target_model.get_weights(), fast.target_model.get_weights()):
        np.testing.assert_allclose(b, a, rtol=0, atol=atol)


@pytest.mark.parametrize(
    "double, loss, optimizer, window_length, processor",
    [
        (False, "huber", "rmsprop", 1, False),
        (True, "huber", "rmsprop", 1, False),
        (True, "mse", "graves", 1, False),
        (True, "huber", "adam", 4, True),
    ],
)
def test_one_update_gives_stock_weights(double, loss, optimizer, window_length, processor):
    stock, fast = _agents(double, loss, optimizer, window_length, processor, target_model_update=3)
    assert fast.metrics_names == stock.metrics_names == ["loss", "mae", "mean_q", "mean_eps"]
    initial = [w.copy() for w in fast.model.get_weights()]
    _assert_same_weights(stock, fast, atol=0)
    for stock_metrics, fast_metrics in _train_steps(stock, fast, steps=6):
        np.testing.assert_allclose(fast_metrics, stock_metrics, rtol=1e-5, atol=1e-6)
        _assert_same_weights(stock, fast)
    # The updates did move the weights, and the hard update (every 3 steps: at steps 12 and 15)
    # copied them to the target network.
    assert max(np.abs(a - b).max() for a, b in zip(initial, fast.model.get_weights())) > 1e-3
    assert any(not np.array_equal(a, b) for a, b in zip(initial, fast.target_model.get_weights()))


def conv_update(weights_file: str) -> dict:
    """Six Double DQN updates of a stock and a fast agent with the same conv network (Adam, Huber,
    uint8 frames, a 4-frame window) in this process's arithmetic; writes both agents' final weights
    to `weights_file` (.npz: stock's, then fast's) and returns the largest gaps between them.
    Run by test_one_update_with_onednn_matches_stock in a subprocess, since TensorFlow reads
    TF_ENABLE_ONEDNN_OPTS once, when it loads."""
    from harness.kerasrl import compat

    stock, fast = _agents(True, "huber", "adam", window_length=4, processor=True, network="conv")
    initial = [w.copy() for w in fast.model.get_weights()]
    metric_gap = weight_gap = 0.0
    for stock_metrics, fast_metrics in _train_steps(stock, fast, steps=6):
        metric_gap = max(metric_gap, float(np.max(np.abs(np.subtract(fast_metrics, stock_metrics)))))
        pairs = zip(stock.model.get_weights(), fast.model.get_weights(), strict=True)
        weight_gap = max(weight_gap, *(float(np.abs(a - b).max()) for a, b in pairs))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, fast.model.get_weights(), strict=True))
    np.savez(weights_file, *stock.model.get_weights(), *fast.model.get_weights())
    return {"onednn": compat.ONEDNN, "metric_gap": metric_gap, "weight_gap": weight_gap, "moved": moved}


def test_one_update_with_onednn_matches_stock(tmp_path):
    """Conv networks train with oneDNN on (the default since the speed issue): there, the fast
    path's updates still give keras-rl's weights and metrics, and they match stock keras-rl in the
    old arithmetic (oneDNN off) to float32 rounding. Measured: a gap of 0 within each setting, 6e-8
    between them; the tolerance is the dense test's 1e-5."""
    runs = {}
    for onednn in ("1", "0"):
        weights_file = tmp_path / f"weights-{onednn}.npz"
        code = "import json, sys; from tests.test_fast_path import conv_update as f; print(json.dumps(f(sys.argv[1])))"
        result = subprocess.run(
            [sys.executable, "-c", code, str(weights_file)],
            cwd=ROOT,
            env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn},
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        gaps = json.loads(result.stdout.strip().splitlines()[-1])
        assert gaps["onednn"] is (onednn == "1")
        assert gaps["moved"] > 1e-3  # the updates did change the weights
        assert gaps["metric_gap"] <= 1e-5 and gaps["weight_gap"] <= 1e-5, gaps
        with np.load(weights_file, allow_pickle=False) as saved:
            arrays = [saved[f"arr_{k}"] for k in range(len(saved.files))]
        runs[onednn] = (arrays[: len(arrays) // 2], arrays[len(arrays) // 2 :])  # stock's, fast's
    stock_without_onednn, fast_with_onednn = runs["0"][0], runs["1"][1]
    for a, b in zip(stock_without_onednn, fast_with_onednn, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)


def test_metrics_are_nan_outside_training_steps():
    stock, fast = _agents(True)
    for agent in (stock, fast):
        agent.training = True
        agent.step = 5  # still warming up
        agent.recent_observation, agent.recent_action = np.zeros(OBS, np.float32), 0
        metrics = agent.backward(0.0, terminal=False)
        assert len(metrics) == 4 and all(np.isnan(m) for m in metrics)


def test_soft_target_update_moves_target_by_tau():
    tau = 0.25
    stock, fast = _agents(True, target_model_update=tau)
    online_before = [w.copy() for w in fast.model.get_weights()]
    target_before = [w.copy() for w in fast.target_model.get_weights()]
    for perturb, w in zip(range(len(target_before)), target_before):
        w += 0.01 * (perturb + 1)  # make the target differ from the online network
    fast.target_model.set_weights(target_before)
    stock.target_model.set_weights(target_before)
    next(_train_steps(stock, fast, steps=1))
    # The online update is keras-rl's; the target moved by tau towards the pre-update weights.
    for a, b in zip(stock.model.get_weights(), fast.model.get_weights()):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)
    for got, online, target in zip(fast.target_model.get_weights(), online_before, target_before):
        np.testing.assert_allclose(got, tau * online + (1 - tau) * target, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The switch, and training end to end


def test_fast_path_is_the_default_and_switchable():
    exp = load_experiment("catch_dense")
    assert exp.fast_path is True
    assert agent_class_and_options(exp)[0] is FastDQNAgent and isinstance(make_memory(exp), RingMemory)
    stock = apply_overrides(exp, ["fast_path=false"])
    assert agent_class_and_options(stock)[0] is DQNAgent and type(make_memory(stock)) is SequentialMemory
    mse = apply_overrides(exp, ["loss=mse"])
    cls, options = agent_class_and_options(mse)
    assert cls is FastDQNAgent and callable(options["loss_fn"])


def _short_fit(exp, steps: int, callbacks=()):
    new_session(exp.seed)
    random.seed(exp.seed)
    np.random.seed(exp.seed)
    env = make_env(exp, seed=exp.seed)
    agent = build_agent(exp, env)
    agent.fit(env, nb_steps=steps, verbose=0, callbacks=list(callbacks))
    return agent


def test_same_seed_same_trajectory_on_both_paths(tmp_path):
    """From the same seed both paths draw the same actions and batches, so a short run ends with
    the same episodes and (to float rounding) the same weights."""
    exp = tiny(load_experiment("catch_dense"), nb_steps_warmup=50, seed=3)
    results = []
    for fast in (False, True):
        logger = FileLogger(str(tmp_path / f"metrics-{fast}.json"), interval=1)
        agent = _short_fit(dataclasses.replace(exp, fast_path=fast), 400, [logger])
        assert isinstance(agent, FastDQNAgent) is fast
        results.append((json.loads((tmp_path / f"metrics-{fast}.json").read_text()), agent.model.get_weights()))
    (stock_log, stock_weights), (fast_log, fast_weights) = results
    assert fast_log["episode_reward"] == stock_log["episode_reward"]
    assert fast_log["nb_episode_steps"] == stock_log["nb_episode_steps"]
    np.testing.assert_allclose(fast_log["loss"], stock_log["loss"], rtol=1e-4)
    np.testing.assert_allclose(fast_log["mean_q"], stock_log["mean_q"], rtol=1e-4)
    for a, b in zip(stock_weights, fast_weights):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)


def test_keras_rl_callbacks_and_test_run_on_the_fast_path(capsys):
    exp = tiny(load_experiment("catch_dense"), nb_steps_warmup=50, seed=1)
    agent = _short_fit(exp, 300, [TrainIntervalLogger(interval=100)])
    out = capsys.readouterr().out
    assert "loss: " in out and "mean_q: " in out and "mean_eps: " in out
    history = agent.test(make_env(exp, seed=5), nb_episodes=2, visualize=False, verbose=0)
    assert len(history.history["episode_reward"]) == 2
    # Action selection is a plain function of the weights: the lean call gives predict's Q values.
    states = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        agent.compute_batch_q_values(list(states)), agent.model.predict_on_batch(states), rtol=1e-6, atol=1e-6
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_both_paths_learn_catch_dense_at_full_budget(tmp_path, seed):
    from harness.run.runner import run

    scores = {}
    for fast in (True, False):
        exp = dataclasses.replace(load_experiment("catch_dense"), seed=seed, fast_path=fast)
        summary = json.loads((run(exp, tmp_path / str(fast)) / "summary.json").read_text())
        scores[fast] = summary["eval"]["score"]
    assert scores[True] >= 0.95 and scores[False] >= 0.95, scores


# ---------------------------------------------------------------------------------------------
# The benchmark's plumbing (the benchmark itself is `make bench`)


def test_bench_measurement_counts_train_steps_and_samples_memory():
    from bench.speed import measure

    result = measure("catch_dense", fast=True, steps=300, warmup=100, memory_limit=150, rss_every=20)
    # keras-rl trains when step > nb_steps_warmup: steps 101..299 of 0..299 report a loss.
    assert result["steps"] == 300 and result["train_steps"] == 199
    assert result["memory_limit"] == 150 and 100 < result["memory_full_at_step"] < 160
    assert result["steps_after_full"] == 300 - result["memory_full_at_step"]
    assert result["peak_rss_mb"] >= result["rss_at_full_mb"] > 0
    assert result["env_steps_per_second"] > 0


def test_bench_flatness_window_opens_after_the_first_trained_target_update():
    from bench.speed import measure

    result = measure(
        "catch_dense",
        fast=True,
        steps=400,
        warmup=100,
        memory_limit=150,
        rss_every=20,
        overrides=["target_model_update=200"],
    )
    # Full near step 150; the first update after the warm-up (step 100) copies trained weights at step 200.
    assert result["window_from_step"] == 201 and result["memory_full_at_step"] < 201
    samples = dict(result["rss_samples_mb"])
    in_window = [r for s, r in samples.items() if s >= 201]
    assert len(in_window) == 10  # steps 220, 240, ..., 400
    assert result["rss_range_after_full_mb"] == pytest.approx(max(in_window) - min(in_window), abs=0.01)
    assert result["rss_at_full_mb"] == pytest.approx(samples[result["memory_full_at_step"]], abs=0.01)


def test_bench_rejects_bad_arguments():
    result = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--reps", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and result.stderr.startswith("error:") and "--reps" in result.stderr
