"""Noisy networks (Fortunato et al. 2018): `NoisyDense`, a dense layer with learned, factorised
Gaussian noise on its weights, and the switch that turns the noise off for greedy play.

keras-rl has no noisy layers. The layer draws fresh noise every time its graph runs: once per acting
step and independently for each network pass of a train step (the online network on the batch's
states, on its next states, and the target network), one draw shared by the batch, as in the
paper's DQN variant.

Why stateless random ops: a stateful TensorFlow random op keeps its position in the session's
kernels, where no checkpoint can reach it, so a resumed run would draw other noise. Here each use
of a layer in the graph (each "call site") has a counter variable that its own draws advance by
one, and the noise is `stateless_normal` keyed by (the call site's seed, the counter): the same
numbers every time for a seed, and a checkpoint that saves the counters (`noise_counters`)
resumes the noise exactly. The call site's seed comes from the graph seed, as a stateful op's would.

Greedy play (evaluation, validation rounds, `make play`, the demo GIF) uses the mean weights,
noise off: the greedy policy is then the network's own best guess, the same every time, so a run's
evaluation and its replay by `make play` give the same scores. Training acts with noise, which is
what explores.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

from harness.kerasrl.compat import keras, tf, track_variable

__all__ = ["NoisyDense", "noise_counters", "noisy_layers"]


def _scaled(noise: Any) -> Any:
    """f(x) = sign(x) sqrt(|x|), the paper's factorised-noise transform."""
    return tf.sign(noise) * tf.sqrt(tf.abs(noise))


class NoisyDense(keras.layers.Layer):
    """y = x (mu_W + sigma_W * eps_W) + mu_b + sigma_b * eps_b, with factorised noise
    eps_W = f(eps_in) f(eps_out)^T and eps_b = f(eps_out), eps ~ N(0, 1) drawn at every call.

    Initialisation as in the paper's factorised variant: mu ~ U(-1/sqrt(p), 1/sqrt(p)),
    sigma = sigma0 / sqrt(p), p the number of inputs. `noise_scale` (a variable, 1 or 0, not one
    of the layer's weights) multiplies the noise: FastDQNAgent turns it off for greedy play.
    """

    def __init__(self, units: int, activation: Any = None, sigma0: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.sigma0 = float(sigma0)

    def build(self, input_shape: Any) -> None:
        inputs = int(input_shape[-1])
        bound = 1.0 / math.sqrt(inputs)
        sigma = keras.initializers.Constant(self.sigma0 / math.sqrt(inputs))
        self.mu_kernel = self.add_weight(
            name="mu_kernel", shape=(inputs, self.units), initializer=keras.initializers.RandomUniform(-bound, bound)
        )
        self.sigma_kernel = self.add_weight(name="sigma_kernel", shape=(inputs, self.units), initializer=sigma)
        self.mu_bias = self.add_weight(
            name="mu_bias", shape=(self.units,), initializer=keras.initializers.RandomUniform(-bound, bound)
        )
        self.sigma_bias = self.add_weight(name="sigma_bias", shape=(self.units,), initializer=sigma)
        # The switch is a variable but not a weight of the layer (set past Keras' attribute
        # tracking): saved weights, loaded weights and the target network's hard copy never carry
        # it, so the target network's noise stays on and loading weights cannot turn noise off.
        scale = tf.compat.v1.Variable(1.0, trainable=False, dtype=tf.float32, name=f"{self.name}_noise_scale")
        object.__setattr__(self, "noise_scale", scale)
        track_variable(scale)  # Keras' session initialises the variables it tracks
        object.__setattr__(self, "draw_counters", [])  # one per call site, not weights either
        super().build(input_shape)

    def _draw_seeds(self) -> tuple[Any, Any]:
        """Two stateless seeds for this call site's next draw (see the module docstring)."""
        graph_seed, op_seed = tf.compat.v1.random.get_seed(None)  # the graph seed and this op's place
        if op_seed is None:  # no graph seed: still a seed of its own per call site
            graph_seed, op_seed = 0, zlib.crc32(f"{self.name}/{len(self.draw_counters)}".encode())
        key = (int(graph_seed) * 1_000_003 + int(op_seed)) * 2 % 2**62
        counter = tf.compat.v1.Variable(
            0, trainable=False, dtype=tf.int64, name=f"{self.name}_draws_{len(self.draw_counters)}"
        )
        track_variable(counter)  # Keras' session initialises it
        self.draw_counters.append(counter)
        draw = counter.assign_add(1)  # this call site's draws only: no other op races it
        first, second = (tf.stack([tf.constant(key + k, tf.int64), draw]) for k in (0, 1))
        return first, second

    def call(self, inputs: Any) -> Any:
        dtype = self.compute_dtype
        seed_in, seed_out = self._draw_seeds()
        eps_in = _scaled(tf.random.stateless_normal((self.mu_kernel.shape[0],), seed=seed_in, dtype=dtype))
        eps_out = _scaled(tf.random.stateless_normal((self.units,), seed=seed_out, dtype=dtype))
        mean = tf.matmul(inputs, self.mu_kernel) + self.mu_bias
        # x (sigma_W * f(eps_in) f(eps_out)^T) = ((x * f(eps_in)) sigma_W) * f(eps_out): no p x q noise matrix.
        # Building that matrix instead (one matmul) was measured slower: cave_rainbow 95 against 114 env steps/s.
        noise = (tf.matmul(inputs * eps_in, self.sigma_kernel) + self.sigma_bias) * eps_out
        return self.activation(mean + tf.cast(self.noise_scale, dtype) * noise)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units, activation=keras.activations.serialize(self.activation), sigma0=self.sigma0)
        return config


def noisy_layers(model: Any) -> list[NoisyDense]:
    """The model's NoisyDense layers, at any depth (nested models, layers holding layers such as
    the dueling atoms' streams)."""
    return [module for module in model.submodules if isinstance(module, NoisyDense)]


def noise_counters(model: Any) -> list[Any]:
    """The draw counters of the model's noisy layers, in the order they were made (a checkpoint
    saves their values; harness.kerasrl.checkpoint)."""
    return [counter for layer in noisy_layers(model) for counter in layer.draw_counters]
