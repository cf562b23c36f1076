"""Recurrent DQN (DRQN, Hausknecht & Stone 2015, with R2D2's burn-in, Kapturowski et al. 2019):
the network (`recurrent_network`) and the agent (`RecurrentDQNAgent`).

The network is a per-frame encoder (the named builder's feature layers: the conv network's Conv2D
layers and Flatten, or the dense network's Flatten and hidden layers), an LSTM, and the Q head
(linear, dueling, or C51's categorical head). As a Keras model it takes a sequence of frames
(batch, time, *frame) and returns the Q values after the last one, starting from a zero state, so
keras-rl's checks, `predict`, `model.json` and the HDF5 weights work unchanged. The agent does not
run that model: it calls its three parts (ENCODER, LSTM, HEAD) itself, one step at a time when
acting and unrolled over a replayed sequence when training.

The agent is a FastDQNAgent (so a keras-rl DQNAgent: `fit`, `test`, callbacks, processors,
policies and optimizers work) with

* acting: one session call per step feeds the observation and the LSTM state (h, c) and fetches
  the Q values and the next state; the state is kept between steps and set to zero by
  `reset_states`, which keras-rl's `fit` and `test` call at every episode start (so training,
  evaluation, `make play` and the demo GIF start every episode from zero), and which the
  validation loop (harness.kerasrl.callbacks.play_greedy) calls too, keeping the interrupted
  training episode's state aside (`acting_state`);
* training: one session call per train step on a SequenceBatch (harness.kerasrl.sequence_memory):
  the online and the target network run from a zero state through the burn-in steps (no loss;
  the online state after them is cut from the gradient), then on through the loss steps and the
  bootstrap observations; the target of each loss step is its n-step return plus the discounted
  target network's value of the bootstrap observation's action chosen by the online network
  (Double DQN) or by the target network; the loss is keras-rl's Huber (or the experiment's loss)
  averaged over the unmasked loss steps (C51: the cross-entropy of the projected target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.core.errors import UserError
from harness.kerasrl.compat import Callback, backend, clone_model, huber_loss, keras, tf
from harness.kerasrl.distributional import ATOM_LOGITS, DuelingAtoms, categorical_head, project, support
from harness.kerasrl.fast import FastDQNAgent, _make_callable, _metric_function, graph_mode_optimizer
from harness.kerasrl.models import CUSTOM_LAYERS, Distribution, _add_q_head, conv_layers, precision_policy
from harness.kerasrl.sequence_memory import SequenceBatch, SequenceMemory

__all__ = ["ENCODER", "HEAD", "LSTM", "Memoryless", "RecurrentDQNAgent", "recurrent_network"]

#: The names of the recurrent model's three parts.
ENCODER, LSTM, HEAD = "frame_encoder", "lstm", "q_head"

layers = keras.layers


# ---------------------------------------------------------------------------------------------
# Network


def _encoder_layers(network: str, frame_shape: Sequence[int], kwargs: dict) -> list:
    """The named network's feature layers for one frame (its layers before the Q head, DRQN's
    way: the LSTM takes the place of the conv network's dense hidden layer)."""
    kwargs = dict(kwargs)
    activation = kwargs.pop("activation", "relu")
    if network == "conv":
        if "hidden" in kwargs:
            raise UserError(
                "recurrent conv network: the LSTM (lstm_units) takes the place of the dense hidden layer; "
                "expected network_kwargs without 'hidden'"
            )
        options = {"filters": (32, 64, 64), "kernel_sizes": (8, 4, 3), "strides": (4, 2, 1)}
        unknown = sorted(set(kwargs) - set(options))
        if unknown:
            raise UserError(f"recurrent conv network: unknown network_kwargs {unknown}; expected {sorted(options)}")
        options.update(kwargs)
        return conv_layers(frame_shape, activation=activation, **options)
    if network == "dense":
        unknown = sorted(set(kwargs) - {"hidden"})
        if unknown:
            raise UserError(f"recurrent dense network: unknown network_kwargs {unknown}; expected hidden, activation")
        hidden = kwargs.get("hidden", ())
        return [layers.Flatten(), *(layers.Dense(int(units), activation=activation) for units in hidden)]
    raise UserError(f"recurrent=true with network={network!r}; expected conv or dense")


def recurrent_network(
    network: str,
    frame_shape: Sequence[int],
    nb_actions: int,
    kwargs: dict,
    lstm_units: int,
    dueling_type: str | None = None,
    noisy_sigma0: float | None = None,
    distribution: Distribution | None = None,
    precision: str = "float32",
) -> keras.Model:
    """frames (batch, time, *frame_shape) -> TimeDistributed(encoder) -> LSTM(lstm_units) -> Q head
    (dueling when `dueling_type` is set, noisy with `noisy_sigma0`, C51 over `distribution`)."""
    frame_shape = tuple(int(d) for d in frame_shape)
    try:
        with precision_policy(precision):
            encoder = keras.Sequential(name="encoder")
            encoder.add(layers.InputLayer(input_shape=frame_shape))
            for layer in _encoder_layers(network, frame_shape, kwargs):
                encoder.add(layer)
            head = keras.Sequential(name=HEAD)
            head.add(layers.InputLayer(input_shape=(int(lstm_units),)))
            if dueling_type is not None and distribution is None:
                # One atom per action is the scalar dueling head: V + A - mean(A) (or max, or naive).
                head.add(DuelingAtoms(nb_actions, 1, dueling_type, noisy_sigma0, name="q_values", dtype="float32"))
            else:
                _add_q_head(head, nb_actions, noisy_sigma0, distribution)
            frames = layers.Input(shape=(None, *frame_shape), name="frames")
            features = layers.TimeDistributed(encoder, name=ENCODER)(frames)
            last = layers.LSTM(int(lstm_units), name=LSTM)(features)
            q_values = head(last)
    except UserError:
        raise
    except (TypeError, ValueError) as err:
        raise UserError(
            f"recurrent network {network!r} with {kwargs} does not build for frames {frame_shape}: {err}"
        ) from None
    return keras.Model(frames, q_values, name="drqn")


def _parts(model: keras.Model) -> tuple[Any, Any, Any]:
    """(encoder, LSTM cell, head) of a recurrent_network model."""
    try:
        return model.get_layer(ENCODER).layer, model.get_layer(LSTM).cell, model.get_layer(HEAD)
    except ValueError:
        raise ValueError(
            f"RecurrentDQNAgent needs a model built by recurrent_network (layers {ENCODER}, {LSTM}, {HEAD})"
        ) from None


def _lstm_step(cell: Any, projected: Any, h: Any, c: Any) -> tuple[Any, Any]:
    """One step of the LSTM cell's own equations (tf-keras' LSTMCell, implementation 2) from the
    input already multiplied by the cell's kernel: the (batch, 4 units) input projection is the
    big matmul (2,304 conv features x 4 x 512 units), done for all steps at once by `_project`."""
    z = projected + tf.matmul(h, cell.recurrent_kernel)
    if cell.use_bias:
        z = tf.nn.bias_add(z, cell.bias)
    z0, z1, z2, z3 = tf.split(z, 4, axis=1)
    c = cell.recurrent_activation(z1) * c + cell.recurrent_activation(z0) * cell.activation(z2)
    h = cell.recurrent_activation(z3) * cell.activation(c)
    return h, c


def _project(cell: Any, features: Any) -> Any:
    """features (batch, T, F) -> their input projections (batch, T, 4 units), one matmul."""
    steps, width = int(features.shape[1]), int(features.shape[2])
    flat = tf.matmul(tf.reshape(features, (-1, width)), cell.kernel)
    return tf.reshape(flat, (-1, steps, 4 * cell.units))


def _unroll(cell: Any, features: Any, valid: Any, state: tuple[Any, Any]) -> tuple[Any, tuple[Any, Any]]:
    """The LSTM over features (batch, T, F) from `state`; where valid[:, t] is 0 the state is kept
    (a burn-in position before the episode's start keeps the zero state). Returns the outputs
    (batch, T, units) and the last state."""
    h, c = state
    projected = _project(cell, features)
    outputs = []
    for t in range(int(features.shape[1])):
        h_next, c_next = _lstm_step(cell, projected[:, t], h, c)
        keep = valid[:, t : t + 1] > 0
        h, c = tf.where(keep, h_next, h), tf.where(keep, c_next, c)
        outputs.append(h)
    return tf.stack(outputs, axis=1), (h, c)


def _encode(encoder: Any, frames: Any, frame_shape: tuple[int, ...], steps: int) -> Any:
    """frames (batch, steps, *frame) -> features (batch, steps, F), the encoder run on every frame at once."""
    flat = tf.reshape(frames, (-1, *frame_shape))
    features = tf.cast(encoder(flat, training=False), tf.float32)
    return tf.reshape(features, (-1, steps, int(features.shape[-1])))


def _per_step(head: Any, outputs: Any, steps: int, logits: bool = False) -> Any:
    """The head on every step's LSTM output: (batch, steps, actions), or its logits."""
    flat = tf.reshape(outputs, (-1, int(outputs.shape[-1])))
    values = head(flat, training=False)
    return tf.reshape(tf.cast(values, tf.float32), (-1, steps, int(values.shape[-1])))


# ---------------------------------------------------------------------------------------------
# Agent


class RecurrentDQNAgent(FastDQNAgent):
    """FastDQNAgent for a recurrent_network model trained on a SequenceMemory (see the module
    docstring). Takes FastDQNAgent's arguments plus `sequence_length` (loss steps per replayed
    sequence) and `burn_in` (steps before them that only warm the state up). `batch_size` counts
    sequences. Not supported: prioritized replay, keras-rl's dueling option (the network builds its
    own dueling head), several inputs, window_length > 1 (the LSTM is the memory)."""

    #: play_greedy and the tests look for this: the agent carries a state from step to step.
    recurrent = True

    def __init__(self, *args: Any, sequence_length: int = 10, burn_in: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if int(sequence_length) < 1 or int(burn_in) < 0:
            raise ValueError(
                f"RecurrentDQNAgent: sequence_length={sequence_length!r}, burn_in={burn_in!r}; "
                "expected sequence_length >= 1 and burn_in >= 0"
            )
        self.sequence_length, self.burn_in = int(sequence_length), int(burn_in)
        if not isinstance(self.memory, SequenceMemory):
            raise ValueError("RecurrentDQNAgent trains on sequences: its memory must be a SequenceMemory")
        if self.enable_dueling_network:
            raise ValueError(
                "RecurrentDQNAgent: keras-rl's dueling option would replace the LSTM's head; "
                "build the network with recurrent_network(dueling_type=...) instead"
            )
        self._h: np.ndarray | None = None
        self._c: np.ndarray | None = None

    # --- compile ------------------------------------------------------------------------------
    def compile(self, optimizer: Any, metrics: list | None = None) -> None:
        """Build the acting and train graphs (arguments as FastDQNAgent.compile)."""
        optimizer = graph_mode_optimizer(optimizer)
        compiled_metrics = [_metric_function(metric) for metric in metrics or []]
        if len(self.model.inputs) != 1:
            raise ValueError("RecurrentDQNAgent: the model must have one input (a sequence of frames)")
        self._nb_inputs, self._batch_is_input = 1, True
        # The encoder and the head are nested models, rebuilt from their configs: with the harness' layers known.
        with keras.utils.custom_object_scope({**CUSTOM_LAYERS, **self.custom_model_objects}):
            self.target_model = clone_model(self.model, self.custom_model_objects)
        self.target_model.compile(optimizer="sgd", loss="mse")
        self.model.compile(optimizer="sgd", loss="mse")
        model, target = self.model, self.target_model
        encoder, cell, head = _parts(model)
        t_encoder, t_cell, t_head = _parts(target)
        self._frame_shape = tuple(int(d) for d in model.input.shape[2:])
        self._input_dtype = model.input.dtype.as_numpy_dtype
        self._input_dtypes = [self._input_dtype]
        self._units = int(cell.units)
        self._categorical = categorical_head(head)
        K, L, n = self.burn_in, self.sequence_length, self.n_step
        P = K + L + n

        with backend.name_scope("recurrent_dqn"):
            # Acting: one step from the fed state.
            frame = tf.compat.v1.placeholder(model.input.dtype, shape=(None, *self._frame_shape), name="frame")
            h_in = tf.compat.v1.placeholder(tf.float32, shape=(None, self._units), name="h")
            c_in = tf.compat.v1.placeholder(tf.float32, shape=(None, self._units), name="c")
            feature = tf.cast(encoder(frame, training=False), tf.float32)
            h_out, c_out = _lstm_step(cell, tf.matmul(feature, cell.kernel), h_in, c_in)
            q_act = tf.cast(head(h_out, training=False), tf.float32)

            # Training: see SequenceBatch for the feeds.
            frames = tf.compat.v1.placeholder(model.input.dtype, shape=(None, *self._frame_shape), name="frames")
            valid = tf.compat.v1.placeholder(tf.float32, shape=(None, P), name="valid")
            actions = tf.compat.v1.placeholder(tf.int32, shape=(None, L), name="action")
            rewards = tf.compat.v1.placeholder(tf.float32, shape=(None, L), name="reward")
            discounts = tf.compat.v1.placeholder(tf.float32, shape=(None, L), name="discount")
            bootstrap = tf.compat.v1.placeholder(tf.int32, shape=(None, L), name="bootstrap")
            mask = tf.compat.v1.placeholder(tf.float32, shape=(None, L), name="mask")

            sequences = tf.reshape(frames, (-1, P, *self._frame_shape))
            zero = tf.zeros(tf.stack([tf.shape(valid)[0], self._units]))
            # Online network: burn-in from zero, its state cut from the gradient, then the rest.
            state = (zero, zero)
            if K:
                _, state = _unroll(cell, _encode(encoder, sequences[:, :K], self._frame_shape, K), valid[:, :K], state)
                state = (tf.stop_gradient(state[0]), tf.stop_gradient(state[1]))
            rest, _ = _unroll(cell, _encode(encoder, sequences[:, K:], self._frame_shape, L + n), valid[:, K:], state)
            online_q = _per_step(head, rest, L + n)  # positions K ... P-1
            # Target network: every position from zero.
            t_out, _ = _unroll(t_cell, _encode(t_encoder, sequences, self._frame_shape, P), valid, (zero, zero))
            loss_q = online_q[:, :L]
            online_q1 = tf.gather(online_q, bootstrap - K, axis=1, batch_dims=1)  # (batch, L, actions)
            if self._categorical is None:
                target_q1 = tf.gather(_per_step(t_head, t_out, P), bootstrap, axis=1, batch_dims=1)
                per_step, returns = self._scalar_loss_steps(loss_q, online_q1, target_q1, actions, rewards, discounts)
            else:
                per_step, returns, target_q1 = self._categorical_loss_steps(
                    head, t_head, rest, t_out, online_q1, bootstrap, actions, rewards, discounts
                )
            loss = tf.reduce_sum(per_step * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
            if model.losses:
                loss = loss + tf.add_n(model.losses)

            # keras-rl's metrics on the loss steps that are real transitions (as if they were a batch).
            taken = tf.reshape(mask, (-1,)) > 0
            y_pred = tf.boolean_mask(tf.reshape(loss_q, (-1, self.nb_actions)), taken)
            targets = tf.boolean_mask(
                tf.reshape(tf.one_hot(actions, self.nb_actions) * returns[..., None], (-1, self.nb_actions)), taken
            )
            metric_tensors, self._metric_labels = [], []
            for label, fn in compiled_metrics:
                metric_tensors.append(tf.reduce_mean(fn(targets, y_pred)))
                self._metric_labels.append(label)
            metric_tensors.append(tf.reduce_mean(tf.reduce_max(y_pred, axis=-1)))
            self._metric_labels.append("mean_q")

            train_op, hard_update = self._train_ops(model, target, optimizer, loss, returns)
            feeds = [frames, valid, actions, rewards, discounts, bootstrap, mask]
            learning_phase = backend.learning_phase()
            self._train_learning_phase = isinstance(learning_phase, (tf.Tensor, tf.Variable))
            if self._train_learning_phase:
                feeds.append(learning_phase)

        session = tf.compat.v1.keras.backend.get_session()
        self._session = session
        self._train_fn = _make_callable(session, feeds, [loss, *metric_tensors], [train_op])
        self._act_fn = _make_callable(session, [frame, h_in, c_in], [q_act, h_out, c_out])
        self._hard_update_fn = _make_callable(session, [], [], [hard_update])
        self._noise_fns = self._noise_switch(session)
        self._noise_on = True
        self.train_graph = {
            "feeds": feeds,
            "target_q1": target_q1,
            "online_q1": online_q1,
            "loss": loss,
            "per_step": per_step,
            "train_op": train_op,
        }
        self.optimizer = optimizer
        self.trainable_model = None
        self.compiled = True
        self.update_target_model_hard()
        self.reset_states()

    def _scalar_loss_steps(
        self, loss_q: Any, online_q1: Any, target_q1: Any, actions: Any, rewards: Any, discounts: Any
    ) -> tuple[Any, Any]:
        """Per loss step: the element-wise loss of Q(s_t, a_t) against its (Double) DQN target, and the target."""
        if self.enable_double_dqn:
            best = tf.argmax(online_q1, axis=-1, output_type=tf.int32)
            q1 = tf.gather(target_q1, best, axis=2, batch_dims=2)
        else:
            q1 = tf.reduce_max(target_q1, axis=-1)
        returns = tf.stop_gradient(rewards + discounts * q1)
        q_taken = tf.gather(loss_q, actions, axis=2, batch_dims=2)
        loss_fn = self.loss_fn or (lambda y_true, y_hat: huber_loss(y_true, y_hat, self.delta_clip))
        return loss_fn(returns, q_taken), returns

    def _categorical_loss_steps(
        self,
        head: Any,
        t_head: Any,
        rest: Any,
        t_out: Any,
        online_q1: Any,
        bootstrap: Any,
        actions: Any,
        rewards: Any,
        discounts: Any,
    ) -> tuple[Any, Any, Any]:
        """C51 per loss step: the cross-entropy of the taken action's distribution against the
        projected target distribution of the best next action (as FastDQNAgent's, step by step)."""
        cq = self._categorical
        assert cq is not None
        K, L, n = self.burn_in, self.sequence_length, self.n_step
        atoms, A = cq.atoms, self.nb_actions
        logits = keras.Model(head.input, head.get_layer(ATOM_LOGITS).output)
        t_logits = keras.Model(t_head.input, t_head.get_layer(ATOM_LOGITS).output)
        z = support(cq.v_min, cq.v_max, atoms)
        t_p = cq.probabilities(tf.reshape(_per_step(t_logits, t_out, K + L + n), (-1, A * atoms)))
        t_p = tf.gather(tf.reshape(t_p, (-1, K + L + n, A, atoms)), bootstrap, axis=1, batch_dims=1)  # (B, L, A, atoms)
        target_q1 = tf.reduce_sum(t_p * z, axis=-1)
        best = tf.argmax(online_q1 if self.enable_double_dqn else target_q1, axis=-1, output_type=tf.int32)
        next_p = tf.reshape(tf.gather(t_p, best, axis=2, batch_dims=2), (-1, atoms))
        projected = tf.stop_gradient(
            project(tf.reshape(rewards, (-1,)), tf.reshape(discounts, (-1,)), next_p, cq.v_min, cq.v_max)
        )
        returns = tf.reshape(tf.reduce_sum(projected * z, axis=-1), (-1, L))
        log_p = tf.nn.log_softmax(tf.reshape(_per_step(logits, rest[:, :L], L), (-1, A, atoms)), axis=-1)
        log_p0 = tf.gather(log_p, tf.reshape(actions, (-1,)), axis=1, batch_dims=1)
        per_step = tf.reshape(-tf.reduce_sum(projected * log_p0, axis=-1), (-1, L))
        return per_step, returns, target_q1

    # --- acting -------------------------------------------------------------------------------
    def reset_states(self) -> None:
        """keras-rl's reset (called at every episode start) and the LSTM state back to zero."""
        super().reset_states()
        units = getattr(self, "_units", None)
        if units is not None:
            self._h = np.zeros((1, units), dtype=np.float32)
            self._c = np.zeros((1, units), dtype=np.float32)

    @property
    def acting_state(self) -> tuple[np.ndarray, np.ndarray]:
        """The LSTM state (h, c) the next acting step starts from (copies)."""
        assert self._h is not None and self._c is not None, "compile the agent first"
        return self._h.copy(), self._c.copy()

    @acting_state.setter
    def acting_state(self, state: tuple[np.ndarray, np.ndarray]) -> None:
        h, c = state
        self._h, self._c = np.array(h, dtype=np.float32), np.array(c, dtype=np.float32)

    def compute_q_values(self, state: Sequence) -> np.ndarray:
        """One acting step: the Q values of the newest observation given the carried state, which
        moves on by this step."""
        self._sync_noise()
        assert self._h is not None and self._c is not None, "compile the agent first"
        q_values, self._h, self._c = self._act_fn(self._frames(np.asarray(state)[None]), self._h, self._c)
        return q_values[0]

    def compute_batch_q_values(self, state_batch: Sequence) -> np.ndarray:
        """Q values of each state's newest observation as an episode's first step (zero state);
        the carried state is not touched."""
        self._sync_noise()
        frames = self._frames(np.asarray(state_batch))
        zero = np.zeros((len(frames), self._units), dtype=np.float32)
        return self._act_fn(frames, zero, zero)[0]

    def _frames(self, states: np.ndarray) -> np.ndarray:
        """(batch, 1, *observation) states -> (batch, *frame) network frames (processor, dtype)."""
        if states.shape[1] != 1:
            raise ValueError(f"RecurrentDQNAgent acts on one observation per step; got windows of {states.shape[1]}")
        return self._states(states).reshape(len(states), *self._frame_shape)

    # --- training -----------------------------------------------------------------------------
    def sample_batch(self) -> SequenceBatch:  # type: ignore[override]  # a batch of sequences
        assert isinstance(self.memory, SequenceMemory)
        return self.memory.sample_sequences(
            self.batch_size, self.sequence_length, self.burn_in, self.gamma, self.n_step
        )

    def train_feeds(self, batch: SequenceBatch | None = None) -> list[np.ndarray]:  # type: ignore[override]
        """A batch (a fresh sample if None) as the train graph's feeds."""
        if batch is None:
            batch = self.sample_batch()
        size, positions = batch.frames.shape[:2]
        steps = batch.frames.reshape(size * positions, 1, *batch.frames.shape[2:])
        feeds = [
            self._states(steps).reshape(size * positions, *self._frame_shape),
            batch.valid.astype(np.float32),
            batch.actions.astype(np.int32),
            batch.returns.astype(np.float32),
            batch.discounts.astype(np.float32),
            batch.bootstrap.astype(np.int32),
            batch.mask.astype(np.float32),
        ]
        if self._train_learning_phase:
            feeds.append(np.array(True))
        return feeds

    def train_on_batch(self, batch: Any) -> list[float]:
        """One train step on a SequenceBatch (one session call): the loss and the compiled metrics, mean_q last."""
        return [float(v) for v in self._train_fn(*self.train_feeds(batch))]


def loss_of(agent: RecurrentDQNAgent) -> Callable[[SequenceBatch], float]:
    """The train graph's loss on a batch without training (for tests and checks)."""
    fn = _make_callable(agent._session, agent.train_graph["feeds"], [agent.train_graph["loss"]])
    return lambda batch: float(fn(*agent.train_feeds(batch))[0])


class Memoryless(Callback):
    """A keras-rl callback for `test`: the recurrent agent's LSTM state back to zero before every
    action, so it acts on the newest frame alone. Played beside the agent with its memory, the
    difference is what its memory adds (on flickering CAVE: how it sees through blanked frames)."""

    def on_step_begin(self, step: int, logs: dict | None = None) -> None:
        self.model.reset_states()
