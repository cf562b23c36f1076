"""harness.kerasrl.compat: keras-rl2 imports on TF 2.21, and keras-rl's own fit loop counts past 32,767."""

import numpy as np

from harness.kerasrl import compat


def test_keras_rl_imports_through_compat():
    import rl.agents.dqn
    import rl.callbacks
    from tensorflow.keras import __version__  # the import keras-rl's callbacks module makes

    assert compat.DQNAgent is rl.agents.dqn.DQNAgent
    assert __version__ == compat.keras.__version__
    assert "tf_keras" in compat.tf.keras.__file__, "tensorflow.keras must be tf-keras (Keras 2)"
    assert not compat.tf.executing_eagerly(), "keras-rl trains in graph mode"


class _CountingEnv:
    """A trivial old-gym env: episodes of 7 steps."""

    def reset(self):
        self.t = 0
        return np.zeros(1, dtype=np.float32)

    def step(self, action):
        self.t += 1
        return np.zeros(1, dtype=np.float32), 1.0, self.t >= 7, {}


class _NoOpAgent(compat.rl.core.Agent):
    """keras-rl's base Agent with a constant policy and no learning: the cheapest way to run
    keras-rl's own `fit` loop (the step and episode counters under test) for 100k+ steps."""

    compiled = True

    def forward(self, observation):
        return 0

    def backward(self, reward, terminal):
        return []

    @property
    def metrics_names(self):
        return []


def test_fit_loop_counts_past_int16():
    agent = _NoOpAgent()
    episodes = []

    class Count(compat.Callback):
        def on_episode_end(self, episode, logs):
            episodes.append(int(episode))

    nb_steps = 100_003
    agent.fit(_CountingEnv(), nb_steps=nb_steps, verbose=0, callbacks=[Count()])
    assert int(agent.step) == nb_steps
    assert len(episodes) == nb_steps // 7
    assert episodes[-1] == nb_steps // 7 - 1  # episode numbers kept counting past 32,767 too
