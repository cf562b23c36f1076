"""Optimizers and TD-error losses for the DQN experiments: this module owns choosing them by name.

What lives here:

* :class:`RMSPropGraves` -- the RMSProp variant of Graves (2013, "Generating Sequences With
  Recurrent Neural Networks", arXiv:1308.0850, section 4, eqs. 38-41), the one DeepMind's DQN
  used. Per parameter ``theta`` with gradient ``g``::

      n     <- rho * n     + (1 - rho) * g**2
      g_bar <- rho * g_bar + (1 - rho) * g
      delta <- mu * delta  - lr * g / sqrt(n - g_bar**2 + eps)
      theta <- theta + delta

  The slots ``n``, ``g_bar`` and ``delta`` start at zero. Unlike Keras' ``RMSprop`` the epsilon is
  *inside* the square root, the denominator is centred (a running variance, not a second moment)
  and the momentum is applied to the whole step. Graves' constants are the defaults
  (``lr=1e-4, rho=0.95, mu=0.9, eps=1e-4``); :func:`graves_nature` / ``RMSPropGraves.nature()``
  give the DQN Nature paper's variant (``lr=2.5e-4, rho=0.95, mu=0, eps=0.01``).

  (Keras' ``RMSprop(centered=True, momentum>0)`` happens to run TensorFlow's fused
  ``ResourceApplyCenteredRMSProp`` kernel, which is the same update with ``mom = -delta``; with
  ``momentum=0`` Keras puts epsilon outside the root instead, so the Nature preset has no Keras
  equivalent. The tests use the former as a cross-check.)

  It subclasses the *legacy* Keras optimizer (tf-keras' ``OptimizerV2``,
  ``keras.optimizers.legacy.Optimizer``), because keras-rl trains with ``train_on_batch`` in
  TF1-style graph mode, and that path calls ``optimizer.get_updates``, which only OptimizerV2 has.

* :func:`make_optimizer` -- an optimizer by name (:data:`OPTIMIZERS`): ``"rmsprop"``,
  ``"graves"``, ``"graves_nature"``, ``"adam"``; all legacy (OptimizerV2) optimizers.

* :func:`make_loss` -- the element-wise TD-error loss by name (:data:`LOSSES`) or callable, in the
  form keras-rl's ``DQNAgent.compile`` uses ``rl.util.huber_loss``: ``(y_true, y_pred) -> tensor``
  of the same shape, not reduced.

TensorFlow and Keras come from :mod:`harness.kerasrl.compat`, as everywhere in the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

from harness.kerasrl.compat import backend, keras, tf

__all__ = [
    "CUSTOM_OBJECTS",
    "GRAVES_DEFAULTS",
    "GRAVES_NATURE",
    "LOSSES",
    "OPTIMIZERS",
    "RMSPropGraves",
    "graves_nature",
    "make_loss",
    "make_optimizer",
]

#: Graves (2013) section 4 constants -- the defaults of :class:`RMSPropGraves`.
GRAVES_DEFAULTS: Mapping[str, float] = MappingProxyType(
    {"learning_rate": 1e-4, "rho": 0.95, "momentum": 0.9, "epsilon": 1e-4}
)

#: The DQN Nature paper's (Mnih et al. 2015) variant: no momentum, epsilon 0.01, lr 2.5e-4.
GRAVES_NATURE: Mapping[str, float] = MappingProxyType(
    {"learning_rate": 2.5e-4, "rho": 0.95, "momentum": 0.0, "epsilon": 0.01}
)


class RMSPropGraves(keras.optimizers.legacy.Optimizer):
    """Graves' (2013) centred RMSProp with momentum, epsilon inside the square root.

    See the module docstring for the update equations. ``learning_rate`` may be a float, a
    ``keras.optimizers.schedules.LearningRateSchedule`` (evaluated at ``self.iterations``) or a
    zero-argument callable; ``rho``, ``momentum`` and ``epsilon`` are floats. ``**kwargs`` are the
    legacy optimizer's (``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``decay``, ``lr``).

    Slots, per trainable variable: ``"n"`` (running mean of g**2), ``"g_bar"`` (running mean of g)
    and ``"delta"`` (the last step, added to the variable). All start at zero.

    Sparse gradients (``IndexedSlices``, from embedding lookups) update only the rows they touch:
    the untouched rows' slots neither decay nor step, as in TensorFlow's own sparse RMSProp.

    Numerics: ``n - g_bar**2`` is a running variance and is >= 0 in exact arithmetic; rounding can
    make it a few ulps of ``n`` negative, which ``epsilon`` (inside the root) absorbs unless it is
    set far below ``n``'s float precision. No clamp is applied so the update stays exactly Graves'.
    """

    _HAS_AGGREGATE_GRAD = True

    def __init__(
        self,
        learning_rate=GRAVES_DEFAULTS["learning_rate"],
        rho=GRAVES_DEFAULTS["rho"],
        momentum=GRAVES_DEFAULTS["momentum"],
        epsilon=GRAVES_DEFAULTS["epsilon"],
        name="RMSPropGraves",
        **kwargs,
    ):
        super().__init__(name, **kwargs)
        for label, value, low, high in (("rho", rho, 0.0, 1.0), ("momentum", momentum, 0.0, 1.0)):
            if isinstance(value, (int, float)) and not low <= value < high:
                raise ValueError(f"RMSPropGraves: `{label}` must be in [0, 1); got {value!r}")
        if not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"RMSPropGraves: `epsilon` must be a float > 0; got {epsilon!r}")
        self._set_hyper("learning_rate", kwargs.get("lr", learning_rate))
        self._set_hyper("decay", self._initial_decay)
        self._set_hyper("rho", rho)
        self._set_hyper("momentum", momentum)
        self.epsilon = float(epsilon)

    # --- presets ------------------------------------------------------------------------------
    @classmethod
    def nature(cls, **overrides) -> RMSPropGraves:
        """The DQN Nature paper's settings (:data:`GRAVES_NATURE`); keyword arguments override."""
        return cls(**{**GRAVES_NATURE, "name": "RMSPropGravesNature", **overrides})

    # --- OptimizerV2 hooks ----------------------------------------------------------------------
    def _create_slots(self, var_list):
        for slot in ("n", "g_bar", "delta"):
            for var in var_list:
                self.add_slot(var, slot)  # zeros

    def _prepare_local(self, var_device, var_dtype, apply_state):
        super()._prepare_local(var_device, var_dtype, apply_state)  # lr_t (schedule, decay)
        rho = tf.identity(self._get_hyper("rho", var_dtype))
        apply_state[(var_device, var_dtype)].update(
            dict(
                rho=rho,
                one_minus_rho=1.0 - rho,
                momentum=tf.identity(self._get_hyper("momentum", var_dtype)),
                epsilon=tf.convert_to_tensor(self.epsilon, var_dtype),
            )
        )

    def _coefficients(self, var, apply_state):
        var_device, var_dtype = var.device, var.dtype.base_dtype
        return (apply_state or {}).get((var_device, var_dtype)) or self._fallback_apply_state(var_device, var_dtype)

    @staticmethod
    def _step(c, grad, n, g_bar, delta):
        """The four equations on tensors; returns the new ``(n, g_bar, delta)``."""
        n_t = c["rho"] * n + c["one_minus_rho"] * tf.square(grad)
        g_bar_t = c["rho"] * g_bar + c["one_minus_rho"] * grad
        delta_t = c["momentum"] * delta - c["lr_t"] * grad / tf.sqrt(n_t - tf.square(g_bar_t) + c["epsilon"])
        return n_t, g_bar_t, delta_t

    def _resource_apply_dense(self, grad, var, apply_state=None):
        c = self._coefficients(var, apply_state)
        n, g_bar, delta = (self.get_slot(var, s) for s in ("n", "g_bar", "delta"))
        n_t, g_bar_t, delta_t = self._step(c, grad, n, g_bar, delta)
        lock = self._use_locking
        n_op = tf.compat.v1.assign(n, n_t, use_locking=lock)
        g_bar_op = tf.compat.v1.assign(g_bar, g_bar_t, use_locking=lock)
        delta_op = tf.compat.v1.assign(delta, delta_t, use_locking=lock)
        var_op = tf.compat.v1.assign_add(var, delta_t, use_locking=lock)
        return tf.group(n_op, g_bar_op, delta_op, var_op)

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        # OptimizerV2 sums duplicate indices before calling this, so `indices` are unique.
        c = self._coefficients(var, apply_state)
        n, g_bar, delta = (self.get_slot(var, s) for s in ("n", "g_bar", "delta"))
        n_t, g_bar_t, delta_t = self._step(
            c, grad, tf.gather(n, indices), tf.gather(g_bar, indices), tf.gather(delta, indices)
        )
        n_op = self._resource_scatter_update(n, indices, n_t)
        g_bar_op = self._resource_scatter_update(g_bar, indices, g_bar_t)
        delta_op = self._resource_scatter_update(delta, indices, delta_t)
        var_op = self._resource_scatter_add(var, indices, delta_t)
        return tf.group(n_op, g_bar_op, delta_op, var_op)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "learning_rate": self._serialize_hyperparameter("learning_rate"),
                "decay": self._initial_decay,
                "rho": self._serialize_hyperparameter("rho"),
                "momentum": self._serialize_hyperparameter("momentum"),
                "epsilon": self.epsilon,
            }
        )
        return config


def graves_nature(**overrides) -> RMSPropGraves:
    """The DQN Nature preset by name: ``RMSPropGraves.nature(**overrides)``."""
    return RMSPropGraves.nature(**overrides)


#: For ``keras.optimizers.deserialize(config, custom_objects=CUSTOM_OBJECTS)`` and model loading.
CUSTOM_OBJECTS: Mapping[str, type] = MappingProxyType({"RMSPropGraves": RMSPropGraves})

# --- optimizers by name ------------------------------------------------------------------------

_OPTIMIZER_FACTORIES: Mapping[str, Callable[..., object]] = MappingProxyType(
    {
        "rmsprop": keras.optimizers.legacy.RMSprop,  # Keras default lr 1e-3
        "graves": RMSPropGraves,  # lr 1e-4
        "graves_nature": graves_nature,  # lr 2.5e-4
        "adam": keras.optimizers.legacy.Adam,  # Keras default lr 1e-3
    }
)

#: The names :func:`make_optimizer` accepts.
OPTIMIZERS: tuple[str, ...] = tuple(_OPTIMIZER_FACTORIES)


def make_optimizer(
    name: str, learning_rate: float | None = None, max_grad_norm: float | None = None, epsilon: float | None = None
):
    """A fresh legacy (OptimizerV2) Keras optimizer by name, one of :data:`OPTIMIZERS`.

    ``learning_rate=None`` keeps that optimizer's own default: RMSprop 1e-3 and Adam 1e-3 (Keras'
    defaults), ``graves`` 1e-4, ``graves_nature`` 2.5e-4. ``max_grad_norm`` clips the gradient's
    global norm (Keras' ``global_clipnorm``, what PyTorch's ``clip_grad_norm_`` does in
    Stable-Baselines3); None: no clipping. ``epsilon`` replaces the constant every one of them adds
    to its denominator (Keras' 1e-7 for RMSprop and Adam; RMSPropGraves' 1e-4, its Nature preset's
    0.01, under the root; Rainbow's Adam used 1.5e-4); None: the optimizer's own. Other hyperparameters are always the
    optimizer's defaults / preset. Raises ``ValueError`` for an unknown name or a learning rate,
    norm or epsilon that is not a finite number > 0.
    """
    try:
        factory = _OPTIMIZER_FACTORIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}") from None
    options: dict[str, float] = {}
    for label, value, keyword in (
        ("learning_rate", learning_rate, "learning_rate"),
        ("max_grad_norm", max_grad_norm, "global_clipnorm"),
        ("epsilon", epsilon, "epsilon"),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{label} must be a finite number > 0 or None; got {value!r}")
        options[keyword] = float(value)
    return factory(**options)


# --- TD-error losses ---------------------------------------------------------------------------

#: The loss names :func:`make_loss` accepts.
LOSSES: tuple[str, ...] = ("huber", "mse")

LossFn = Callable[[object, object], object]


def _huber(delta_clip: float) -> LossFn:
    def huber(y_true, y_pred):
        # Identical to rl.util.huber_loss(y_true, y_pred, delta_clip), keras-rl's DQN loss.
        x = y_true - y_pred
        squared = 0.5 * backend.square(x)
        if math.isinf(delta_clip):
            return squared  # comparing with inf is avoided, as keras-rl does
        linear = delta_clip * (backend.abs(x) - 0.5 * delta_clip)
        return tf.where(backend.abs(x) < delta_clip, squared, linear)

    huber.__name__ = f"huber_{delta_clip:g}"
    return huber


def _squared_error(y_true, y_pred):
    return backend.square(y_true - y_pred)


def make_loss(name_or_fn: str | LossFn, delta_clip: float = math.inf) -> LossFn:
    """The element-wise TD-error loss ``(y_true, y_pred) -> tensor`` (same shape, not reduced).

    * ``"huber"``: Huber loss with threshold ``delta_clip``, equal to keras-rl's
      ``rl.util.huber_loss(y_true, y_pred, delta_clip)``: ``0.5 x**2`` for ``|x| < delta_clip``,
      ``delta_clip * (|x| - 0.5 delta_clip)`` beyond (``x = y_true - y_pred``). With
      ``delta_clip=inf`` it is ``0.5 x**2`` everywhere. ``delta_clip`` must be > 0.
    * ``"mse"``: the plain squared error ``x**2`` (no 0.5 factor, so twice the unclipped Huber;
      its gradient is ``2x``). ``delta_clip`` is ignored.
    * a callable ``(y_true, y_pred) -> element-wise tensor``: returned unchanged.

    Raises ``ValueError`` for an unknown name or a ``delta_clip`` that is not > 0.
    """
    if callable(name_or_fn):
        return name_or_fn
    if name_or_fn not in LOSSES:
        raise ValueError(f"unknown loss {name_or_fn!r}; expected one of: {', '.join(LOSSES)} or a callable")
    if name_or_fn == "mse":
        return _squared_error
    try:
        delta_clip = float(delta_clip)
    except (TypeError, ValueError):
        raise ValueError(f"delta_clip must be a number > 0; got {delta_clip!r}") from None
    if not delta_clip > 0:  # also rejects NaN
        raise ValueError(f"delta_clip must be a number > 0; got {delta_clip!r}")
    return _huber(delta_clip)
