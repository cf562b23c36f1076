"""Benchmark: the frames' layout (channels-last or channels-first), TensorFlow's thread pools and the
next-state passes fused or not, for a conv experiment's network.

`python -m bench.conv_layout cave_conv [--layout nchw] [--intra 1 --inter 2] [--next-states grouped]
[--repeats 200]` builds the experiment's conv network (its filters, kernels, strides and hidden
units) twice, online and target, in graph mode, and times a Double DQN train step on a random batch
(the target and online passes on the next states, the Huber loss on the states, Adam's update) and
one acting call, each the median of `--repeats` session calls.

- `--layout nchw` puts a transpose in front of `Conv2D(data_format="channels_first")`, as a
  channels-first network would have to, since the replay memory and the processor keep frames
  channels-last.
- `--intra`/`--inter` set the two thread pools apart (without `--inter`, the session is a run's:
  ops in the calling thread, harness.kerasrl.agents.new_session).
- `--next-states` says how the target and online networks run on the next states (both forward
  only, same input, different weights): `separate` (two passes, what the fast path does), `grouped`
  (one pass: the frames twice along the channels through grouped convolutions whose kernels are the
  two networks' side by side, then one batched matmul per dense layer) or `shared-first` (the first
  convolution once, with both networks' kernels side by side, the rest apart).

oneDNN is the experiment's choice (on for conv networks), and environment variables that change
the arithmetic (TF_ENABLE_ONEDNN_OPTS, DQN_HARNESS_THREADS) apply as they do to a run. Compare
settings by running this once per setting, alternating.

Not a fast-path option: none of these levers paid (docs/results.md, "Arithmetic: oneDNN and bfloat16").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from bench.train_step import _median_ms, report
from harness.cli import OneLineParser, positive_int, run_main

LAYOUTS = ("nhwc", "nchw")
NEXT_STATES = ("separate", "grouped", "shared-first")


def _network(keras: Any, kwargs: dict, input_shape: tuple, nb_actions: int, layout: str) -> Any:
    layers = keras.layers
    model = keras.Sequential()
    model.add(layers.InputLayer(input_shape=input_shape))
    data_format = "channels_last"
    if layout == "nchw":
        model.add(layers.Permute((3, 1, 2)))
        data_format = "channels_first"
    for filters, kernel, stride in zip(kwargs["filters"], kwargs["kernel_sizes"], kwargs["strides"], strict=True):
        model.add(
            layers.Conv2D(filters, kernel, strides=stride, padding="same", activation="relu", data_format=data_format)
        )
    model.add(layers.Flatten())
    model.add(layers.Dense(kwargs["hidden"], activation="relu"))
    model.add(layers.Dense(nb_actions))
    return model


def _layer_weights(model: Any) -> tuple[list, list]:
    """A network's convolutions as (kernel, bias, strides) and its dense layers as (kernel, bias)."""
    convs = [(layer.kernel, layer.bias, layer.strides) for layer in model.layers if hasattr(layer, "filters")]
    denses = [(layer.kernel, layer.bias) for layer in model.layers if hasattr(layer, "units")]
    return convs, denses


def next_state_q(tf: Any, online: Any, target: Any, state1: Any, mode: str) -> tuple[Any, Any]:
    """(online Q, target Q) on `state1`, computed as `mode` says (see the module docstring).

    The fused modes rebuild the networks' arithmetic from their weights (channels-last conv layers
    with "same" padding and relu, Flatten, dense relu layers, a linear head), so they hold for the
    networks `_network` builds with layout nhwc."""
    if mode == "separate":
        return online(state1), target(state1)
    online_convs, online_denses = _layer_weights(online)
    target_convs, target_denses = _layer_weights(target)

    def conv(x: Any, pair: tuple, other: tuple) -> Any:
        # Kernels side by side along the output channels: with an input of twice the kernel's input
        # channels, tf.nn.conv2d runs a grouped convolution (group 1 online, group 2 target).
        kernel, bias = tf.concat([pair[0], other[0]], -1), tf.concat([pair[1], other[1]], -1)
        return tf.nn.relu(tf.nn.conv2d(x, kernel, pair[2], "SAME") + bias)

    def rest(x: Any, convs: list, denses: list) -> Any:
        for kernel, bias, strides in convs:
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides, "SAME") + bias)
        x = tf.reshape(x, (tf.shape(x)[0], -1))
        for k, (kernel, bias) in enumerate(denses):
            x = tf.matmul(x, kernel) + bias
            x = tf.nn.relu(x) if k < len(denses) - 1 else x
        return x

    if mode == "shared-first":
        first = conv(state1, online_convs[0], target_convs[0])
        online_h, target_h = tf.split(first, 2, axis=-1)
        return rest(online_h, online_convs[1:], online_denses), rest(target_h, target_convs[1:], target_denses)
    x = tf.concat([state1, state1], axis=-1)
    for pair, other in zip(online_convs, target_convs, strict=True):
        x = conv(x, pair, other)
    halves = tf.split(x, 2, axis=-1)  # the flattened order of each half is its own network's
    h = tf.stack([tf.reshape(half, (tf.shape(half)[0], -1)) for half in halves])
    for k, (pair, other) in enumerate(zip(online_denses, target_denses, strict=True)):
        h = tf.matmul(h, tf.stack([pair[0], other[0]])) + tf.stack([pair[1], other[1]])[:, None]
        h = tf.nn.relu(h) if k < len(online_denses) - 1 else h
    return h[0], h[1]


def measure(
    name: str, layout: str, intra: int | None, inter: int | None, repeats: int, next_states: str = "separate"
) -> dict[str, Any]:
    import numpy as np

    from harness.core.registry import resolve_experiment
    from harness.core.schema import choose_onednn

    exp = resolve_experiment(name)
    if exp.network != "conv":
        raise SystemExit(f"error: bench.conv_layout times conv networks; {name} has network={exp.network!r}")
    choose_onednn(exp)  # as `python -m harness run` does, before TensorFlow loads
    from harness.kerasrl import compat
    from harness.kerasrl.agents import build_model, make_env, make_processor, new_session
    from harness.kerasrl.compat import keras, tf
    from harness.kerasrl.fast import _make_callable

    if layout == "nchw" and not compat.ONEDNN:
        raise SystemExit(
            "error: --layout nchw needs oneDNN (TensorFlow's own CPU kernels train convolutions in NHWC "
            "only); unset TF_ENABLE_ONEDNN_OPTS or set it to 1"
        )
    if layout == "nchw" and next_states != "separate":
        raise SystemExit(f"error: --next-states {next_states} is built for --layout nhwc; got --layout nchw")
    if intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    new_session(0)  # a run's session: ops in the calling thread, the intra-op pool for big ops
    if inter is not None:
        config = tf.compat.v1.ConfigProto(
            allow_soft_placement=True,
            inter_op_parallelism_threads=inter,
            intra_op_parallelism_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        )
        tf.compat.v1.keras.backend.set_session(tf.compat.v1.Session(config=config))
    env = make_env(exp, seed=0)
    # The experiment's own network tells the input shape (after its processor and window) and the
    # layers' sizes, defaults included.
    reference = build_model(exp, env, make_processor(exp))
    env.close()
    input_shape = tuple(int(n) for n in reference.input_shape[1:])
    nb_actions = int(reference.output_shape[-1])
    convs = [layer for layer in reference.layers if isinstance(layer, keras.layers.Conv2D)]
    kwargs = {
        "filters": [layer.filters for layer in convs],
        "kernel_sizes": [layer.kernel_size[0] for layer in convs],
        "strides": [layer.strides[0] for layer in convs],
        "hidden": reference.layers[-2].units,
    }
    online = _network(keras, kwargs, input_shape, nb_actions, layout)
    target = _network(keras, kwargs, input_shape, nb_actions, layout)

    s0 = tf.compat.v1.placeholder(tf.float32, (None, *input_shape))
    s1 = tf.compat.v1.placeholder(tf.float32, (None, *input_shape))
    rewards = tf.compat.v1.placeholder(tf.float32, (None,))
    actions = tf.compat.v1.placeholder(tf.int32, (None,))
    online_q1, target_q1 = next_state_q(tf, online, target, s1, next_states)
    best = tf.argmax(online_q1, axis=1)
    targets = tf.stop_gradient(rewards + exp.gamma * tf.gather(target_q1, best, batch_dims=1))
    chosen = tf.gather(online(s0), actions, batch_dims=1)
    loss = tf.reduce_mean(tf.keras.losses.huber(targets[:, None], chosen[:, None]))
    updates = keras.optimizers.legacy.Adam(exp.learning_rate).get_updates(loss, online.trainable_weights)
    session = tf.compat.v1.keras.backend.get_session()
    train = _make_callable(session, [s0, s1, rewards, actions], [loss], [tf.group(*updates)])
    act = _make_callable(session, [s0], [online(s0)])

    rng = np.random.default_rng(0)
    batch = [
        rng.random((exp.batch_size, *input_shape), dtype=np.float32),
        rng.random((exp.batch_size, *input_shape), dtype=np.float32),
        rng.random(exp.batch_size, dtype=np.float32),
        rng.integers(0, nb_actions, exp.batch_size).astype(np.int32),
    ]
    state = rng.random((1, *input_shape), dtype=np.float32)
    return {
        "experiment": name,
        "layout": layout,
        "onednn": compat.ONEDNN,
        "intra": intra,
        "inter": inter,
        "next_states": next_states,
        "median_ms": {
            "train": round(_median_ms(lambda: train(*batch), repeats), 3),
            "act": round(_median_ms(lambda: act(state), repeats), 3),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.conv_layout", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="cave_conv", help="a conv experiment (cave_conv)")
    parser.add_argument("--layout", choices=LAYOUTS, default="nhwc", help="the convolutions' layout (nhwc)")
    parser.add_argument("--intra", type=positive_int("--intra"), help="intra-op threads (TensorFlow's default)")
    parser.add_argument("--inter", type=positive_int("--inter"), help="inter-op threads (TensorFlow's default)")
    parser.add_argument(
        "--next-states", choices=NEXT_STATES, default="separate", help="the next-state passes, fused or not (separate)"
    )
    parser.add_argument("--repeats", type=positive_int("--repeats"), default=200, help="timed calls (200)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    return run_main(parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    result = measure(args.name, args.layout, args.intra, args.inter, args.repeats, args.next_states)
    threads = f"intra {args.intra or 'default'}, inter {args.inter or 'default'}"
    title = f"{args.name} {args.layout} ({threads}, next states {args.next_states}), median of {args.repeats} calls:"
    return report(result, args.json, title)


if __name__ == "__main__":
    sys.exit(main())
