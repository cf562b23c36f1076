"""FastDQNAgent as a drop-in for keras-rl's DQNAgent: what `compile` accepts, and multi-input models.

- `compile` takes optimizer names (resolved as Keras' graph-mode compile resolves them), legacy
  optimizer instances and metric names; an unknown name, a Keras 2.11+ optimizer instance or a
  Keras Metric object is a one-line error.
- A gymnasium `Dict` observation ({"image": uint8 8x8, "vector": float32 3}) through a
  `MultiInputProcessor` into a 2-input network: from the same weights and the same batches, the
  fast agent's updates, metrics and Q values are keras-rl's stock DQNAgent's (1e-5), for 'sgd',
  'adam' and an optimizer instance, windows of 1 and 2, a RingMemory (per-input buffers) or a
  SequentialMemory, a processor with its own `process_state_batch`, hard and soft target updates.
- RingMemory(components=2) returns SequentialMemory's transitions and, per component, what a
  one-array RingMemory returns (n-step returns and prioritized replay included); uint8 stays uint8.
- A short fit and test on the Dict env follow the same trajectory on both agents.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from harness.kerasrl.adapters import KerasRLEnv
from harness.kerasrl.agents import new_session
from harness.kerasrl.compat import (
    DQNAgent,
    EpsGreedyQPolicy,
    LinearAnnealedPolicy,
    MultiInputProcessor,
    SequentialMemory,
    clone_model,
    keras,
)
from harness.kerasrl.fast import OPTIMIZER_NAMES, FastDQNAgent, graph_mode_optimizer
from harness.kerasrl.memory import RingMemory
from harness.kerasrl.prioritized import PrioritizedRingMemory

IMAGE, VECTOR = (8, 8), (3,)
GAMMA = 0.9


# ---------------------------------------------------------------------------------------------
# The example: a Dict-observation env, its processor and a 2-input network


class SensorsEnv(gymnasium.Env):
    """Pick the action that an image and a vector point at together.

    ## Description
    Every step shows a fresh 8x8 image with one lit pixel and a 3-vector. The pixel's column
    third (columns 0-2, 3-5, 6-7) is `c`, the vector's largest entry is at `v`; action
    `(c + v) % 3` is right. Neither input alone does better than chance: the task tests that a
    network uses both of its inputs.

    ## Action Space
    `Discrete(3)`.

    ## Observation Space
    `Dict({"image": Box(0, 255, (8, 8), uint8), "vector": Box(-1, 1, (3,), float32)})`: the image
    is 0 but for the one pixel at 255; the vector's entries are uniform in [-1, 1].

    ## Starting State
    A random image and vector, as every step.

    ## Reward
    +1 for the right action, 0 otherwise.

    ## Episode End
    Termination after `length` steps.

    ## Arguments
    `SensorsEnv(length=10)`.
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = 10) -> None:
        self.length = length
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, IMAGE, np.uint8),
                "vector": spaces.Box(-1.0, 1.0, VECTOR, np.float32),
            }
        )
        self.action_space = spaces.Discrete(3)
        self._steps = 0
        self._answer = 0

    def _get_obs(self) -> dict[str, np.ndarray]:
        image = np.zeros(IMAGE, np.uint8)
        row, column = self.np_random.integers(0, 8, size=2)
        image[row, column] = 255
        vector = self.np_random.uniform(-1.0, 1.0, VECTOR).astype(np.float32)
        self._answer = int((column // 3 + np.argmax(vector)) % 3)
        return {"image": image, "vector": vector}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self._steps = 0
        return self._get_obs(), {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        reward = 1.0 if int(action) == self._answer else 0.0
        self._steps += 1
        return self._get_obs(), reward, self._steps >= self.length, False, {}


class DictToInputs(MultiInputProcessor):
    """The Dict observation as the (image, vector) tuple keras-rl's MultiInputProcessor takes."""

    def __init__(self) -> None:
        super().__init__(nb_inputs=2)

    def process_observation(self, observation: dict) -> tuple[np.ndarray, np.ndarray]:
        return observation["image"], observation["vector"]


class ScaledDictToInputs(DictToInputs):
    """With its own state-batch step (the image scaled to [0, 1] here, not in the network)."""

    def process_state_batch(self, state_batch: Any) -> list[np.ndarray]:
        image, vector = super().process_state_batch(state_batch)
        return [image.astype(np.float32) / 255.0, vector]


def two_input_network(window_length: int, rescale: bool = True) -> Any:
    """(window, 8, 8) image and (window, 3) vector -> 3 Q values."""
    image = keras.layers.Input((window_length, *IMAGE), name="image")
    vector = keras.layers.Input((window_length, *VECTOR), name="vector")
    seen = keras.layers.Flatten()(image)
    if rescale:
        seen = keras.layers.Rescaling(1.0 / 255.0)(seen)
    seen = keras.layers.Dense(16, activation="relu")(seen)
    both = keras.layers.Concatenate()([seen, keras.layers.Flatten()(vector)])
    hidden = keras.layers.Dense(16, activation="relu")(both)
    return keras.Model(inputs=[image, vector], outputs=keras.layers.Dense(3)(hidden))


def _observation(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(1, 256, IMAGE).astype(np.uint8)  # never 0: padding can't pass for a frame
    return image, rng.uniform(-1.0, 1.0, VECTOR).astype(np.float32)


def _stream(rng: np.random.Generator, lengths: list[int]):
    """What keras-rl's fit appends (see tests/test_fast_path.py's _episode_stream), tuple observations."""
    for length in lengths:
        for t in range(length):
            yield _observation(rng), int(rng.integers(3)), float(rng.choice([-1.0, 0.0, 1.0])), t == length - 1
        yield _observation(rng), int(rng.integers(3)), 0.0, False


def _copy(observation: tuple) -> tuple:
    return tuple(part.copy() for part in observation)


# ---------------------------------------------------------------------------------------------
# The env


def test_sensors_env_passes_check_env_and_is_seeded():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(SensorsEnv(), skip_render_check=True)
    rolls = []
    for _ in range(2):
        env = SensorsEnv(length=5)
        steps: list = [env.reset(seed=3)[0]]
        for action in [0, 1, 2, 0, 1]:
            steps.append(env.step(action))
        rolls.append(steps)
    assert repr(rolls[0]) == repr(rolls[1]) and rolls[0][-1][2] is True
    # The right action is a function of both inputs, all nine combinations seen.
    env = SensorsEnv()
    env.reset(seed=0)
    seen = {}
    for _ in range(300):
        obs = env._get_obs()
        seen[(int(np.argwhere(obs["image"])[0][1]) // 3, int(np.argmax(obs["vector"])))] = env._answer
    assert seen == {(c, v): (c + v) % 3 for c in range(3) for v in range(3)}


# ---------------------------------------------------------------------------------------------
# The memory: one buffer per component


def _per_component(components: RingMemory, singles: list[RingMemory], last: np.ndarray, n_step: int):
    """RingMemory(components=2).batch_at against one one-array RingMemory per component."""
    batch = components.batch_at(last, GAMMA, n_step)
    for k, single in enumerate(singles):
        alone = single.batch_at(last, GAMMA, n_step)
        np.testing.assert_array_equal(batch.state0[k], alone.state0)
        np.testing.assert_array_equal(batch.bootstrap[k], alone.bootstrap)
        assert batch.state0[k].dtype == alone.state0.dtype
        for name in ("actions", "returns", "discounts"):
            np.testing.assert_array_equal(getattr(batch, name), getattr(alone, name))


@pytest.mark.parametrize("window_length", [1, 3])
@pytest.mark.parametrize("n_step", [1, 3])
def test_component_memory_is_one_memory_per_component(window_length, n_step):
    lengths = [5, 1, 2, 9, 3, 1, 14, 4, 2, 6]
    components = RingMemory(limit=37, window_length=window_length, components=2)  # 37: it wraps
    singles = [RingMemory(limit=37, window_length=window_length) for _ in range(2)]
    for obs, action, reward, terminal in _stream(np.random.default_rng(1), lengths):
        components.append(obs, action, reward, terminal)
        for part, single in zip(obs, singles):
            single.append(part, action, reward, terminal)
    assert components.parts is not None and components.observations is None
    assert [p.dtype for p in components.parts] == [np.uint8, np.float32]
    assert [p.shape for p in components.parts] == [(37, *IMAGE), (37, *VECTOR)]
    _per_component(components, singles, np.arange(window_length, components.nb_entries - 1), n_step)
    assert components.get_config()["components"] == 2


def test_component_memory_returns_sequential_memorys_transitions():
    ring = RingMemory(limit=1000, window_length=2, components=2)
    stock = SequentialMemory(limit=1000, window_length=2)
    for obs, action, reward, terminal in _stream(np.random.default_rng(2), [4, 1, 6, 2, 3]):
        ring.append(obs, action, reward, terminal)
        stock.append(_copy(obs), action, reward, terminal)
    random.seed(5)
    np.random.seed(5)
    expected = stock.sample(12)
    random.seed(5)
    np.random.seed(5)
    got = ring.sample(12)
    for e, g in zip(expected, got, strict=True):
        assert (e.action, e.reward, bool(e.terminal1)) == (g.action, g.reward, g.terminal1)
        for e_state, g_state in ((e.state0, g.state0), (e.state1, g.state1)):
            assert len(e_state) == len(g_state) == 2
            for e_obs, g_obs in zip(e_state, g_state, strict=True):  # keras-rl pads with zeros
                for e_part, g_part in zip(e_obs, g_obs, strict=True):
                    np.testing.assert_array_equal(np.asarray(g_part, np.float64), np.asarray(e_part, np.float64))


def test_prioritized_component_memory_draws_as_one_memory_per_component():
    memories = [PrioritizedRingMemory(limit=50, window_length=2, seed=4, components=2)]
    memories += [PrioritizedRingMemory(limit=50, window_length=2, seed=4) for _ in range(2)]
    for obs, action, reward, terminal in _stream(np.random.default_rng(3), [6, 2, 9, 1, 12, 4, 3, 8, 5]):
        memories[0].append(obs, action, reward, terminal)
        for part, single in zip(obs, memories[1:]):
            single.append(part, action, reward, terminal)
    batches = [m.sample_batch(16, GAMMA, n_step=3, step=10) for m in memories]
    for k, alone in enumerate(batches[1:]):
        np.testing.assert_array_equal(batches[0].slots, alone.slots)
        np.testing.assert_array_equal(batches[0].weights, alone.weights)
        np.testing.assert_array_equal(batches[0].state0[k], alone.state0)
        np.testing.assert_array_equal(batches[0].bootstrap[k], alone.bootstrap)
        np.testing.assert_array_equal(batches[0].returns, alone.returns)


def test_component_memory_errors_are_clear():
    memory = RingMemory(limit=10, components=2)
    with pytest.raises(TypeError, match=r"tuples or lists of 2 arrays.*got a dict \(a processor's process_observation"):
        memory.append({"image": np.zeros(IMAGE), "vector": np.zeros(VECTOR)}, 0, 0.0, False)
    with pytest.raises(TypeError, match="got a tuple of 3"):
        memory.append((np.zeros(2), np.zeros(2), np.zeros(2)), 0, 0.0, False)
    plain = RingMemory(limit=10)
    with pytest.raises(TypeError, match=r"RingMemory\(components=n\)"):
        plain.append((np.zeros(IMAGE), np.zeros(VECTOR)), 0, 0.0, False)
    plain.append(np.zeros(3), 0, 0.0, False)
    with pytest.raises(ValueError, match="already stores array observations"):
        plain.use_components(2)
    with pytest.raises(ValueError, match="components must be a positive integer"):
        RingMemory(limit=10, components=0)


# ---------------------------------------------------------------------------------------------
# One update: the same weights from the same batch


def _policy():
    return LinearAnnealedPolicy(
        EpsGreedyQPolicy(), attr="eps", value_max=1.0, value_min=0.1, value_test=0.0, nb_steps=100
    )


def _agents(optimizer, window_length=1, memory="ring", processor=DictToInputs, target_model_update=3, seed=0):
    """A stock DQNAgent and a FastDQNAgent on the same 2-input network (identical weights), with
    the same replay data; `optimizer()` makes each agent's optimizer (a name or an instance)."""
    new_session(seed)
    model = two_input_network(window_length, rescale=processor is DictToInputs)
    agents = []
    for fast in (False, True):
        kwargs: dict[str, Any] = dict(
            model=model if not fast else clone_model(model),
            nb_actions=3,
            processor=processor(),
            policy=_policy(),
            gamma=GAMMA,
            batch_size=16,
            nb_steps_warmup=10,
            target_model_update=target_model_update,
            delta_clip=1.0,
            enable_double_dqn=True,
        )
        if fast and memory == "ring":
            agent = FastDQNAgent(memory=RingMemory(limit=500, window_length=window_length), **kwargs)
        elif fast:
            agent = FastDQNAgent(memory=SequentialMemory(limit=500, window_length=window_length), **kwargs)
        else:
            agent = DQNAgent(memory=SequentialMemory(limit=500, window_length=window_length), **kwargs)
        agent.compile(optimizer(), metrics=["mae"])
        agents.append(agent)
    for obs, action, reward, terminal in _stream(np.random.default_rng(seed), [6, 2, 9, 1, 12, 4, 3, 8, 5, 2] * 2):
        for agent in agents:
            agent.memory.append(_copy(obs), action, 3.0 * reward, terminal)  # +-3: the Huber clip acts
    return agents


def _train_steps(stock, fast, steps):
    """`steps` backward calls on both agents from the same seeds; yields both metrics lists."""
    rng = np.random.default_rng(99)
    for k in range(steps):
        obs = _observation(rng)
        out = []
        for agent in (stock, fast):
            agent.training = True
            agent.step = 11 + k
            agent.recent_observation, agent.recent_action = _copy(obs), k % 3
            random.seed(100 + k)
            np.random.seed(100 + k)
            out.append(agent.backward(1.0 if k % 3 else -3.0, terminal=k % 4 == 3))
        yield out


def _assert_same_weights(stock, fast, atol=1e-5):
    for a, b in zip(
        stock.model.get_weights() + stock.target_model.get_weights(),
        fast.model.get_weights() + fast.target_model.get_weights(),
        strict=True,
    ):
        np.testing.assert_allclose(b, a, rtol=0, atol=atol)


def _legacy_rmsprop():
    return keras.optimizers.legacy.RMSprop(learning_rate=1e-2)


@pytest.mark.parametrize(
    "optimizer, window_length, memory, processor, target_model_update",
    [
        (lambda: "sgd", 1, "ring", DictToInputs, 3),
        (lambda: "adam", 2, "ring", DictToInputs, 3),
        (_legacy_rmsprop, 2, "ring", ScaledDictToInputs, 3),
        (_legacy_rmsprop, 1, "sequential", DictToInputs, 0.25),
    ],
    ids=["sgd", "adam-window2", "instance-own-batch-step", "instance-sequential-soft"],
)
def test_two_input_update_gives_stock_weights(optimizer, window_length, memory, processor, target_model_update):
    stock, fast = _agents(optimizer, window_length, memory, processor, target_model_update)
    assert fast.metrics_names == stock.metrics_names == ["loss", "mae", "mean_q", "mean_eps"]
    stock_optimizer = stock.trainable_model.optimizer  # soft updates wrap it in AdditionalUpdatesOptimizer
    assert type(fast.optimizer) is type(getattr(stock_optimizer, "optimizer", stock_optimizer))
    if memory == "ring":
        assert fast.memory.components == 2 and fast.memory.parts[0].dtype == np.uint8
    initial = [w.copy() for w in fast.model.get_weights()]
    _assert_same_weights(stock, fast, atol=0)
    for stock_metrics, fast_metrics in _train_steps(stock, fast, steps=6):
        np.testing.assert_allclose(fast_metrics, stock_metrics, rtol=1e-5, atol=1e-6)
        _assert_same_weights(stock, fast)
    assert max(np.abs(a - b).max() for a, b in zip(initial, fast.model.get_weights())) > 1e-3
    # Acting: the same Q values for a state keras-rl builds (zero-padded at an episode start).
    state = fast.memory.get_recent_state(_observation(np.random.default_rng(7)))
    np.testing.assert_allclose(fast.compute_q_values(state), stock.compute_q_values(state), rtol=1e-5, atol=1e-6)
    states = [state, stock.memory.get_recent_state(_observation(np.random.default_rng(8)))]
    np.testing.assert_allclose(
        fast.compute_batch_q_values(states), stock.compute_batch_q_values(states), rtol=1e-5, atol=1e-6
    )


def test_two_input_n_step_prioritized_train_step_matches_its_oracle():
    new_session(0)
    memory = PrioritizedRingMemory(limit=200, window_length=2, seed=0)
    agent = FastDQNAgent(
        model=two_input_network(2),
        nb_actions=3,
        memory=memory,
        processor=DictToInputs(),
        policy=_policy(),
        gamma=GAMMA,
        batch_size=16,
        nb_steps_warmup=10,
        target_model_update=100,
        delta_clip=1.0,
        enable_double_dqn=True,
        n_step=3,
    )
    agent.compile("adam", metrics=["mae"])
    for obs, action, reward, terminal in _stream(np.random.default_rng(5), [6, 2, 9, 1, 12, 4, 3, 8]):
        memory.append(obs, action, 3.0 * reward, terminal)
    memory.update_priorities(
        np.flatnonzero(memory.priorities), np.random.default_rng(2).uniform(0.1, 2.0, memory.drawable)
    )
    batch = memory.sample_batch(16, GAMMA, n_step=3, step=0)
    assert batch.weights.min() < 1.0 and isinstance(batch.state0, tuple)
    # The oracle, from the weights before the step: Double DQN n-step targets and Huber(1).
    online = agent.model.predict_on_batch(list(batch.state0))
    target_next = agent.target_model.predict_on_batch(list(batch.bootstrap))
    best = agent.model.predict_on_batch(list(batch.bootstrap)).argmax(axis=1)
    delta = batch.returns + batch.discounts * target_next[np.arange(16), best] - online[np.arange(16), batch.actions]
    huber = np.where(np.abs(delta) < 1.0, 0.5 * delta**2, np.abs(delta) - 0.5)
    metrics = agent.train_on_batch(batch)
    assert metrics[0] == pytest.approx(float(np.mean(batch.weights * huber)), rel=1e-5)
    for slot, k in {int(slot): k for k, slot in enumerate(batch.slots)}.items():
        assert memory.priorities[slot] == pytest.approx(abs(delta[k]) + 1e-6, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# fit and test on the Dict env


def test_fit_and_test_on_the_dict_env_follow_the_same_trajectory_on_both_agents():
    results = []
    for fast in (False, True):
        new_session(3)
        random.seed(3)
        np.random.seed(3)
        env = KerasRLEnv(SensorsEnv(length=10), seed=3)
        memory = RingMemory(limit=1000) if fast else SequentialMemory(limit=1000, window_length=1)
        agent = (FastDQNAgent if fast else DQNAgent)(
            model=two_input_network(1),
            nb_actions=3,
            memory=memory,
            processor=DictToInputs(),
            policy=_policy(),
            gamma=GAMMA,
            batch_size=16,
            nb_steps_warmup=50,
            target_model_update=20,
        )
        agent.compile("adam", metrics=["mae"])
        fit = agent.fit(env, nb_steps=300, verbose=0)
        test = agent.test(KerasRLEnv(SensorsEnv(length=10), seed=11), nb_episodes=2, visualize=False, verbose=0)
        results.append((fit.history, test.history, agent.model.get_weights()))
    (stock_fit, stock_test, stock_weights), (fast_fit, fast_test, fast_weights) = results
    assert len(fast_fit["episode_reward"]) == 30 and len(fast_test["episode_reward"]) == 2
    assert fast_fit["episode_reward"] == stock_fit["episode_reward"]
    assert fast_test["episode_reward"] == stock_test["episode_reward"]
    for a, b in zip(stock_weights, fast_weights, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)
    assert any(np.abs(w).max() > 0 for w in fast_weights)


# ---------------------------------------------------------------------------------------------
# What compile accepts


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_optimizer_names_resolve_as_keras_graph_mode_compile_does(name):
    resolved = graph_mode_optimizer(name)
    assert isinstance(resolved, keras.optimizers.legacy.Optimizer) and hasattr(resolved, "get_updates")
    assert type(resolved) is type(keras.optimizers.get(name))  # what training_v1's compile calls
    legacy = keras.optimizers.legacy.Adam()
    assert graph_mode_optimizer(legacy) is legacy


def _single_input_agent(memory=None):
    new_session(0)
    inputs = keras.layers.Input((1, 4))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    return FastDQNAgent(model=model, nb_actions=3, memory=memory or RingMemory(100), policy=EpsGreedyQPolicy())


@pytest.mark.parametrize(
    "optimizer, metrics, error, message",
    [
        ("nonsense", ["mae"], ValueError, r"unknown optimizer 'nonsense'; expected an optimizer name \('sgd'"),
        (42, ["mae"], ValueError, r"unknown optimizer 42; expected"),
        ("new-adam", ["mae"], TypeError, r"Adam is a Keras 2\.11\+ optimizer.*keras\.optimizers\.legacy\.Adam"),
        ("new-adamw", ["mae"], TypeError, r"AdamW is a Keras 2\.11\+ optimizer.*RMSPropGraves\)$"),
        ("sgd", [keras.metrics.MeanAbsoluteError()], TypeError, r"metric .* is not allowed; expected a metric name"),
    ],
)
def test_compile_refuses_what_cannot_train_with_one_line_errors(optimizer, metrics, error, message):
    agent = _single_input_agent()
    if optimizer == "new-adam":
        optimizer = keras.optimizers.Adam()
    elif optimizer == "new-adamw":
        optimizer = keras.optimizers.AdamW()  # no legacy counterpart to suggest
    with pytest.raises(error, match=message) as err:
        agent.compile(optimizer, metrics=metrics)
    assert "\n" not in str(err.value) and not agent.compiled


def test_single_input_model_with_a_component_memory_is_a_clear_error():
    agent = _single_input_agent(RingMemory(100, components=2))
    with pytest.raises(ValueError, match=r"the model has 1 input\(s\) but its RingMemory stores 2 components"):
        agent.compile("sgd")
