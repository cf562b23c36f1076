"""Build a compiled keras-rl DQNAgent (with its env, processor, memory and policy) from an Experiment.

The runner, `play`, and the benchmarks all build agents here, so a run, its replay and its
benchmark use the same pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import gymnasium

import envs  # noqa: F401  (importing the package registers the project's env ids)
from harness.core import files
from harness.core.errors import UserError, did_you_mean, one_line
from harness.core.schema import Experiment
from harness.kerasrl.adapters import KerasRLEnv
from harness.kerasrl.compat import (
    AdditionalUpdatesOptimizer,
    BoltzmannQPolicy,
    DQNAgent,
    EpsGreedyQPolicy,
    GreedyQPolicy,
    Processor,
    SequentialMemory,
    backend,
    clone_model,
    get_soft_target_model_updates,
    keras,
    mean_q,
)
from harness.kerasrl.models import build_network


def make_env(exp: Experiment, seed: int | None, render_mode: str | None = None) -> KerasRLEnv:
    """gymnasium.make(exp.env_id, **exp.env_kwargs) behind keras-rl's old-gym adapter.

    `env_id` is a registered id, or gymnasium's `"pkg.module:Name-v0"`, which imports the module
    (where the user's package registers its env) first.
    """
    try:
        env = gymnasium.make(exp.env_id, render_mode=render_mode, **exp.env_kwargs)
    except ModuleNotFoundError as err:
        module = exp.env_id.rpartition(":")[0] or err.name
        raise UserError(
            f"env_id {exp.env_id!r}: module {module!r} can't be imported ({one_line(err, 160)}); "
            "expected a package importable from here (module:Name-v0)"
        ) from None
    except gymnasium.error.Error as err:
        raise UserError(
            f"env_id {exp.env_id!r} is not a registered gymnasium env"
            f"{did_you_mean(exp.env_id, _env_ids())}; {one_line(err)}"
        ) from None
    except (TypeError, ValueError) as err:
        raise UserError(f"env {exp.env_id} with env_kwargs={exp.env_kwargs}: {one_line(err)}") from None
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        env.close()
        raise UserError(f"env {exp.env_id} has action space {env.action_space}; DQN needs Discrete actions")
    return KerasRLEnv(env, seed=seed)


def _env_ids() -> list[str]:
    return sorted(k for k in gymnasium.registry if not k.startswith(("ALE/", "phys2d/", "tabular/")))


def make_processor(exp: Experiment) -> Processor | None:
    if exp.processor is None:
        return None
    from harness.kerasrl.processors import build_processor

    return build_processor(exp.processor, exp.processor_kwargs)


def network_input_shape(
    exp: Experiment, observation_shape: tuple[int, ...], processor: Processor | None
) -> tuple[int, ...]:
    """What keras-rl feeds the network: (window, *obs) unless the processor reshapes states."""
    if processor is not None and hasattr(processor, "network_input_shape"):
        return tuple(processor.network_input_shape(exp.window_length, observation_shape))
    return (exp.window_length, *observation_shape)


def make_policy(exp: Experiment) -> Any:
    """The training policy. Its schedule reads the agent's global step (callbacks.GlobalStep sets
    it to a resumed run's start step), so a resumed run needs no offset here."""
    if exp.policy == "linear_eps":
        from harness.kerasrl.policies import ResumableLinearAnnealedPolicy

        # value_test is unused by DQNAgent (it evaluates with its greedy test_policy).
        return ResumableLinearAnnealedPolicy(
            EpsGreedyQPolicy(),
            attr="eps",
            value_max=exp.eps_max,
            value_min=exp.eps_min,
            value_test=0.0,
            nb_steps=max(1, exp.eps_anneal_steps),
        )
    if exp.policy == "eps_greedy":
        return EpsGreedyQPolicy(eps=exp.eps_min)
    if exp.policy == "boltzmann":
        return BoltzmannQPolicy(tau=exp.boltzmann_tau)
    if exp.policy == "greedy":
        return GreedyQPolicy()  # noisy networks explore through their noise
    raise UserError(f"policy={exp.policy!r} is unknown")  # validate() catches this first


def make_memory(exp: Experiment) -> Any:
    """The replay memory: on the fast path harness.kerasrl's RingMemory (PrioritizedRingMemory with
    prioritized_replay, its beta annealed over the run's nb_steps of global steps), else keras-rl's
    SequentialMemory."""
    if exp.fast_path and exp.recurrent:
        from harness.kerasrl.sequence_memory import SequenceMemory

        return SequenceMemory(limit=exp.memory_limit, seed=exp.seed)
    if exp.fast_path and exp.prioritized_replay:
        from harness.kerasrl.prioritized import PrioritizedRingMemory

        return PrioritizedRingMemory(
            limit=exp.memory_limit,
            window_length=exp.window_length,
            alpha=exp.per_alpha,
            beta0=exp.per_beta0,
            eps=exp.per_eps,
            beta_steps=exp.nb_steps,
            seed=exp.seed,
        )
    if exp.fast_path:
        from harness.kerasrl.memory import RingMemory

        return RingMemory(limit=exp.memory_limit, window_length=exp.window_length)
    return SequentialMemory(limit=exp.memory_limit, window_length=exp.window_length)


def build_model(exp: Experiment, env: KerasRLEnv, processor: Processor | None) -> keras.Model:
    shape = env.observation_space.shape
    assert shape is not None  # the networks take array observations, which have a shape
    obs_shape = tuple(shape)
    input_shape = network_input_shape(exp, obs_shape, processor)
    if exp.recurrent:
        from harness.kerasrl.recurrent import recurrent_network

        # One frame per step (window_length=1): what the processor makes of a one-observation window.
        return recurrent_network(
            exp.network,
            input_shape,
            _nb_actions(env),
            dict(exp.network_kwargs),
            exp.lstm_units,
            dueling_type=exp.dueling_type if exp.enable_dueling_network and not exp.distributional else None,
            noisy_sigma0=exp.noisy_sigma0 if exp.noisy else None,
            distribution=distribution_of(exp),
            precision=exp.precision,
        )
    return build_network(
        exp.network,
        input_shape,
        _nb_actions(env),
        dict(exp.network_kwargs),
        exp.precision,
        noisy_sigma0=exp.noisy_sigma0 if exp.noisy else None,
        distribution=distribution_of(exp),
    )


def distribution_of(exp: Experiment) -> tuple[int, float, float, str | None] | None:
    """C51's (atoms, v_min, v_max, dueling type or None) for the network builder, or None."""
    if not exp.distributional:
        return None
    return (exp.atoms, exp.v_min, exp.v_max, exp.dueling_type if exp.enable_dueling_network else None)


def _nb_actions(env: KerasRLEnv) -> int:
    # make_env accepts Discrete action spaces only.
    return int(cast(gymnasium.spaces.Discrete, env.action_space).n)


class LossDQNAgent(DQNAgent):
    """keras-rl's DQNAgent with the experiment's loss in its Lambda loss layer.

    keras-rl's `compile` hard-codes Huber (`huber_loss(..., self.delta_clip)`); this `compile` is the
    same graph with `loss_fn` in its place: `loss_fn(y_true, y_pred)` is elementwise, masked to the
    taken action and summed, exactly as keras-rl does with Huber. Training (`fit`, `backward`) is
    keras-rl's own. Used only when the loss is not Huber, so the stock path stays stock.
    """

    def __init__(self, *args: Any, loss_fn: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn

    def compile(self, optimizer: Any, metrics: list | None = None) -> None:
        metrics = list(metrics or []) + [mean_q]
        self.target_model = clone_model(self.model, self.custom_model_objects)
        self.target_model.compile(optimizer="sgd", loss="mse")
        self.model.compile(optimizer="sgd", loss="mse")
        if self.target_model_update < 1.0:
            updates = get_soft_target_model_updates(self.target_model, self.model, self.target_model_update)
            optimizer = AdditionalUpdatesOptimizer(optimizer, updates)
        loss_fn = self.loss_fn

        def masked_error(args: list) -> Any:
            y_true, y_pred, mask = args
            return backend.sum(loss_fn(y_true, y_pred) * mask, axis=-1)

        y_pred = self.model.output
        y_true = keras.layers.Input(name="y_true", shape=(self.nb_actions,))
        mask = keras.layers.Input(name="mask", shape=(self.nb_actions,))
        loss_out = keras.layers.Lambda(masked_error, output_shape=(1,), name="loss")([y_true, y_pred, mask])
        ins = self.model.input if isinstance(self.model.input, list) else [self.model.input]
        trainable_model = keras.Model(inputs=ins + [y_true, mask], outputs=[loss_out, y_pred])
        combined_metrics = {trainable_model.output_names[1]: metrics}
        losses = [
            lambda y_true, y_pred: y_pred,  # the loss is computed in the Lambda layer
            lambda y_true, y_pred: backend.zeros_like(y_pred),  # only there for the metrics
        ]
        trainable_model.compile(optimizer=optimizer, loss=losses, metrics=combined_metrics)
        self.trainable_model = trainable_model
        self.compiled = True


def agent_class_and_options(exp: Experiment) -> tuple[type, dict[str, Any]]:
    """The agent class for `exp` and the options only it takes."""
    from harness.kerasrl.optimizers import make_loss

    if exp.fast_path and exp.recurrent:
        from harness.kerasrl.recurrent import RecurrentDQNAgent

        recurrent: dict[str, Any] = {"sequence_length": exp.sequence_length, "burn_in": exp.burn_in}
        recurrent["n_step"] = exp.n_step
        recurrent["gradient_steps"] = exp.gradient_steps
        if exp.loss != "huber":
            recurrent["loss_fn"] = make_loss(exp.loss, exp.delta_clip)
        return RecurrentDQNAgent, recurrent
    if exp.fast_path:
        from harness.kerasrl.fast import FastDQNAgent

        # FastDQNAgent's default loss is keras-rl's own Huber loss clipped at delta_clip.
        options: dict[str, Any] = {} if exp.loss == "huber" else {"loss_fn": make_loss(exp.loss, exp.delta_clip)}
        if exp.n_step > 1:
            options["n_step"] = exp.n_step
        if exp.bootstrap_truncation:
            options["bootstrap_truncation"] = True
        if exp.gradient_steps > 1:
            options["gradient_steps"] = exp.gradient_steps
        return FastDQNAgent, options
    if exp.loss == "huber":
        return DQNAgent, {}

    return LossDQNAgent, {"loss_fn": make_loss(exp.loss, exp.delta_clip)}


def build_agent(exp: Experiment, env: KerasRLEnv, model: keras.Model | None = None) -> DQNAgent:
    """A compiled DQNAgent for `exp` acting in `env` (a fresh network unless `model` is given)."""
    processor = make_processor(exp)
    if model is None:
        model = build_model(exp, env, processor)
    from harness.kerasrl.optimizers import make_optimizer

    agent_class, options = agent_class_and_options(exp)
    agent = agent_class(
        model=model,
        nb_actions=_nb_actions(env),
        memory=make_memory(exp),
        policy=make_policy(exp),
        processor=processor,
        gamma=exp.gamma,
        batch_size=exp.batch_size,
        nb_steps_warmup=exp.nb_steps_warmup,
        train_interval=exp.train_interval,
        memory_interval=exp.memory_interval,
        target_model_update=exp.target_model_update,
        delta_clip=exp.delta_clip,
        enable_double_dqn=exp.enable_double_dqn,
        # A distributional network has its dueling head built in (DuelingAtoms); keras-rl's is scalar.
        # The recurrent network has its dueling head built in too (DuelingAtoms with one atom).
        enable_dueling_network=exp.enable_dueling_network and not exp.distributional and not exp.recurrent,
        dueling_type=exp.dueling_type,
        **options,
    )
    # A fresh metrics list: keras-rl's compile appends to the list it is given.
    agent.compile(
        make_optimizer(exp.optimizer, exp.learning_rate, exp.max_grad_norm, exp.optimizer_epsilon), metrics=["mae"]
    )
    return agent


def new_session(seed: int) -> None:
    """Start a fresh TensorFlow graph seeded with `seed` (keras-rl trains in graph mode: the graph
    seed is what makes weight initialisation and TF's random ops reproducible)."""
    backend.clear_session()
    from harness.kerasrl.compat import tf

    # keras.utils.set_random_seed seeds Python, NumPy and TensorFlow, and also resets tf-keras' own
    # seed generator, which initializers draw from once anyone has called it in this process.
    keras.utils.set_random_seed(seed)
    tf.compat.v1.set_random_seed(seed)
    # The graphs here are small chains run thousands of times a second: handing each session call
    # to TensorFlow's inter-op thread pool costs more than the ops (measured for `make bench`: the
    # fast path does about twice the steps per CPU-second with ops run in the calling thread).
    # A negative inter-op count runs them in the caller's thread; big ops (convolutions) still use
    # the intra-op pool, sized as tf-keras' own session would be (DQN_HARNESS_THREADS, else TF's
    # default).
    config = tf.compat.v1.ConfigProto(
        allow_soft_placement=True,  # as tf-keras' default session config
        inter_op_parallelism_threads=-1,
        intra_op_parallelism_threads=tf.config.threading.get_intra_op_parallelism_threads(),
    )
    tf.compat.v1.keras.backend.set_session(tf.compat.v1.Session(config=config))


def write_weights(target: Any, path: Path) -> None:
    """`target.save_weights` (a Keras model or a keras-rl agent) into `path`, atomically; DiskFull
    before anything is written when the file would not fit."""
    files.write_with(path, lambda tmp: target.save_weights(tmp, overwrite=True), needs_bytes=weights_bytes(target))


def weights_bytes(target: Any) -> int:
    """About how large `target.save_weights` writes its HDF5 file (a Keras model or a keras-rl agent)."""
    model = getattr(target, "model", target)  # a keras-rl agent saves its online network
    arrays = model.get_weights()
    # HDF5 adds about 2 KB per array and a few KB per file (measured: 22.5 KB on cave_conv's 10).
    return sum(array.nbytes for array in arrays) + 4096 * len(arrays) + 8192


def load_weights_checked(target: Any, weights: Path, what: str) -> None:
    """`target.load_weights(weights)` (a Keras model or a keras-rl agent), every failure a UserError.

    `what` names the network the weights should fit, for the message.
    """
    if not weights.is_file():
        raise UserError(f"{weights} is missing")
    import h5py

    # h5py first: a truncated or non-HDF5 file gets a message about the file, not Keras' traceback.
    try:
        with h5py.File(weights, "r") as stored:
            stored.visit(lambda name: None)
    except (OSError, ValueError) as err:
        raise UserError(
            f"{weights} can't be read as HDF5 weights (truncated or not a weights file): {one_line(err)}"
        ) from None
    from harness.kerasrl.compat import tf

    try:
        target.load_weights(str(weights))
    except tf.errors.OpError as err:
        # Graph mode reports a shape mismatch from the session, with the whole graph's stack trace
        # in the message; the line that names the shapes is the one a user needs.
        lines = [line.strip() for line in err.message.splitlines() if line.strip()]
        shape_lines = [line for line in lines if "shape" in line]
        raise UserError(f"{weights} does not fit {what}: {(shape_lines or lines or [type(err).__name__])[0]}") from None
    except (ValueError, KeyError, OSError, TypeError) as err:
        raise UserError(f"{weights} does not fit {what}: {one_line(err)}") from None
