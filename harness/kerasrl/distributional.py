"""Distributional DQN, C51 (Bellemare et al. 2017): the categorical Q head and the projected
Bellman target, for FastDQNAgent's train graph.

keras-rl's agents learn one value per action. Here the head gives, per action, a categorical
distribution over `atoms` fixed returns z_i evenly spaced in [v_min, v_max]; the network's output
stays its mean, sum_i p_i z_i, one Q value per action, so acting, keras-rl's `mean_q`, the test
policy and every tool that reads Q values work as with a scalar head. The train step reads the
atoms' logits (the layer named ATOM_LOGITS), projects the target distribution r + gamma^m z onto the
support (`project`) and minimises the cross-entropy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.kerasrl.compat import keras, tf
from harness.kerasrl.noisy import NoisyDense

__all__ = ["ATOM_LOGITS", "CategoricalQ", "DuelingAtoms", "categorical_head", "logits_model", "project", "support"]

# The name of the layer whose output holds the atoms' logits, (batch, actions * atoms).
ATOM_LOGITS = "atom_logits"


def support(v_min: float, v_max: float, atoms: int) -> np.ndarray:
    """The fixed returns of the atoms: `atoms` values evenly spaced from v_min to v_max (float32)."""
    return np.linspace(v_min, v_max, atoms, dtype=np.float32)


class CategoricalQ(keras.layers.Layer):
    """Atoms' logits (batch, actions * atoms) -> Q values (batch, actions), each the mean of its
    action's softmax distribution over the support."""

    def __init__(self, nb_actions: int, atoms: int, v_min: float, v_max: float, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # probabilities and Q values in float32 under mixed precision
        super().__init__(**kwargs)
        self.nb_actions, self.atoms = int(nb_actions), int(atoms)
        self.v_min, self.v_max = float(v_min), float(v_max)

    def probabilities(self, logits: Any) -> Any:
        logits = tf.cast(logits, tf.float32)
        return tf.nn.softmax(tf.reshape(logits, (-1, self.nb_actions, self.atoms)), axis=-1)

    def call(self, logits: Any) -> Any:
        z = tf.constant(support(self.v_min, self.v_max, self.atoms))
        return tf.reduce_sum(self.probabilities(logits) * z, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.nb_actions)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(nb_actions=self.nb_actions, atoms=self.atoms, v_min=self.v_min, v_max=self.v_max)
        return config


class DuelingAtoms(keras.layers.Layer):
    """The dueling architecture (Wang et al. 2016) for the atoms' logits, as Rainbow has it: a value
    stream V (atoms logits) and an advantage stream A (actions x atoms) from the same features,
    combined per atom as V + A - mean over actions of A (`dueling_type="avg"`), - max (`"max"`) or
    V + A (`"naive"`), keras-rl's three aggregations. Each stream is a Dense layer, or NoisyDense
    with `noisy_sigma0`. Output: (batch, actions * atoms) logits.

    Why a layer and not keras-rl's dueling option: keras-rl builds its dueling head on the scalar Q
    layer (one value per action), which a categorical head does not have.
    """

    def __init__(
        self,
        nb_actions: int,
        atoms: int,
        dueling_type: str = "avg",
        noisy_sigma0: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if dueling_type not in ("avg", "max", "naive"):
            raise ValueError(f"dueling_type must be avg, max or naive; got {dueling_type!r}")
        self.nb_actions, self.atoms, self.dueling_type = int(nb_actions), int(atoms), dueling_type
        self.noisy_sigma0 = noisy_sigma0

        def stream(units: int, name: str) -> Any:
            if noisy_sigma0 is None:
                return keras.layers.Dense(units, name=name, dtype=self.dtype_policy)
            return NoisyDense(units, sigma0=noisy_sigma0, name=name, dtype=self.dtype_policy)

        self.value = stream(self.atoms, "value")
        self.advantage = stream(self.nb_actions * self.atoms, "advantage")

    def call(self, features: Any) -> Any:
        value = tf.cast(self.value(features), tf.float32)[:, None, :]
        advantage = tf.reshape(tf.cast(self.advantage(features), tf.float32), (-1, self.nb_actions, self.atoms))
        if self.dueling_type == "avg":
            advantage = advantage - tf.reduce_mean(advantage, axis=1, keepdims=True)
        elif self.dueling_type == "max":
            advantage = advantage - tf.reduce_max(advantage, axis=1, keepdims=True)
        return tf.reshape(value + advantage, (-1, self.nb_actions * self.atoms))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.nb_actions * self.atoms)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            nb_actions=self.nb_actions,
            atoms=self.atoms,
            dueling_type=self.dueling_type,
            noisy_sigma0=self.noisy_sigma0,
        )
        return config


def categorical_head(model: Any) -> CategoricalQ | None:
    """The model's CategoricalQ layer (its last layer), or None for a scalar Q head."""
    last = model.layers[-1]
    return last if isinstance(last, CategoricalQ) else None


def logits_model(model: Any) -> Any:
    """A model sharing `model`'s layers whose output is the atoms' logits: call it on any input."""
    return keras.Model(model.inputs, model.get_layer(ATOM_LOGITS).output)


def project(returns: Any, discounts: Any, probabilities: Any, v_min: float, v_max: float) -> Any:
    """The categorical projection of the target distribution (Bellemare et al., Algorithm 1).

    Each atom z_j of the next state's distribution `probabilities` (batch, atoms) moves to
    Tz_j = clip(returns + discounts * z_j, v_min, v_max) and its probability is split between the
    two support atoms around it, in proportion to closeness (all of it to one atom when Tz_j falls
    on it). `discounts` is 0 for a transition whose return reached a terminal: every atom then
    moves to the clipped return. Returns (batch, atoms) probabilities.
    """
    atoms = int(probabilities.shape[-1])
    z = tf.constant(support(v_min, v_max, atoms))
    delta = (v_max - v_min) / (atoms - 1)
    moved = tf.clip_by_value(returns[:, None] + discounts[:, None] * z[None, :], v_min, v_max)
    position = (moved - v_min) / delta  # in [0, atoms - 1]
    lower, upper = tf.floor(position), tf.math.ceil(position)
    to_lower = (upper - position) + tf.cast(tf.equal(lower, upper), tf.float32)
    to_upper = position - lower
    lower_hot = tf.one_hot(tf.cast(lower, tf.int32), atoms)  # (batch, atoms, atoms)
    upper_hot = tf.one_hot(tf.cast(upper, tf.int32), atoms)
    weights = lower_hot * to_lower[..., None] + upper_hot * to_upper[..., None]
    return tf.einsum("bj,bjk->bk", probabilities, weights)
