"""The experiment schema: one typed, frozen dataclass, its validation and `SET` overrides.

Every construction is checked (`__post_init__`): an `Experiment(...)` in a module, a
`dataclasses.replace`, a SET override and a config.json read back all raise UserError naming
the first bad field. Finding and loading experiment modules is harness.core.registry's.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from harness.core.errors import UserError, did_you_mean
from harness.core.files import NON_FINITE, strict_json

# Names accepted by the string-valued choice fields (the builders live in harness/, which imports
# TensorFlow; the names are repeated here so that validation stays import-free).
POLICIES = ("linear_eps", "eps_greedy", "boltzmann", "greedy")
OPTIMIZERS = ("rmsprop", "graves", "graves_nature", "adam")
LOSSES = ("huber", "mse")
DUELING_TYPES = ("avg", "max", "naive")
PRECISIONS = ("float32", "bfloat16")

CallbackFactory = Callable[[Path], Any]


def setting(default: Any, doc: str) -> Any:
    """A schema field with its one-line doc (shown by `python -m harness list --fields`)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Experiment:
    """Everything that defines a run, with keras-rl's own names for the DQNAgent options."""

    env_id: str = setting("", "registered gymnasium env id, e.g. Catch-v0")
    env_kwargs: dict = setting({}, "keyword arguments for gymnasium.make(env_id, ...)")
    network: str = setting("dense", "network builder in harness.kerasrl.models.NETWORKS")
    network_kwargs: dict = setting({}, "keyword arguments for the network builder")
    processor: str | None = setting(None, "keras-rl processor in harness.kerasrl.processors.PROCESSORS, or None")
    processor_kwargs: dict = setting({}, "keyword arguments for the processor")
    memory_limit: int = setting(50_000, "replay memory capacity in transitions")
    window_length: int = setting(1, "observations stacked into one state")
    action_repetition: int = setting(1, "env steps each action is repeated for (frame skip); steps count actions")
    policy: str = setting("linear_eps", f"exploration policy, one of {POLICIES}")
    eps_max: float = setting(1.0, "epsilon at the start of the linear schedule")
    eps_min: float = setting(0.1, "epsilon at the end of the linear schedule (eps_greedy: the constant)")
    eps_anneal_steps: int = setting(10_000, "steps over which epsilon goes from eps_max to eps_min")
    boltzmann_tau: float = setting(1.0, "temperature of the boltzmann policy")
    gamma: float = setting(0.99, "discount factor")
    batch_size: int = setting(32, "transitions per training batch")
    nb_steps_warmup: int = setting(1_000, "steps before training starts")
    train_interval: int = setting(1, "env steps between training batches")
    gradient_steps: int = setting(
        1, "batches trained one after another every train_interval steps (Stable-Baselines3's gradient_steps)"
    )
    max_grad_norm: float | None = setting(None, "clip the gradient's global norm to this (None: no clipping)")
    optimizer_epsilon: float | None = setting(
        None, "the optimizer's epsilon, added to its denominator (None: its default; Rainbow's Adam: 1.5e-4)"
    )
    memory_interval: int = setting(1, "env steps between stored transitions")
    target_model_update: float = setting(1_000, "target net: hard copy every N steps if >= 1, soft rate if < 1")
    delta_clip: float = setting(1.0, "Huber loss clip (inf: plain squared error)")
    n_step: int = setting(
        1, "transitions each target sums rewards over before bootstrapping (1: keras-rl's one-step target)"
    )
    bootstrap_truncation: bool = setting(
        False,
        "a time-limit cut ends the episode but its target bootstraps from the next state "
        "(false: keras-rl's, stored as terminal)",
    )
    prioritized_replay: bool = setting(False, "proportional prioritized replay (Schaul et al. 2016)")
    per_alpha: float = setting(0.6, "prioritized replay: priority exponent (0: uniform)")
    per_beta0: float = setting(0.4, "prioritized replay: importance-sampling exponent at step 0, annealed to 1")
    per_eps: float = setting(1e-6, "prioritized replay: added to |TD error| so that no priority is 0")
    enable_double_dqn: bool = setting(True, "Double DQN targets")
    enable_dueling_network: bool = setting(False, "dueling head on the network")
    noisy: bool = setting(
        False, "noisy networks: the head's dense layers are NoisyDense (SET noisy=true also sets policy=greedy)"
    )
    noisy_sigma0: float = setting(0.5, "noisy networks: initial sigma0 (noise weights start at sigma0/sqrt(inputs))")
    distributional: bool = setting(
        False, "distributional C51 head: a categorical return distribution per action, cross-entropy loss"
    )
    atoms: int = setting(51, "C51: atoms of the return distribution")
    v_min: float = setting(-10.0, "C51: the smallest return the support represents")
    v_max: float = setting(10.0, "C51: the largest return the support represents")
    dueling_type: str = setting("avg", f"dueling aggregation, one of {DUELING_TYPES}")
    recurrent: bool = setting(
        False,
        "recurrent DQN (DRQN): the network's per-frame layers -> LSTM(lstm_units) -> Q head, trained on "
        "replayed sequences; needs window_length=1 (fast path)",
    )
    lstm_units: int = setting(512, "recurrent: units of the LSTM (its state is zero at every episode start)")
    sequence_length: int = setting(10, "recurrent: steps of each replayed sequence that carry loss")
    burn_in: int = setting(
        5, "recurrent: steps before each sequence's loss steps that only warm the LSTM state up (R2D2's burn-in)"
    )
    optimizer: str = setting("rmsprop", f"optimizer, one of {OPTIMIZERS}")
    learning_rate: float | None = setting(None, "learning rate (None: the optimizer's default)")
    loss: Any = setting("huber", f"loss, one of {LOSSES} or a function (y_true, y_pred) -> elementwise loss")
    nb_steps: int = setting(30_000, "training steps")
    seed: int = setting(0, "seed for Python, NumPy, TensorFlow, the env and the policies")
    eval_episodes: int = setting(10, "greedy evaluation episodes after training")
    validation_interval: int = setting(
        0,
        "steps between greedy validation rounds on their own seed; the "
        "evaluation then uses the best-validated weights (0: off, final weights)",
    )
    validation_episodes: int = setting(10, "greedy episodes per validation round")
    checkpoint_interval: int = setting(
        10_000, "steps between checkpoints of the training state (each at the first episode end after)"
    )
    keep_checkpoints: int = setting(3, "newest checkpoints kept")
    checkpoint_memory: bool = setting(
        True,
        "checkpoints include the replay memory, for an exact resume; false: smaller, faster checkpoints, "
        "but a resumed run refills its memory and waits nb_steps_warmup again (not exact)",
    )
    log_interval: int | None = setting(None, "steps between progress lines (None: about 20 per run)")
    callbacks: list = setting([], "extra callback factories: run_dir -> keras-rl Callback")
    fast_path: bool = setting(
        True, "fast training path (harness/kerasrl/fast.py); false: keras-rl's stock DQNAgent + SequentialMemory"
    )
    precision: str = setting(
        "float32",
        f"network arithmetic, one of {PRECISIONS}; bfloat16: mixed precision (layers compute in bfloat16; "
        "weights, Q head, targets, loss and optimizer stay float32)",
    )
    onednn: bool | None = setting(
        None,
        "TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS, which overrides this when set); None: on for "
        "conv networks (faster convolutions), off otherwise (slower on tiny dense networks)",
    )
    name: str = setting("", "experiment name (set from the module name)")

    def __post_init__(self) -> None:
        check_types(self)
        self.validate()

    # ------------------------------------------------------------------------------------------
    def validate(self) -> Experiment:
        """Raise UserError naming the first field that is out of range; return self."""
        where = f"experiment {self.name!r}" if self.name else "experiment"
        for field_name, allowed, ok in _RANGE_CHECKS:
            if not ok(getattr(self, field_name)):
                value = getattr(self, field_name)
                raise UserError(f"{where}: {field_name}={value!r} is not allowed; expected {allowed}")
        if self.batch_size > self.memory_limit:
            raise UserError(
                f"{where}: batch_size={self.batch_size} is larger than "
                f"memory_limit={self.memory_limit}; expected batch_size <= memory_limit"
            )
        if not self.fast_path:
            beyond = [f"{k}={getattr(self, k)!r}" for k, off in _FAST_PATH_ONLY if getattr(self, k) != off]
            if beyond:
                raise UserError(
                    f"{where}: {', '.join(beyond)} needs the fast path (fast_path=true); keras-rl's "
                    f"stock DQNAgent has one-step uniform replay and plain feed-forward networks only"
                )
        if self.distributional:
            self._check_distributional(where)
        if self.recurrent:
            self._check_recurrent(where)
        for factory in self.callbacks:
            if not callable(factory):
                raise UserError(f"{where}: callbacks must be functions run_dir -> Callback; got {factory!r}")
        return self

    def _check_distributional(self, where: str) -> None:
        if self.v_min >= self.v_max:
            raise UserError(
                f"{where}: v_min={self.v_min!r}, v_max={self.v_max!r} is not allowed; expected v_min < v_max"
            )
        if self.loss != "huber":
            raise UserError(
                f"{where}: loss={self.loss!r} does not apply with distributional=true, which trains on the "
                "cross-entropy of the projected target; expected the default loss"
            )

    def _check_recurrent(self, where: str) -> None:
        """The combinations the recurrent agent (harness.kerasrl.recurrent) does not support."""
        unsupported = [
            ("window_length", 1, "the LSTM carries the past (expected window_length=1)"),
            ("memory_interval", 1, "replayed sequences need every step stored (expected memory_interval=1)"),
            ("prioritized_replay", False, "sequence replay is uniform (expected prioritized_replay=false)"),
            (
                "bootstrap_truncation",
                False,
                "sequence replay stores a time-limit cut as terminal (expected bootstrap_truncation=false)",
            ),
            ("precision", "float32", "the LSTM runs in float32 (expected precision=float32)"),
        ]
        for name, allowed, why in unsupported:
            if getattr(self, name) != allowed:
                raise UserError(f"{where}: {name}={getattr(self, name)!r} with recurrent=true: {why}")
        if self.network not in ("conv", "dense"):
            raise UserError(
                f"{where}: network={self.network!r} with recurrent=true; expected conv or dense "
                "(their layers encode each frame before the LSTM)"
            )

    def to_dict(self) -> dict[str, Any]:
        """The resolved definition as plain JSON data (functions by their qualified names)."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            data[f.name] = _jsonable(getattr(self, f.name))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """Rebuild from `to_dict()` output (config.json). Functions (callbacks, a loss function)
        cannot be rebuilt from names: callbacks are dropped, a named-function loss falls back to an
        error so that nothing silently trains with a different loss."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"config has unknown fields {unknown}; expected fields of Experiment")
        values = dict(data)
        values["callbacks"] = []
        hints = field_types()
        for key, value in values.items():
            # strict JSON's "Infinity" (files.strict_json); older runs wrote the Infinity literal.
            if (
                isinstance(value, str)
                and value in NON_FINITE
                and hints[key] is not Any
                and _is_instance(1.0, hints[key])
            ):
                values[key] = NON_FINITE[value]
        if isinstance(values.get("loss"), str) and values["loss"] not in LOSSES:
            raise UserError(
                f"config loss {values['loss']!r} is a function that cannot be rebuilt from "
                f"config.json; expected one of {', '.join(LOSSES)}"
            )
        try:
            return cls(**values)
        except TypeError as err:
            raise UserError(f"config does not fit the Experiment schema: {err}") from None


_POSITIVE = (
    "memory_limit",
    "window_length",
    "action_repetition",
    "batch_size",
    "train_interval",
    "gradient_steps",
    "memory_interval",
    "nb_steps",
    "eval_episodes",
    "validation_episodes",
    "checkpoint_interval",
    "keep_checkpoints",
    "n_step",
    "lstm_units",
    "sequence_length",
)
_NON_NEGATIVE = ("nb_steps_warmup", "eps_anneal_steps", "seed", "validation_interval", "burn_in")


def _one_of(names: tuple[str, ...]) -> tuple[str, Callable[[Any], bool]]:
    return f"one of {', '.join(names)}", lambda value: value in names


# (field, what is allowed, the check), in the order validate() reports them.
_RANGE_CHECKS: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    ("env_id", "a registered env id such as Catch-v0, or module:Id-v0 for an env in your own package", bool),
    ("gamma", "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0),
    *((name, "a positive integer", lambda v: v >= 1) for name in _POSITIVE),
    *((name, "an integer >= 0", lambda v: v >= 0) for name in _NON_NEGATIVE),
    ("target_model_update", "a number > 0 (>= 1: hard update interval, < 1: soft rate)", lambda v: v > 0),
    ("delta_clip", "a number > 0 (inf allowed)", lambda v: v > 0),
    ("eps_max", "a probability in [0, 1]", lambda v: 0.0 <= v <= 1.0),
    ("eps_min", "a probability in [0, 1]", lambda v: 0.0 <= v <= 1.0),
    ("boltzmann_tau", "a number > 0", lambda v: v > 0),
    ("per_alpha", "a number >= 0", lambda v: v >= 0 and math.isfinite(v)),
    ("per_beta0", "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0),
    ("per_eps", "a finite number > 0", lambda v: v > 0 and math.isfinite(v)),
    ("noisy_sigma0", "a finite number >= 0", lambda v: v >= 0 and math.isfinite(v)),
    ("atoms", "an integer >= 2", lambda v: v >= 2),
    ("v_min", "a finite number", math.isfinite),
    ("v_max", "a finite number", math.isfinite),
    ("learning_rate", "a finite number > 0 or None", lambda v: v is None or (v > 0 and math.isfinite(v))),
    ("max_grad_norm", "a finite number > 0 or None", lambda v: v is None or (v > 0 and math.isfinite(v))),
    ("optimizer_epsilon", "a finite number > 0 or None", lambda v: v is None or (v > 0 and math.isfinite(v))),
    ("log_interval", "a positive integer or None", lambda v: v is None or v >= 1),
    ("policy", *_one_of(POLICIES)),
    ("optimizer", *_one_of(OPTIMIZERS)),
    ("dueling_type", *_one_of(DUELING_TYPES)),
    ("precision", *_one_of(PRECISIONS)),
    ("loss", f"one of {', '.join(LOSSES)} or a function", lambda v: callable(v) or v in LOSSES),
)


# Settings keras-rl's stock DQNAgent cannot honour, with their off value.
_FAST_PATH_ONLY = (
    ("n_step", 1),
    ("bootstrap_truncation", False),
    ("gradient_steps", 1),
    ("prioritized_replay", False),
    ("noisy", False),
    ("distributional", False),
    ("recurrent", False),
)


def _jsonable(value: Any) -> Any:
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return strict_json(value)  # what config.json holds: delta_clip=inf is "Infinity"


# ---------------------------------------------------------------------------------------------
# Field types and overrides


@functools.cache
def field_types() -> dict[str, Any]:
    return typing.get_type_hints(Experiment)


def field_defaults() -> dict[str, Any]:
    """Every field's default as config.json stores it (plain JSON data)."""
    defaults = {}
    for f in dataclasses.fields(Experiment):
        factory: Callable[[], Any] = f.default_factory  # type: ignore[assignment]  # MISSING when f.default is set
        value = f.default if f.default is not dataclasses.MISSING else factory()
        defaults[f.name] = json.loads(json.dumps(_jsonable(value)))
    return defaults


def field_docs() -> dict[str, str]:
    return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(Experiment)}


# Fields that hold functions: not settable from the command line.
_NOT_SETTABLE = ("callbacks", "name")


def type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " or ".join("None" if a is type(None) else type_name(a) for a in args)
    if tp is Any:
        return "str"
    return getattr(tp, "__name__", str(tp))


def _parse_value(field_name: str, text: str, tp: Any) -> Any:
    """Parse `text` as a value of type `tp` (plain data only: numbers, booleans, JSON)."""
    err = UserError(f"SET {field_name}={text!r}: expected {type_name(tp)}")
    if typing.get_origin(tp) in (Union, types.UnionType):
        options = typing.get_args(tp)
        if type(None) in options and text.strip().lower() in ("none", "null"):
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _parse_value(field_name, text, option)
            except UserError:
                continue
        raise err
    parser = _PARSERS.get(tp)
    if parser is None:
        return text  # str and Any (the loss name)
    try:
        return parser(text, tp)
    except ValueError:
        raise err from None
    except _JsonExpected:
        example = "{}" if tp is dict else "[]"
        raise UserError(
            f"SET {field_name}={text!r}: expected a JSON {type_name(tp)}, e.g. {field_name}={example}"
        ) from None


class _JsonExpected(Exception):
    pass


def _parse_bool(text: str, tp: Any) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


def _parse_int(text: str, tp: Any) -> int:
    try:
        return int(text.strip())
    except ValueError:
        # "1e5" is a common way to write a step budget; accept it when it is a whole number.
        as_float = float(text)
        if as_float.is_integer():
            return int(as_float)
        raise


def _parse_json(text: str, tp: Any) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise _JsonExpected from None
    if not isinstance(value, tp):
        raise ValueError(text)
    return value


_PARSERS: dict[Any, Callable[[str, Any], Any]] = {
    bool: _parse_bool,
    int: _parse_int,
    float: lambda text, tp: float(text),
    dict: _parse_json,
    list: _parse_json,
}


def check_types(exp: Experiment) -> None:
    """Raise UserError if a field's value does not have the field's declared type."""
    hints = field_types()
    where = f"experiment {exp.name!r}" if exp.name else "experiment"
    for f in dataclasses.fields(exp):
        value = getattr(exp, f.name)
        tp = hints[f.name]
        if not _is_instance(value, tp):
            raise UserError(f"{where}: {f.name}={value!r} has the wrong type; expected {type_name(tp)}")


def _is_instance(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_is_instance(value, option) for option in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def apply_overrides(exp: Experiment, assignments: list[str]) -> Experiment:
    """Return `exp` with each `key=value` applied, type-checked against the schema."""
    hints = field_types()
    settable = sorted(k for k in hints if k not in _NOT_SETTABLE)
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"SET {assignment!r}: expected key=value, e.g. gamma=0.95")
        if key not in hints or key in _NOT_SETTABLE:
            raise UserError(f"SET: unknown key {key!r}{did_you_mean(key, settable)}; valid keys: {', '.join(settable)}")
        changes[key] = _parse_value(key, text, hints[key])
    if changes.get("noisy") and "policy" not in changes:
        # Noisy networks explore through their noise: training acts greedily unless SET says otherwise.
        changes["policy"] = "greedy"
    return dataclasses.replace(exp, **changes)


def onednn_wanted(exp: Experiment) -> bool:
    """Whether `exp` runs with oneDNN: its setting, or on for conv networks. Measured on 2 cores
    (docs/results.md): cave_conv trains ~1.3x faster with it; catch_dense's 8x8 dense network runs
    slower; same-seed runs are identical either way at a fixed thread count."""
    return exp.onednn if exp.onednn is not None else exp.network == "conv"


def choose_onednn(exp: Experiment) -> None:
    """Set TF_ENABLE_ONEDNN_OPTS for `exp` unless the environment already does; TensorFlow reads it
    once, when harness.kerasrl.compat imports it, so this must run before that."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1" if onednn_wanted(exp) else "0")
