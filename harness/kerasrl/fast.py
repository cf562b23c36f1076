"""The fast training path: keras-rl's DQNAgent and replay memory with the per-step overhead taken out.

This module owns `FastDQNAgent`; its memory, `RingMemory`, is harness.kerasrl.memory's. Both are
keras-rl classes (a `DQNAgent`, a `rl.memory.Memory`), so `fit`, `test`, keras-rl callbacks,
policies and processors work unchanged; `harness.kerasrl.agents` picks them when an experiment
has `fast_path=True` (the default).

Why: keras-rl's stock DQNAgent spends most of its time around TensorFlow, not in it. Per train
step it makes three Keras calls (`predict_on_batch` twice, `train_on_batch` once, which also
resets each metric's variables with further session calls), builds the batch with per-sample
Python loops and per-sample deep copies in `SequentialMemory.sample`, and fills the targets in a
Python loop; per action it makes one more `predict_on_batch`. The network itself is tiny.

What the fast path does instead, keeping keras-rl's semantics:

* `RingMemory`: preallocated NumPy arrays (observations kept in their own dtype, so uint8 frames
  stay uint8), a fixed size that never grows once full, and vectorised sampling that draws the
  same indexes from the same random generators as `SequentialMemory` (Python's `random`, NumPy's
  global generator) and returns the same transitions: the same `idx - 2` terminal check and
  re-draw, windows zero-padded where they would reach back into a previous episode.
* `FastDQNAgent.backward`: one session call per train step runs a single graph that computes the
  targets (target network on state1; Double DQN's argmax of the online network on state1), the
  masked element-wise loss (keras-rl's Huber with `delta_clip`, or the experiment's loss), the
  metrics keras-rl reports (`loss`, the compiled metrics such as `mae`, `mean_q`) and the
  optimizer's update (any legacy Keras optimizer, `RMSPropGraves` included), plus keras-rl's soft
  target update when `target_model_update < 1`.
* `FastDQNAgent.forward`: one session call of the online network per action.

A drop-in for `DQNAgent`: `compile` takes what stock `compile` takes (an optimizer name, resolved
as Keras' graph-mode compile resolves it, a legacy optimizer instance, metric names and functions;
see `graph_mode_optimizer`), and a model with several inputs trains on the same one-call path: its
observations are tuples of per-input arrays (what keras-rl's `MultiInputProcessor` takes), the
memory keeps each input's observations in an array of their own (RingMemory(components=n)) and the
graph has one state placeholder per input.

Session calls go through TensorFlow's callable API (`Session._make_callable_from_options`), the
mechanism Keras' own `backend.function` uses underneath; calling it directly skips the per-call
feed checks and variable-initialisation scan that `backend.function` repeats every call (about
80 microseconds a call here, more than the network itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from harness.kerasrl.compat import (
    CallableOptions,
    DQNAgent,
    MultiInputProcessor,
    Processor,
    backend,
    clone_model,
    huber_loss,
    keras,
    tf,
)
from harness.kerasrl.distributional import (
    ATOM_LOGITS,
    CategoricalQ,
    categorical_head,
    logits_model,
    project,
    support,
)
from harness.kerasrl.memory import Batch, RingMemory, States
from harness.kerasrl.noisy import noisy_layers
from harness.kerasrl.prioritized import PrioritizedRingMemory

__all__ = ["OPTIMIZER_NAMES", "FastDQNAgent", "graph_mode_optimizer"]

#: The optimizer names Keras resolves to legacy (graph-mode) optimizers, for error messages.
OPTIMIZER_NAMES = ("sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "ftrl")


def graph_mode_optimizer(optimizer: Any) -> Any:
    """The optimizer `DQNAgent.compile` would train with, resolved as Keras resolves it in graph mode.

    Stock keras-rl hands `optimizer` to the trainable model's `compile`, whose graph-mode
    (`training_v1`) version calls `keras.optimizers.get`: a name such as `"sgd"` or `"adam"` (or a
    config dict) becomes that legacy optimizer with Keras' defaults, a legacy instance is kept, a
    TF1 `tf.compat.v1.train.Optimizer` is wrapped. Graph-mode training needs `get_updates`, which
    a Keras 2.11+ optimizer (`keras.optimizers.Adam`, not `keras.optimizers.legacy.Adam`) lacks;
    stock keras-rl does not convert one (its first train step fails on the missing method), so
    neither does this: it is a one-line TypeError up front.
    """
    allowed = (
        f"an optimizer name ({', '.join(repr(n) for n in OPTIMIZER_NAMES)}) or a legacy Keras "
        "optimizer instance (keras.optimizers.legacy.*, harness' RMSPropGraves)"
    )
    try:
        resolved = keras.optimizers.get(optimizer)
    except (ValueError, TypeError):
        raise ValueError(f"FastDQNAgent.compile: unknown optimizer {optimizer!r}; expected {allowed}") from None
    if hasattr(resolved, "get_updates"):
        return resolved
    if isinstance(resolved, keras.optimizers.Optimizer):
        name = type(resolved).__name__
        counterpart = f", e.g. keras.optimizers.legacy.{name}" if hasattr(keras.optimizers.legacy, name) else ""
        raise TypeError(
            f"FastDQNAgent.compile: {name} is a Keras 2.11+ optimizer, which cannot train in graph mode "
            f"(no get_updates); expected {allowed}{counterpart}"
        )
    raise TypeError(
        f"FastDQNAgent.compile: {optimizer!r} cannot train in graph mode (no get_updates); expected {allowed}"
    )


def _metric_function(metric: Any) -> tuple[str, Callable]:
    """A compiled metric (a name or a `(y_true, y_pred)` function, as keras-rl takes them) and its label."""
    if isinstance(metric, str):
        return metric, keras.metrics.get(metric)
    if isinstance(metric, keras.metrics.Metric) or not callable(metric):
        raise TypeError(
            f"FastDQNAgent.compile: metric {metric!r} is not allowed; expected a metric name (e.g. 'mae') "
            "or a function (y_true, y_pred) -> tensor"
        )
    return metric.__name__, metric


# ---------------------------------------------------------------------------------------------
# Agent


def _make_callable(session: Any, feeds: list, fetches: list, targets: list | None = None) -> Callable:
    """A session callable: positional arrays for `feeds` -> list of fetched arrays (targets run too).

    The same CallableOptions mechanism tf-keras' `backend.function` is built on, without its
    per-call overhead (see the module docstring). Feeds must be arrays of the placeholders' dtype.
    """
    options = CallableOptions()
    options.feed.extend(t.name for t in feeds)
    options.fetch.extend(t.name for t in fetches)
    options.target.extend(op.name for op in (targets or []))
    return session._make_callable_from_options(options)


class FastDQNAgent(DQNAgent):
    """keras-rl's DQNAgent with one session call per train step and one per action.

    Takes DQNAgent's arguments, plus `loss_fn`: the element-wise TD loss `(y_true, y_pred) ->
    tensor` (None: keras-rl's Huber loss clipped at `delta_clip`, what stock `DQNAgent` trains
    with), and `n_step`: the number of stored transitions each target sums rewards over before it
    bootstraps (1: keras-rl's one-step target; see RingMemory.batch_at).

    Multi-input models (a list of Inputs; the networks in harness.kerasrl.models have one): each
    observation is a tuple or list of per-input arrays, as keras-rl's `MultiInputProcessor` takes
    them (a processor's `process_observation` can build it from a gymnasium Dict observation).
    Why the memory stores them per input: a RingMemory left with `components=None` is set to the
    model's number of inputs, so each input's observations sit in a preallocated array of their
    own dtype and a sampled batch is already the list of per-input arrays the network is fed; the
    alternative, keras-rl's SequentialMemory of tuples, rebuilds that list per train step with
    Python loops over every sample, window position and input (any keras-rl memory still works,
    with n_step=1). Measured for tests/test_multi_input.py's image-and-vector network, batch 32,
    window 4, on a loaded 2-core machine: sampling a batch and building its feeds takes 224
    microseconds from a RingMemory, 1,832 from a SequentialMemory. So
    `MultiInputProcessor.process_state_batch` (whose output the batch already is) is not called; a
    processor with its own `process_state_batch` is handed keras-rl's nested (batch, window, input)
    object array, as stock keras-rl hands it, and costs what it costs there (1,769 microseconds
    above). n-step returns and prioritized replay work per input the same way.

    `gradient_steps`: batches trained one after another at each training step (Stable-Baselines3's
    `gradient_steps`; 1: keras-rl's one); `backward` then reports their mean metrics.

    `bootstrap_truncation`: an episode cut by a time limit (gymnasium's `truncated`, reported by
    KerasRLEnv) ends as keras-rl ends it, but its last transition's target bootstraps from the
    state after it instead of stopping there (keras-rl stores the cut as terminal, the default).

    Beyond keras-rl: with `n_step` > 1 the target is `r_t + ... + gamma**(m-1) r_{t+m-1} +
    gamma**m Q_target(s_{t+m}, a*)` (m <= n, cut at a terminal); with a PrioritizedRingMemory the
    per-sample loss is multiplied by the batch's importance-sampling weights and the same session
    call returns |target - Q(s0, a)|, which becomes the drawn transitions' new priorities; a model
    ending in a CategoricalQ head trains on C51's cross-entropy (harness.kerasrl.distributional);
    a model with NoisyDense layers acts with noise while training and on its mean weights
    otherwise (harness.kerasrl.noisy).

    Semantics kept from keras-rl (`rl/agents/dqn.py`): transitions are stored every
    `memory_interval` steps; a batch is trained when `step > nb_steps_warmup` and
    `step % train_interval == 0`; targets are `r + gamma * Q_target(s1, a*) * (1 - terminal1)` with
    `a*` the online network's argmax (Double DQN) or the target network's (DQN); the loss is
    `loss_fn(targets, Q(s0))` masked to the taken action, summed over actions and averaged over the
    batch (plus any regulariser losses of the model); the target network is copied every
    `target_model_update` steps (>= 1) or moved by that fraction every train step (< 1);
    `backward` returns the metrics named by `metrics_names` (loss, the compiled metrics, mean_q,
    then the policy's and the processor's), NaN where no training happened. With one input the
    processor's `process_state_batch` sees (batch, window, *observation) arrays, as with stock
    keras-rl.

    One deliberate choice: keras-rl's soft target update reads the online weights in the same
    session call as the optimizer writes them, in no defined order. Here the soft update always
    uses the online weights from before this step's gradient step, and runs after the targets
    were computed, so a seed gives the same numbers every time.
    """

    def __init__(
        self,
        *args: Any,
        loss_fn: Callable | None = None,
        n_step: int = 1,
        bootstrap_truncation: bool = False,
        gradient_steps: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        if int(n_step) < 1:
            raise ValueError(f"n_step must be a positive integer; got {n_step!r}")
        self.n_step = int(n_step)
        if self.n_step > 1 and not isinstance(self.memory, RingMemory):
            raise ValueError("n_step > 1 needs a RingMemory (harness.kerasrl.memory)")
        if int(gradient_steps) < 1:
            raise ValueError(f"gradient_steps must be a positive integer; got {gradient_steps!r}")
        self.gradient_steps = int(gradient_steps)
        self.bootstrap_truncation = bool(bootstrap_truncation)
        if self.bootstrap_truncation and not isinstance(self.memory, RingMemory):
            raise ValueError("bootstrap_truncation needs a RingMemory (harness.kerasrl.memory)")
        self._env: Any = None  # the env `fit` runs, asked whether an episode end was a time-limit cut
        self.prioritized = isinstance(self.memory, PrioritizedRingMemory)
        self._metric_labels: list[str] = []

    # --- compile: build the graphs once -------------------------------------------------------
    def compile(self, optimizer: Any, metrics: list | None = None) -> None:
        """Build the train and acting graphs. `optimizer`: a name or an instance, as for
        DQNAgent.compile (see graph_mode_optimizer); `metrics`: names or (y_true, y_pred) functions."""
        optimizer = graph_mode_optimizer(optimizer)
        compiled_metrics = [_metric_function(metric) for metric in metrics or []]
        inputs = list(self.model.inputs)
        self._nb_inputs = len(inputs)
        self._check_memory_layout()
        # MultiInputProcessor's process_state_batch (and the base Processor's identity) would give the
        # per-input arrays a multi-input batch already is; see the class docstring.
        own_batch_step = None if self.processor is None else type(self.processor).process_state_batch
        self._batch_is_input = own_batch_step in (
            None,
            MultiInputProcessor.process_state_batch,
            Processor.process_state_batch,
        )

        # As keras-rl: the target network is a clone; neither model is trained through Keras, the
        # compile calls only make `predict` and friends available to users.
        self.target_model = clone_model(self.model, self.custom_model_objects)
        self.target_model.compile(optimizer="sgd", loss="mse")
        self.model.compile(optimizer="sgd", loss="mse")

        model, target = self.model, self.target_model
        self._input_dtypes = [t.dtype.as_numpy_dtype for t in inputs]
        self._input_dtype = self._input_dtypes[0]
        with backend.name_scope("fast_dqn"):
            state1s = [
                tf.compat.v1.placeholder(t.dtype, shape=t.shape, name="state1" if len(inputs) == 1 else f"state1_{k}")
                for k, t in enumerate(inputs)
            ]
            # The model is called with its inputs' own structure (one tensor, or a list in model.inputs' order).
            state1 = tf.nest.pack_sequence_as(model.input, state1s)
            actions = tf.compat.v1.placeholder(tf.int32, shape=(None,), name="action")
            rewards = tf.compat.v1.placeholder(tf.float32, shape=(None,), name="reward")
            # gamma**m, or 0 where the return reached a terminal (one-step: gamma * not terminal1).
            discounts = tf.compat.v1.placeholder(tf.float32, shape=(None,), name="discount")

            mask = tf.one_hot(actions, self.nb_actions, dtype=tf.float32)
            head = categorical_head(model)
            if head is None:
                target_q1, online_q1, returns, y_pred, per_sample, td = self._scalar_loss(
                    state1, actions, mask, rewards, discounts
                )
            else:
                target_q1, online_q1, returns, y_pred, per_sample, td = self._categorical_loss(
                    head, state1, actions, rewards, discounts
                )
            targets = mask * returns[:, None]
            extra_fetches, is_weights = [], None
            if self.prioritized:
                is_weights = tf.compat.v1.placeholder(tf.float32, shape=(None,), name="is_weight")
                per_sample = per_sample * is_weights
                extra_fetches.append(td)  # the new priorities, from this step's forward pass
            loss = tf.reduce_mean(per_sample)
            if model.losses:
                loss = loss + tf.add_n(model.losses)

            # keras-rl's metrics are compiled on the Q output against the targets array.
            metric_tensors, self._metric_labels = [], []
            for label, fn in compiled_metrics:
                metric_tensors.append(tf.reduce_mean(fn(targets, y_pred)))
                self._metric_labels.append(label)
            metric_tensors.append(tf.reduce_mean(tf.reduce_max(y_pred, axis=-1)))  # keras-rl's mean_q
            self._metric_labels.append("mean_q")

            train_op, hard_update = self._train_ops(model, target, optimizer, loss, returns)

            feeds = [*inputs, *state1s, actions, rewards, discounts]
            if is_weights is not None:
                feeds.append(is_weights)
            learning_phase = backend.learning_phase()
            self._train_learning_phase = isinstance(learning_phase, (tf.Tensor, tf.Variable))
            if self._train_learning_phase:
                feeds.append(learning_phase)  # Keras trains with the learning phase on (dropout etc.)

        # get_session initialises the variables Keras tracks (the optimizer's slots and iterations).
        session = tf.compat.v1.keras.backend.get_session()
        self._session = session
        self._train_fn = _make_callable(session, feeds, [loss] + metric_tensors + extra_fetches, [train_op])
        self._q_fn = _make_callable(session, inputs, [model.output])
        self._hard_update_fn = _make_callable(session, [], [], [hard_update])
        self._noise_fns = self._noise_switch(session)
        self._noise_on = True  # NoisyDense layers are built with their noise on
        # The pieces of a train step, for bench/train_step.py to time one at a time.
        self.train_graph = {
            "feeds": feeds,
            "target_q1": target_q1,
            "online_q1": online_q1,
            "loss": loss,
            "train_op": train_op,
        }
        self.optimizer = optimizer
        self.trainable_model = None  # the stock Keras training model is never built on this path
        self.compiled = True
        self.update_target_model_hard()  # the clone already has the weights; this checks the op runs

    def _scalar_loss(self, state1: Any, actions: Any, mask: Any, rewards: Any, discounts: Any) -> tuple:
        """keras-rl's targets and masked element-wise loss, and |delta| for prioritized replay."""
        model, target = self.model, self.target_model
        # Targets, as keras-rl computes them in NumPy: r + gamma * q masked by terminal1 (the same
        # float32 products as keras-rl's gamma * q * (1 - terminal1)), n-step or not.
        target_q1 = target(state1, training=False)
        online_q1 = model(state1, training=False) if self.enable_double_dqn else None
        if online_q1 is not None:
            best = tf.argmax(online_q1, axis=1, output_type=tf.int32)
            q1 = tf.gather(target_q1, best, axis=1, batch_dims=1)
        else:
            q1 = tf.reduce_max(target_q1, axis=1)
        returns = tf.stop_gradient(rewards + discounts * q1)
        # The loss keras-rl's Lambda layer computes, averaged over the batch as Keras does.
        y_pred = model.output
        loss_fn = self.loss_fn or (lambda y_true, y_hat: huber_loss(y_true, y_hat, self.delta_clip))
        per_sample = backend.sum(loss_fn(mask * returns[:, None], y_pred) * mask, axis=-1)
        q_taken = tf.gather(y_pred, actions, axis=1, batch_dims=1)
        td = tf.abs(returns - tf.cast(q_taken, tf.float32))
        return target_q1, online_q1, returns, y_pred, per_sample, td

    def _categorical_loss(self, head: CategoricalQ, state1: Any, actions: Any, rewards: Any, discounts: Any) -> tuple:
        """C51: the projected target distribution of the best next action (the online network's
        argmax under Double DQN, the target's otherwise) and the cross-entropy against the taken
        action's distribution, which is also prioritized replay's priority. `returns` is the
        projected distribution's mean, for keras-rl's metrics."""
        model, target = self.model, self.target_model
        z = support(head.v_min, head.v_max, head.atoms)
        target_p1 = head.probabilities(logits_model(target)(state1, training=False))
        target_q1 = tf.reduce_sum(target_p1 * z, axis=-1)
        online_q1 = model(state1, training=False) if self.enable_double_dqn else None
        best = tf.argmax(online_q1 if online_q1 is not None else target_q1, axis=1, output_type=tf.int32)
        next_p = tf.gather(target_p1, best, axis=1, batch_dims=1)
        projected = tf.stop_gradient(project(rewards, discounts, next_p, head.v_min, head.v_max))
        returns = tf.reduce_sum(projected * z, axis=-1)
        logits0 = tf.reshape(
            tf.cast(model.get_layer(ATOM_LOGITS).output, tf.float32), (-1, self.nb_actions, head.atoms)
        )
        log_p0 = tf.gather(tf.nn.log_softmax(logits0, axis=-1), actions, axis=1, batch_dims=1)
        per_sample = -tf.reduce_sum(projected * log_p0, axis=-1)
        return target_q1, online_q1, returns, model.output, per_sample, per_sample

    def _noise_switch(self, session: Any) -> dict[bool, Callable] | None:
        """Callables that turn the online network's noisy layers on or off (None: it has none)."""
        layers = noisy_layers(self.model)
        if not layers:
            return None
        switch = {}
        for on in (True, False):
            assigns = [tf.compat.v1.assign(layer.noise_scale, 1.0 if on else 0.0) for layer in layers]
            switch[on] = _make_callable(session, [], [], [tf.group(*assigns)])
        return switch

    def _sync_noise(self) -> None:
        """Noise on while training, off for greedy play (keras-rl's `test`, validation, `play`)."""
        if self._noise_fns is not None and bool(self.training) != self._noise_on:
            self._noise_on = bool(self.training)
            self._noise_fns[self._noise_on]()

    def _train_ops(self, model: Any, target: Any, optimizer: Any, loss: Any, returns: Any) -> tuple[Any, Any]:
        """The train op (the optimizer's step, the model's own updates and, when
        target_model_update < 1, the soft target update) and the hard target update op."""
        # Soft target update: reads of the online weights before the optimizer step, writes after
        # the targets (`returns`) were computed (see the class docstring).
        pre_reads = []
        if self.target_model_update < 1.0:
            pre_reads = [tf.identity(w) for w in model.weights]
        with tf.control_dependencies(pre_reads):
            updates = list(optimizer.get_updates(params=model.trainable_weights, loss=loss))
            updates += model.get_updates_for(None) + model.get_updates_for(model.inputs)
        update_ops = [u if isinstance(u, (tf.Operation, tf.Tensor)) else tf.compat.v1.assign(*u) for u in updates]
        if self.target_model_update < 1.0:
            # keras-rl's rule (rl.util.get_soft_target_model_updates): every weight of the
            # target moves by tau towards the online network's.
            tau = self.target_model_update
            with tf.control_dependencies([returns]):
                for target_weight, online_read in zip(target.weights, pre_reads, strict=True):
                    update_ops.append(
                        tf.compat.v1.assign(target_weight, tau * online_read + (1.0 - tau) * target_weight)
                    )
        train_op = tf.group(*update_ops, name="train")
        hard_update = tf.group(
            *[tf.compat.v1.assign(t, s) for t, s in zip(target.weights, model.weights, strict=True)],
            name="target_hard_update",
        )
        return train_op, hard_update

    # --- keras-rl Agent interface ---------------------------------------------------------------
    @property
    def metrics_names(self) -> list[str]:
        names = ["loss"] + list(self._metric_labels) + self.policy.metrics_names[:]
        if self.processor is not None:
            names += self.processor.metrics_names[:]
        return names

    def update_target_model_hard(self) -> None:
        if getattr(self, "_hard_update_fn", None) is None:
            super().update_target_model_hard()
        else:
            self._hard_update_fn()

    def _check_memory_layout(self) -> None:
        """A RingMemory stores what the model takes: arrays for one input, tuples for several."""
        memory, nb_inputs = self.memory, self._nb_inputs
        if not isinstance(memory, RingMemory):
            return  # keras-rl's memories store any observation (n_step=1, checked in __init__)
        if nb_inputs > 1 and memory.components is None:
            memory.use_components(nb_inputs)  # refuses once array observations are stored
        if memory.components != (None if nb_inputs == 1 else nb_inputs):
            raise ValueError(
                f"FastDQNAgent: the model has {nb_inputs} input(s) but its RingMemory stores "
                f"{'array observations' if memory.components is None else f'{memory.components} components'}; "
                "expected RingMemory(components=None) for one input, components=n (or None) for n inputs"
            )

    def _states(self, batch: np.ndarray) -> np.ndarray:
        """A (batch, window, *obs) array -> the network's input array (processor, then dtype)."""
        if self.processor is not None:
            batch = self.processor.process_state_batch(batch)
        return np.ascontiguousarray(batch, dtype=self._input_dtype)

    def _inputs(self, states: States) -> list[np.ndarray]:
        """A batch of states from the memory -> the network's feeds, one per input."""
        if self._nb_inputs == 1:
            return [self._states(cast(np.ndarray, states))]
        parts: Sequence = cast(tuple, states)
        if not self._batch_is_input:
            # keras-rl's nested batch of observation tuples, as its DQNAgent.process_state_batch makes it.
            assert self.processor is not None  # _batch_is_input is True without one
            batch, window = parts[0].shape[:2]
            nested = [[tuple(part[b, w] for part in parts) for w in range(window)] for b in range(batch)]
            parts = self.processor.process_state_batch(np.array(nested, dtype=object))
        return self._typed(parts)

    def _typed(self, parts: Sequence) -> list[np.ndarray]:
        if len(parts) != self._nb_inputs:
            raise ValueError(f"FastDQNAgent: the model has {self._nb_inputs} inputs; got {len(parts)} state arrays")
        return [np.ascontiguousarray(part, dtype=dtype) for part, dtype in zip(parts, self._input_dtypes, strict=True)]

    def _acting_inputs(self, state_batch: Sequence) -> list[np.ndarray]:
        """States as keras-rl hands them to acting (lists of observations) -> the network's feeds."""
        if self._nb_inputs == 1:
            return [self._states(np.asarray(state_batch))]
        if not self._batch_is_input:
            assert self.processor is not None  # _batch_is_input is True without one
            return self._typed(self.processor.process_state_batch(np.array(state_batch, dtype=object)))
        return self._typed(_per_input(state_batch, self._nb_inputs))

    def compute_batch_q_values(self, state_batch: Sequence) -> np.ndarray:
        self._sync_noise()
        q_values = self._q_fn(*self._acting_inputs(state_batch))[0]
        assert q_values.shape == (len(state_batch), self.nb_actions)
        return q_values

    def compute_q_values(self, state: Sequence) -> np.ndarray:
        self._sync_noise()
        if self._nb_inputs == 1:
            return self._q_fn(self._states(np.asarray(state)[None]))[0][0]
        return self._q_fn(*self._acting_inputs([state]))[0][0]

    def forward(self, observation: Any) -> Any:
        state = self.memory.get_recent_state(observation)
        q_values = self.compute_q_values(state)
        if self.training:
            action = self.policy.select_action(q_values=q_values)
        else:
            action = self.test_policy.select_action(q_values=q_values)
        self.recent_observation = observation
        self.recent_action = action
        return action

    def fit(self, env: Any, *args: Any, **kwargs: Any) -> Any:
        self._env = env
        return super().fit(env, *args, **kwargs)

    def backward(self, reward: float, terminal: bool) -> list:
        step = int(self.step)
        if step % self.memory_interval == 0:
            self.memory.append(self.recent_observation, self.recent_action, reward, terminal, training=self.training)
            if terminal and self.training and self.bootstrap_truncation and self._cut_by_time_limit():
                self.memory.mark_truncated()
        if not self.training:
            return [np.nan] * len(self.metrics_names)

        if step > self.nb_steps_warmup and step % self.train_interval == 0:
            metrics = self._train_burst()
            metrics += self.policy.metrics
            if self.processor is not None:
                metrics += self.processor.metrics
        else:
            metrics = [np.nan] * len(self.metrics_names)

        if self.target_model_update >= 1 and step % self.target_model_update == 0:
            self.update_target_model_hard()
        return metrics

    def _train_burst(self) -> list[float]:
        """`gradient_steps` train steps on fresh batches, one after another; their mean metrics."""
        if self.gradient_steps == 1:
            return self.train_on_batch(self.sample_batch())
        burst = [self.train_on_batch(self.sample_batch()) for _ in range(self.gradient_steps)]
        return [float(v) for v in np.mean(burst, axis=0)]

    def _cut_by_time_limit(self) -> bool:
        """Whether the episode that just ended was cut by a time limit (KerasRLEnv's
        `last_truncated`; keras-rl's `fit` passes no `info` to `backward`). An env without the
        attribute reports every end as the game's."""
        return bool(getattr(self._env, "last_truncated", False))

    def train_on_batch(self, batch: Batch) -> list[float]:
        """One train step on `batch` (one session call); prioritized replay's new priorities are
        stored. Returns the loss and the compiled metrics, mean_q last."""
        fetched = self._train_fn(*self.train_feeds(batch))
        if self.prioritized:
            self.memory.update_priorities(batch.slots, fetched.pop())
        return [float(v) for v in fetched]

    def sample_batch(self) -> Batch:
        """A training batch from the memory (any keras-rl memory; RingMemory skips the lists)."""
        if isinstance(self.memory, PrioritizedRingMemory):
            return self.memory.sample_batch(self.batch_size, self.gamma, self.n_step, step=int(self.step))
        if isinstance(self.memory, RingMemory):
            return self.memory.sample_batch(self.batch_size, self.gamma, self.n_step)
        experiences = self.memory.sample(self.batch_size)
        terminal1 = np.array([bool(e.terminal1) for e in experiences])
        state0: States
        bootstrap: States
        if self._nb_inputs == 1:
            state0 = np.array([e.state0 for e in experiences])
            bootstrap = np.array([e.state1 for e in experiences])
        else:
            state0 = _per_input([e.state0 for e in experiences], self._nb_inputs)
            bootstrap = _per_input([e.state1 for e in experiences], self._nb_inputs)
        return Batch(
            state0=state0,
            actions=np.array([e.action for e in experiences]),
            returns=np.array([e.reward for e in experiences], dtype=np.float32),
            bootstrap=bootstrap,
            discounts=np.where(terminal1, np.float32(0.0), np.float32(self.gamma)),
        )

    def train_feeds(self, batch: Batch | None = None) -> list[np.ndarray]:
        """A batch (a fresh sample if None) as the train graph's feeds (states through the
        processor, dtypes)."""
        if batch is None:
            batch = self.sample_batch()
        feeds = [
            *self._inputs(batch.state0),
            *self._inputs(batch.bootstrap),
            batch.actions.astype(np.int32),
            batch.returns.astype(np.float32),
            batch.discounts.astype(np.float32),
        ]
        if self.prioritized:
            assert batch.weights is not None  # PrioritizedRingMemory batches carry them
            feeds.append(batch.weights)
        if self._train_learning_phase:
            feeds.append(np.array(True))
        return feeds


def _per_input(states: Sequence, nb_inputs: int) -> tuple[np.ndarray, ...]:
    """keras-rl states (lists of window observations, each a tuple of per-input arrays) -> one
    (batch, window, *input) array per input, as MultiInputProcessor.process_state_batch builds them."""
    try:
        return tuple(np.array([[obs[i] for obs in state] for state in states]) for i in range(nb_inputs))
    except (KeyError, IndexError, TypeError, ValueError):
        kinds = sorted({type(obs).__name__ for state in states for obs in state})
        raise TypeError(
            f"FastDQNAgent: a model with {nb_inputs} inputs takes observations that are tuples or lists of "
            f"{nb_inputs} arrays (as keras-rl's MultiInputProcessor); got {', '.join(kinds)} "
            "(a processor's process_observation can make the tuple from a dict)"
        ) from None
