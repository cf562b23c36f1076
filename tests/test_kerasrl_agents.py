"""keras-rl2's agents under harness.kerasrl.compat, on TensorFlow 2.21.

DQN, SARSA and CEM on a tiny discrete env, DDPG and NAF on Pendulum-v1 (cut at 50 steps): each
compiles, fits 150-200 steps and tests two episodes, through the harness' gymnasium adapter.
The checks are learning-free: the step and episode counts of `fit` and `test`, finite rewards, and
that training changed every network it trains. Then `rl.util.clone_model` and `clone_optimizer`.
Each test builds on a fresh graph and session (`new_session`).
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from harness.kerasrl.adapters import KerasRLEnv
from harness.kerasrl.agents import new_session
from harness.kerasrl.compat import (
    CEMAgent,
    DDPGAgent,
    DQNAgent,
    EpisodeParameterMemory,
    NAFAgent,
    OrnsteinUhlenbeckProcess,
    SARSAAgent,
    SequentialMemory,
    backend,
    clone_model,
    clone_optimizer,
    keras,
)

layers = keras.layers
Adam = keras.optimizers.legacy.Adam  # keras-rl's graph-mode training needs the legacy optimizers

SIGN_EPISODE = 10  # steps in every episode of _SignEnv
PENDULUM_EPISODE = 50  # the time limit Pendulum-v1 is made with here


class _SignEnv(gymnasium.Env):
    """A two-action game with fixed-length episodes, so that step and episode counts are exact.

    Observation: a point in [-1, 1]^2, drawn anew each step. Action 1 earns 1 when the point's first
    coordinate is positive, action 0 when it is not; anything else earns 0. Episodes end after
    `SIGN_EPISODE` steps.
    """

    def __init__(self) -> None:
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._obs = self._draw()
        return self._obs, {}

    def step(self, action):
        reward = float(int(action) == int(self._obs[0] > 0))
        self._t += 1
        self._obs = self._draw()
        return self._obs, reward, self._t >= SIGN_EPISODE, False, {}

    def _draw(self) -> np.ndarray:
        return self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)


def _sign_env() -> KerasRLEnv:
    return KerasRLEnv(_SignEnv(), seed=0)


def _pendulum() -> KerasRLEnv:
    return KerasRLEnv(gymnasium.make("Pendulum-v1", max_episode_steps=PENDULUM_EPISODE), seed=0)


def _mlp(input_shape: tuple[int, ...], outputs: int, activation: str = "linear") -> keras.Model:
    return keras.Sequential(
        [
            layers.Flatten(input_shape=input_shape),
            layers.Dense(8, activation="relu"),
            layers.Dense(outputs, activation=activation),
        ]
    )


def _fit_and_test(agent, env: KerasRLEnv, nb_steps: int, episode: int, trained: dict[str, keras.Model]) -> None:
    """Fit `agent` for `nb_steps` and test it for two episodes; every episode lasts `episode` steps.

    `trained`: the networks that training must change (by name, for the message).
    """
    assert nb_steps % episode == 0
    before = {name: net.get_weights() for name, net in trained.items()}

    history = agent.fit(env, nb_steps=nb_steps, verbose=0)
    assert int(agent.step) == nb_steps
    assert history.history["nb_episode_steps"] == [episode] * (nb_steps // episode)
    assert history.history["nb_steps"][-1] == nb_steps
    assert np.all(np.isfinite(history.history["episode_reward"]))
    for name, net in trained.items():
        after = net.get_weights()
        assert len(after) == len(before[name])
        assert any(not np.array_equal(a, b) for a, b in zip(before[name], after)), f"fit did not change {name}"
        assert all(np.all(np.isfinite(w)) for w in after), f"{name} has non-finite weights after fit"

    result = agent.test(env, nb_episodes=2, visualize=False, verbose=0)
    assert result.history["nb_steps"] == [episode, episode]
    rewards = result.history["episode_reward"]
    assert len(rewards) == 2
    assert np.all(np.isfinite(rewards))


# --- Discrete: DQN, SARSA, CEM -------------------------------------------------------------------
def test_dqn_agent_dueling_double_soft_target():
    new_session(0)
    env = _sign_env()
    model = _mlp((1, 2), 2)
    agent = DQNAgent(
        model=model,
        nb_actions=2,
        memory=SequentialMemory(limit=1_000, window_length=1),
        nb_steps_warmup=50,
        batch_size=16,
        target_model_update=1e-2,  # soft: keras-rl's AdditionalUpdatesOptimizer
        enable_double_dqn=True,
        enable_dueling_network=True,  # a Lambda head, cloned for the target network
    )
    agent.compile(Adam(learning_rate=1e-3), metrics=["mae"])
    _fit_and_test(agent, env, 200, SIGN_EPISODE, {"model": agent.model, "target model": agent.target_model})


def test_sarsa_agent():
    new_session(0)
    env = _sign_env()
    agent = SARSAAgent(model=_mlp((1, 2), 2), nb_actions=2, nb_steps_warmup=10)
    agent.compile(Adam(learning_rate=1e-3), metrics=["mae"])
    _fit_and_test(agent, env, 200, SIGN_EPISODE, {"model": agent.model})


def test_cem_agent():
    new_session(0)
    env = _sign_env()
    agent = CEMAgent(
        model=_mlp((1, 2), 2, activation="softmax"),
        nb_actions=2,
        memory=EpisodeParameterMemory(limit=100, window_length=1),
        batch_size=5,
        nb_steps_warmup=50,
        train_interval=5,  # episodes
        elite_frac=0.4,
    )
    agent.compile()
    _fit_and_test(agent, env, 200, SIGN_EPISODE, {"model": agent.model})
    # The cross-entropy update ran: the sampling distribution moved off its N(0, 1) start.
    means, stds = np.split(agent.theta, 2)
    assert np.any(means != 0.0) and np.any(stds != 1.0)


# --- Continuous: DDPG, NAF -----------------------------------------------------------------------
def test_ddpg_agent():
    new_session(0)
    env = _pendulum()
    obs_shape = (1, *env.observation_space.shape)
    high = float(env.action_space.high[0])
    # The actor scales tanh to Pendulum's torque bound with a Lambda, which the target clone must copy.
    actor = keras.Sequential(
        [
            layers.Flatten(input_shape=obs_shape),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation="tanh"),
            layers.Lambda(lambda x: high * x),
        ]
    )
    action_input = layers.Input(shape=(1,), name="action_input")
    observation_input = layers.Input(shape=obs_shape, name="observation_input")
    x = layers.Concatenate()([action_input, layers.Flatten()(observation_input)])
    x = layers.Dense(8, activation="relu")(x)
    critic = keras.Model(inputs=[action_input, observation_input], outputs=layers.Dense(1)(x))
    agent = DDPGAgent(
        nb_actions=1,
        actor=actor,
        critic=critic,
        critic_action_input=action_input,
        memory=SequentialMemory(limit=1_000, window_length=1),
        nb_steps_warmup_critic=50,
        nb_steps_warmup_actor=50,
        batch_size=16,
        random_process=OrnsteinUhlenbeckProcess(size=1, theta=0.15, mu=0.0, sigma=0.3),
        target_model_update=1e-2,
    )
    agent.compile(Adam(learning_rate=1e-3))  # one optimizer: keras-rl clones it for the critic
    assert type(agent.critic.optimizer.optimizer) is Adam
    assert agent.critic.optimizer.optimizer is not agent.actor_optimizer
    _fit_and_test(
        agent,
        env,
        150,
        PENDULUM_EPISODE,
        {
            "actor": agent.actor,
            "critic": agent.critic,
            "target actor": agent.target_actor,
            "target critic": agent.target_critic,
        },
    )


@pytest.mark.parametrize("covariance_mode", ["full", "diag"])
def test_naf_agent(covariance_mode):
    new_session(0)
    env = _pendulum()
    obs_shape = (1, *env.observation_space.shape)
    nb_actions = 1
    action_input = layers.Input(shape=(nb_actions,), name="action_input")
    observation_input = layers.Input(shape=obs_shape, name="observation_input")
    x = layers.Concatenate()([action_input, layers.Flatten()(observation_input)])
    x = layers.Dense(8, activation="relu")(x)
    l_size = (nb_actions * nb_actions + nb_actions) // 2 if covariance_mode == "full" else nb_actions
    l_model = keras.Model(inputs=[action_input, observation_input], outputs=layers.Dense(l_size)(x))
    agent = NAFAgent(
        nb_actions=nb_actions,
        V_model=_mlp(obs_shape, 1),
        L_model=l_model,
        mu_model=_mlp(obs_shape, nb_actions),
        covariance_mode=covariance_mode,
        memory=SequentialMemory(limit=1_000, window_length=1),
        nb_steps_warmup=50,
        batch_size=16,
        random_process=OrnsteinUhlenbeckProcess(size=nb_actions, theta=0.15, mu=0.0, sigma=0.3),
        target_model_update=1e-2,
    )
    agent.compile(Adam(learning_rate=1e-3))
    # `fit` runs the graph (mu_model's forward pass) before the first train step builds the gradient
    # through NAFLayer's tf.scan: the order that broke without compat's output_all_intermediates.
    _fit_and_test(
        agent,
        env,
        150,
        PENDULUM_EPISODE,
        {"V": agent.V_model, "L": agent.L_model, "mu": agent.mu_model, "target V": agent.target_V_model},
    )


# --- rl.util: clone_model, clone_optimizer -------------------------------------------------------
def _assert_clone_independent(model: keras.Model, clone: keras.Model, inputs) -> None:
    assert clone is not model
    np.testing.assert_array_equal(clone.predict_on_batch(inputs), model.predict_on_batch(inputs))
    # Its own variables: changing the clone's weights leaves the original's alone.
    original = model.get_weights()
    clone.set_weights([w + 1.0 for w in clone.get_weights()])
    for a, b in zip(model.get_weights(), original):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(clone.predict_on_batch(inputs), model.predict_on_batch(inputs))


def test_clone_model_sequential():
    new_session(0)
    model = keras.Sequential([layers.Dense(8, input_shape=(3,)), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    clone = clone_model(model)
    clone.compile(optimizer="sgd", loss="mse")
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    _assert_clone_independent(model, clone, np.random.default_rng(0).random((4, 3)))


def test_clone_model_functional_two_inputs():
    new_session(0)
    in1, in2 = layers.Input(shape=(2,)), layers.Input(shape=(3,))
    model = keras.Model([in1, in2], layers.Dense(8)(layers.Concatenate()([in1, in2])))
    model.compile(optimizer="sgd", loss="mse")
    clone = clone_model(model)
    clone.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    _assert_clone_independent(model, clone, [rng.random((4, 2)), rng.random((4, 3))])


def _assert_same_optimizer(clone, optimizer) -> None:
    assert clone is not optimizer
    assert type(clone) is type(optimizer)
    assert clone.get_config() == optimizer.get_config()


def test_clone_optimizer_legacy_adam():
    new_session(0)
    optimizer = Adam(learning_rate=3e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-5, amsgrad=True, clipnorm=0.5)
    clone = clone_optimizer(optimizer)
    _assert_same_optimizer(clone, optimizer)
    assert clone.get_config()["learning_rate"] == pytest.approx(3e-3)
    assert clone.get_config()["clipnorm"] == 0.5


def test_clone_optimizer_after_training():
    """Once an optimizer has trained, its hyperparameters are graph variables; the clone reads them."""
    new_session(0)
    optimizer = Adam(learning_rate=2e-3, beta_1=0.7)
    model = keras.Sequential([layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer=optimizer, loss="mse")
    model.train_on_batch(np.ones((4, 3)), np.zeros((4, 2)))
    assert backend.get_value(optimizer.iterations) == 1
    clone = clone_optimizer(optimizer)
    _assert_same_optimizer(clone, optimizer)
    assert clone.get_config()["beta_1"] == pytest.approx(0.7)


@pytest.mark.parametrize("name, cls", [("sgd", "SGD"), ("adam", "Adam"), ("rmsprop", "RMSprop")])
def test_clone_optimizer_from_string(name, cls):
    new_session(0)
    clone = clone_optimizer(name)
    expected = getattr(keras.optimizers.legacy, cls)
    assert type(clone) is expected  # in graph mode a name means the legacy optimizer, which can train
    assert clone.get_config() == expected().get_config()
