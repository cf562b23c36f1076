"""Network builders. An experiment names one (`network="dense"`) and its keyword arguments.

Every builder takes the network's `input_shape` (what keras-rl feeds it, after the processor) and
the number of actions, and returns an uncompiled Keras model with one linear Q value per action.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from harness.core.errors import UserError
from harness.kerasrl.compat import keras

layers = keras.layers


def dense(
    input_shape: Sequence[int], nb_actions: int, hidden: Sequence[int] = (32,), activation: str = "relu"
) -> keras.Model:
    """The article's 8x8 network: Flatten -> Dense(h, relu) for each h in `hidden` -> Dense(actions)."""
    model = keras.Sequential(name="dense_q")
    model.add(layers.InputLayer(input_shape=tuple(input_shape)))
    model.add(layers.Flatten())
    for units in hidden:
        model.add(layers.Dense(int(units), activation=activation))
    model.add(layers.Dense(nb_actions, activation="linear", name="q_values", dtype="float32"))
    return model


def conv(
    input_shape: Sequence[int],
    nb_actions: int,
    filters: Sequence[int] = (32, 64, 64),
    kernel_sizes: Sequence[int] = (8, 4, 3),
    strides: Sequence[int] = (4, 2, 1),
    hidden: int = 512,
    activation: str = "relu",
) -> keras.Model:
    """Three Conv2D layers (channels-last input: height, width, stacked frames), a dense relu layer
    and a linear Q head: the article's pixel network (DQN Nature defaults; small screens pass
    smaller kernels and strides)."""
    if not (len(filters) == len(kernel_sizes) == len(strides)):
        raise UserError(
            f"conv network: filters, kernel_sizes and strides must have the same length; "
            f"got {len(filters)}, {len(kernel_sizes)}, {len(strides)}"
        )
    if len(input_shape) != 3:
        raise UserError(
            f"conv network needs a (height, width, channels) input; got {tuple(input_shape)} "
            "(use a processor that arranges frames channels-last)"
        )
    model = keras.Sequential(name="conv_q")
    model.add(layers.InputLayer(input_shape=tuple(input_shape)))
    for n, k, s in zip(filters, kernel_sizes, strides, strict=True):
        model.add(layers.Conv2D(int(n), int(k), strides=int(s), padding="same", activation=activation))
    model.add(layers.Flatten())
    model.add(layers.Dense(int(hidden), activation=activation))
    model.add(layers.Dense(nb_actions, activation="linear", name="q_values", dtype="float32"))
    return model


NETWORKS: dict[str, Callable[..., keras.Model]] = {"dense": dense, "conv": conv}


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """Layers built inside compute in `precision`: "bfloat16" is Keras' mixed_bfloat16 policy
    (bfloat16 arithmetic, float32 variables). The Q head is float32 in every builder, so the Q
    values, the targets, the loss and the optimizer's slots stay float32; a cloned target network
    keeps each layer's policy (it is part of the layer's config)."""
    if precision == "float32":
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(f"mixed_{precision}")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_network(
    name: str, input_shape: Sequence[int], nb_actions: int, kwargs: dict, precision: str = "float32"
) -> keras.Model:
    """Build the named network; a name or argument that does not fit is a UserError."""
    if name not in NETWORKS:
        raise UserError(f"network={name!r} is unknown; expected one of {', '.join(NETWORKS)}")
    try:
        with precision_policy(precision):
            model = NETWORKS[name](tuple(input_shape), nb_actions, **kwargs)
    except UserError:
        raise
    except (TypeError, ValueError) as err:
        raise UserError(
            f"network {name!r} with {kwargs} does not build for input {tuple(input_shape)}: {err}"
        ) from None
    if tuple(model.output_shape) != (None, nb_actions):
        raise UserError(
            f"network {name!r} outputs {tuple(model.output_shape[1:])} values but the env has "
            f"{nb_actions} actions; the last layer must have one unit per action"
        )
    return model
