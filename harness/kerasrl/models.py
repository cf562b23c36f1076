"""Network builders. An experiment names one (`network="dense"`) and its keyword arguments.

Every builder takes the network's `input_shape` (what keras-rl feeds it, after the processor) and
the number of actions, and returns an uncompiled Keras model with one linear Q value per action.
With `noisy_sigma0` set, the dense layers of the head are noisy (harness.kerasrl.noisy); with
`distribution=(atoms, v_min, v_max)` the Q head is categorical (harness.kerasrl.distributional),
its output still one Q value (the distribution's mean) per action.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

from harness.core.errors import UserError
from harness.kerasrl.compat import keras
from harness.kerasrl.distributional import ATOM_LOGITS, CategoricalQ, DuelingAtoms
from harness.kerasrl.noisy import NoisyDense

layers = keras.layers


INITS = ("glorot", "torch")


def _initializers(init: str, fan_in: int) -> dict[str, keras.initializers.Initializer]:
    """A plain Dense layer's initializers: Keras' own (Glorot-uniform weights, zero biases) for
    "glorot"; for "torch", PyTorch's nn.Linear default, weights and biases both U(+-1/sqrt(fan_in)),
    which the Stable-Baselines3 and CleanRL results were trained from. It matters on small inputs:
    MountainCar's 2 inputs get first-layer weights up to 0.71 instead of Glorot's 0.15, and biases
    that spread the ReLUs' kinks over the input range instead of all at zero."""
    if init == "glorot":
        return {}
    if init != "torch":
        raise UserError(f"network init={init!r} is unknown; expected one of {', '.join(INITS)}")
    bound = fan_in**-0.5
    return {
        # VarianceScaling(1/3, fan_in, uniform) is U(+-sqrt(3 * (1/3) / fan_in)), PyTorch's
        # kaiming_uniform_(a=sqrt(5)); a bias has no fan_in of its own, so its bound is fixed here.
        "kernel_initializer": keras.initializers.VarianceScaling(1 / 3, mode="fan_in", distribution="uniform"),
        "bias_initializer": keras.initializers.RandomUniform(-bound, bound),
    }


def _dense(
    units: int, noisy_sigma0: float | None, init: str = "glorot", fan_in: int = 1, **kwargs: object
) -> keras.layers.Layer:
    """A head layer: plain Dense with `init`'s initializers (fed `fan_in` inputs), or NoisyDense
    with initial sigma0 when `noisy_sigma0` is set (its mean weights have their own
    initialisation, Fortunato et al.'s U(+-1/sqrt(fan_in)), whatever `init` says)."""
    if noisy_sigma0 is None:
        return layers.Dense(units, **_initializers(init, fan_in), **kwargs)
    return NoisyDense(units, sigma0=noisy_sigma0, **kwargs)


# (atoms, v_min, v_max, dueling_type or None): C51's support, and its dueling head if any.
Distribution = tuple[int, float, float, str | None]


def _add_q_head(
    model: keras.Sequential,
    nb_actions: int,
    noisy_sigma0: float | None,
    distribution: Distribution | None,
    init: str = "glorot",
    fan_in: int = 1,
) -> None:
    """A linear Q value per action, or C51's atoms' logits and their mean per action (the plain
    layers initialised by `init`, fed `fan_in` inputs; the dueling atoms' streams keep Keras')."""
    head: dict[str, object] = {"activation": "linear", "dtype": "float32"}
    if distribution is None:
        model.add(_dense(nb_actions, noisy_sigma0, init, fan_in, name="q_values", **head))
        return
    atoms, v_min, v_max, dueling_type = distribution
    if dueling_type is None:
        model.add(_dense(nb_actions * atoms, noisy_sigma0, init, fan_in, name=ATOM_LOGITS, **head))
    else:
        model.add(DuelingAtoms(nb_actions, atoms, dueling_type, noisy_sigma0, name=ATOM_LOGITS, dtype="float32"))
    model.add(CategoricalQ(nb_actions, atoms, v_min, v_max, name="q_values"))


def dense(
    input_shape: Sequence[int],
    nb_actions: int,
    hidden: Sequence[int] = (32,),
    activation: str = "relu",
    noisy_sigma0: float | None = None,
    distribution: Distribution | None = None,
    init: str = "glorot",
) -> keras.Model:
    """The article's 8x8 network: Flatten -> Dense(h, relu) for each h in `hidden` -> Dense(actions).
    `init` names the dense layers' initializers: "glorot" (Keras') or "torch" (PyTorch's)."""
    model = keras.Sequential(name="dense_q")
    model.add(layers.InputLayer(input_shape=tuple(input_shape)))
    model.add(layers.Flatten())
    fan_in = math.prod(int(n) for n in input_shape)
    for units in hidden:
        model.add(_dense(int(units), noisy_sigma0, init, fan_in, activation=activation))
        fan_in = int(units)
    _add_q_head(model, nb_actions, noisy_sigma0, distribution, init, fan_in)
    return model


def conv_layers(
    input_shape: Sequence[int],
    filters: Sequence[int],
    kernel_sizes: Sequence[int],
    strides: Sequence[int],
    activation: str,
) -> list[keras.layers.Layer]:
    """The conv network's feature layers: the Conv2D layers and the Flatten after them (also the
    recurrent network's per-frame encoder, harness.kerasrl.recurrent)."""
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
    convs: list[keras.layers.Layer] = [
        layers.Conv2D(int(n), int(k), strides=int(s), padding="same", activation=activation)
        for n, k, s in zip(filters, kernel_sizes, strides, strict=True)
    ]
    return [*convs, layers.Flatten()]


def conv(
    input_shape: Sequence[int],
    nb_actions: int,
    filters: Sequence[int] = (32, 64, 64),
    kernel_sizes: Sequence[int] = (8, 4, 3),
    strides: Sequence[int] = (4, 2, 1),
    hidden: int = 512,
    activation: str = "relu",
    noisy_sigma0: float | None = None,
    distribution: Distribution | None = None,
) -> keras.Model:
    """Three Conv2D layers (channels-last input: height, width, stacked frames), a dense relu layer
    and a linear Q head: the article's pixel network (DQN Nature defaults; small screens pass
    smaller kernels and strides)."""
    model = keras.Sequential(name="conv_q")
    model.add(layers.InputLayer(input_shape=tuple(input_shape)))
    for layer in conv_layers(input_shape, filters, kernel_sizes, strides, activation):
        model.add(layer)
    model.add(_dense(int(hidden), noisy_sigma0, activation=activation))
    _add_q_head(model, nb_actions, noisy_sigma0, distribution)
    return model


NETWORKS: dict[str, Callable[..., keras.Model]] = {"dense": dense, "conv": conv}
# The harness' own layer classes, for reading a saved model.json back (classes, not code).
CUSTOM_LAYERS: dict[str, type] = {"NoisyDense": NoisyDense, "CategoricalQ": CategoricalQ, "DuelingAtoms": DuelingAtoms}


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
    name: str,
    input_shape: Sequence[int],
    nb_actions: int,
    kwargs: dict,
    precision: str = "float32",
    noisy_sigma0: float | None = None,
    distribution: Distribution | None = None,
) -> keras.Model:
    """Build the named network (its head noisy with initial sigma `noisy_sigma0` when set, and
    categorical over `distribution`'s atoms when set); a name or argument that does not fit is a
    UserError."""
    if name not in NETWORKS:
        raise UserError(f"network={name!r} is unknown; expected one of {', '.join(NETWORKS)}")
    if noisy_sigma0 is not None:
        kwargs = {**kwargs, "noisy_sigma0": noisy_sigma0}
    if distribution is not None:
        kwargs = {**kwargs, "distribution": distribution}
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
