"""Tests for harness/optimizers.py: RMSPropGraves exactness, config, keras-rl use, factories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.kerasrl.compat import DQNAgent, SequentialMemory, backend, keras, tf
from harness.kerasrl.optimizers import (
    CUSTOM_OBJECTS,
    GRAVES_DEFAULTS,
    GRAVES_NATURE,
    LOSSES,
    OPTIMIZERS,
    RMSPropGraves,
    graves_nature,
    make_loss,
    make_optimizer,
)

RTOL, ATOL = 1e-6, 1e-7
STEPS = 60


# --- helpers ------------------------------------------------------------------------------------
def _hypers(opt) -> dict:
    cfg = opt.get_config()
    return {k: cfg[k] for k in ("learning_rate", "rho", "momentum", "epsilon")}


def _train(optimizer, steps=STEPS):
    """Train Dense 5->4 relu->3 with MSE by `train_on_batch` in graph mode.

    Returns the initial weights, the float32 gradients evaluated at the weights before each step
    (with the model's own compiled loss, so they are the gradients the step applies), and the
    weights after each step.
    """
    backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(5,)), keras.layers.Dense(3)])
    model.compile(optimizer=optimizer, loss="mse")
    grads_fn = backend.function(
        model._feed_inputs + model._feed_targets,
        backend.gradients(model.total_loss, model.trainable_weights),
    )
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(7, 8, 5)).astype("float32")
    ys = (2.0 * rng.normal(size=(7, 8, 3))).astype("float32")
    init = [w.astype(np.float64) for w in model.get_weights()]
    grads, after = [], []
    for k in range(steps):
        x, y = xs[k % len(xs)], ys[k % len(ys)]
        grads.append([np.asarray(g) for g in grads_fn([x, y])])
        model.train_on_batch(x, y)
        after.append(model.get_weights())
    assert all(g.dtype == np.float32 for g in grads[0])
    return init, grads, after


def _reference(init, grads, learning_rate, rho, momentum, epsilon, eps_inside_sqrt=True):
    """Graves' four equations in float64 NumPy, fed the recorded float32 gradients."""
    theta = [w.copy() for w in init]
    n = [np.zeros_like(w) for w in init]
    g_bar = [np.zeros_like(w) for w in init]
    delta = [np.zeros_like(w) for w in init]
    out = []
    for step_grads in grads:
        for i, g32 in enumerate(step_grads):
            g = g32.astype(np.float64)
            n[i] = rho * n[i] + (1 - rho) * g**2
            g_bar[i] = rho * g_bar[i] + (1 - rho) * g
            if eps_inside_sqrt:
                denom = np.sqrt(n[i] - g_bar[i] ** 2 + epsilon)
            else:  # Keras' centred RMSprop: epsilon outside the root (the sensitivity check)
                denom = np.sqrt(n[i] - g_bar[i] ** 2) + epsilon
            delta[i] = momentum * delta[i] - learning_rate * g / denom
            theta[i] = theta[i] + delta[i]
        out.append([w.copy() for w in theta])
    return out


def _assert_trajectory(after, ref):
    for k, (got_step, ref_step) in enumerate(zip(after, ref)):
        for i, (got, want) in enumerate(zip(got_step, ref_step)):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"step {k + 1}, weight {i}")


# --- exactness ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "factory, hypers",
    [(RMSPropGraves, dict(GRAVES_DEFAULTS)), (RMSPropGraves.nature, dict(GRAVES_NATURE))],
    ids=["graves", "nature"],
)
def test_matches_numpy_reference(factory, hypers):
    init, grads, after = _train(factory())
    ref = _reference(init, grads, **hypers)
    _assert_trajectory(after, ref)

    # The weights really moved (so agreement is not trivial) ...
    moved = max(np.max(np.abs(a - b)) for a, b in zip(after[-1], init))
    assert moved > 100 * ATOL
    # ... and the comparison is sensitive: epsilon outside the root is rejected.
    wrong = _reference(init, grads, **hypers, eps_inside_sqrt=False)
    with pytest.raises(AssertionError):
        _assert_trajectory(after, wrong)


def test_differs_from_plain_rmsprop():
    """Same constants, Keras' plain RMSprop: not Graves' trajectory, and the check sees it."""
    h = dict(GRAVES_DEFAULTS)
    _, _, graves_after = _train(RMSPropGraves(), steps=20)
    init, grads, keras_after = _train(keras.optimizers.legacy.RMSprop(**h), steps=20)
    assert not all(np.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in zip(graves_after[-1], keras_after[-1]))
    with pytest.raises(AssertionError):
        _assert_trajectory(keras_after, _reference(init, grads, **h))


def test_keras_centred_rmsprop_cross_check():
    """An independent implementation: Keras' centred RMSprop *with momentum* runs TensorFlow's
    fused ResourceApplyCenteredRMSProp kernel, whose `mom` is -delta and whose epsilon is inside
    the root, i.e. exactly Graves' update. Without momentum Keras takes a Python path with epsilon
    outside the root, which is not Graves' (so the Nature preset has no Keras equivalent)."""
    h = dict(GRAVES_DEFAULTS)
    _, _, graves_after = _train(RMSPropGraves(), steps=20)
    _, _, keras_after = _train(keras.optimizers.legacy.RMSprop(centered=True, **h), steps=20)
    for a, b in zip(graves_after[-1], keras_after[-1]):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)

    h = dict(GRAVES_NATURE)
    _, _, graves_after = _train(RMSPropGraves.nature(), steps=20)
    init, grads, keras_after = _train(keras.optimizers.legacy.RMSprop(centered=True, **h), steps=20)
    assert not all(np.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in zip(graves_after[-1], keras_after[-1]))
    _assert_trajectory(keras_after, _reference(init, grads, **h, eps_inside_sqrt=False))


def test_learning_rate_schedule_and_slots():
    backend.clear_session()
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.5)
    opt = RMSPropGraves(learning_rate=schedule)
    var = tf.Variable(np.array([1.0, -2.0], np.float32))
    grad = tf.constant(np.array([0.5, 0.25], np.float32))
    train = opt.apply_gradients([(grad, var)])
    sess = tf.compat.v1.keras.backend.get_session()
    sess.run(tf.compat.v1.variables_initializer(opt.variables() + [var]))
    assert [opt.get_slot(var, s).name.split("/")[-1][:-2] for s in ("n", "g_bar", "delta")] == [
        "n",
        "g_bar",
        "delta",
    ]
    theta, n, gb, d = np.array([1.0, -2.0]), 0.0, 0.0, 0.0
    g = np.array([0.5, 0.25], np.float32).astype(np.float64)
    rho, mu, eps = 0.95, 0.9, 1e-4
    for step in range(3):
        lr = 1e-3 * 0.5**step
        n, gb = rho * n + (1 - rho) * g**2, rho * gb + (1 - rho) * g
        d = mu * d - lr * g / np.sqrt(n - gb**2 + eps)
        theta = theta + d
        sess.run(train)
        np.testing.assert_allclose(sess.run(var), theta, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(sess.run(opt.get_slot(var, "delta")), d, rtol=1e-5, atol=1e-9)


def test_sparse_updates_touched_rows_only():
    backend.clear_session()
    opt = RMSPropGraves(learning_rate=0.1)
    init = np.arange(8, dtype=np.float32).reshape(4, 2)
    var = tf.Variable(init)
    # Rows 1 and 3; row 3 appears twice (its gradient rows are summed).
    grad = tf.IndexedSlices(tf.constant([[1.0, 2.0], [0.5, -1.0], [0.5, 0.0]]), tf.constant([1, 3, 3]))
    train = opt.apply_gradients([(grad, var)])
    sess = tf.compat.v1.keras.backend.get_session()
    sess.run(tf.compat.v1.variables_initializer(opt.variables() + [var]))
    sess.run(train)
    dense_g = np.zeros((4, 2))
    dense_g[1], dense_g[3] = [1.0, 2.0], [1.0, -1.0]
    n, gb = 0.05 * dense_g**2, 0.05 * dense_g
    expect = init - 0.1 * dense_g / np.sqrt(n - gb**2 + 1e-4)
    expect[[0, 2]] = init[[0, 2]]
    np.testing.assert_allclose(sess.run(var), expect, rtol=RTOL, atol=ATOL)


# --- config / serialisation ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "opt_factory",
    [
        lambda: RMSPropGraves(),
        lambda: RMSPropGraves.nature(),
        lambda: RMSPropGraves(learning_rate=3e-3, rho=0.9, momentum=0.5, epsilon=1e-2, clipnorm=1.0),
    ],
    ids=["graves", "nature", "custom"],
)
def test_config_round_trip(opt_factory):
    backend.clear_session()
    opt = opt_factory()
    cfg = opt.get_config()
    again = RMSPropGraves.from_config(cfg)
    assert again.get_config() == cfg
    assert _hypers(again) == pytest.approx(_hypers(opt), rel=1e-7)

    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt), custom_objects=dict(CUSTOM_OBJECTS))
    assert type(restored) is RMSPropGraves
    assert restored.get_config() == cfg
    restored = keras.optimizers.deserialize(
        {"class_name": "RMSPropGraves", "config": cfg},
        custom_objects={"RMSPropGraves": RMSPropGraves},
    )
    assert restored.get_config() == cfg


def test_config_values_and_presets():
    backend.clear_session()
    assert _hypers(RMSPropGraves()) == pytest.approx(dict(GRAVES_DEFAULTS))
    assert GRAVES_DEFAULTS == {"learning_rate": 1e-4, "rho": 0.95, "momentum": 0.9, "epsilon": 1e-4}
    assert GRAVES_NATURE == {"learning_rate": 2.5e-4, "rho": 0.95, "momentum": 0.0, "epsilon": 0.01}
    for opt in (RMSPropGraves.nature(), graves_nature()):
        assert type(opt) is RMSPropGraves
        assert _hypers(opt) == pytest.approx(dict(GRAVES_NATURE))
    assert _hypers(RMSPropGraves.nature(learning_rate=1e-3))["learning_rate"] == pytest.approx(1e-3)
    for bad in (dict(rho=1.0), dict(momentum=-0.1), dict(epsilon=0.0)):
        with pytest.raises(ValueError):
            RMSPropGraves(**bad)


# --- inside keras-rl ----------------------------------------------------------------------------
class _FakeEnv:
    """reset() -> obs (4,); step(a) -> (obs, reward, done, info); episodes of 7 steps."""

    def __init__(self):
        self._rng = np.random.default_rng(0)
        self._t = 0

    def reset(self):
        self._t = 0
        return self._rng.normal(size=4).astype("float32")

    def step(self, action):
        self._t += 1
        reward = 1.0 if action == 1 else -0.5
        return self._rng.normal(size=4).astype("float32"), reward, self._t >= 7, {}


@pytest.mark.parametrize("target_model_update", [10_000, 1e-2], ids=["hard", "soft"])
def test_trains_inside_keras_rl(target_model_update):
    backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Flatten(input_shape=(1, 4)), keras.layers.Dense(3)])
    agent = DQNAgent(
        model=model,
        nb_actions=3,
        memory=SequentialMemory(limit=100, window_length=1),
        nb_steps_warmup=10,
        target_model_update=target_model_update,
    )
    opt = RMSPropGraves(learning_rate=1e-2)
    agent.compile(opt)
    before = [w.copy() for w in model.get_weights()]
    agent.fit(_FakeEnv(), nb_steps=50, verbose=0)
    after = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in after)
    assert any(not np.allclose(a, b) for a, b in zip(after, before))
    assert backend.get_value(opt.iterations) > 0


# --- make_optimizer -----------------------------------------------------------------------------
def test_optimizer_names():
    assert OPTIMIZERS == ("rmsprop", "graves", "graves_nature", "adam")


@pytest.mark.parametrize(
    "name, cls, default_lr",
    [
        ("rmsprop", keras.optimizers.legacy.RMSprop, 1e-3),
        ("graves", RMSPropGraves, 1e-4),
        ("graves_nature", RMSPropGraves, 2.5e-4),
        ("adam", keras.optimizers.legacy.Adam, 1e-3),
    ],
)
def test_make_optimizer(name, cls, default_lr):
    backend.clear_session()
    opt = make_optimizer(name, None)
    assert type(opt) is cls
    assert isinstance(opt, keras.optimizers.legacy.Optimizer)
    assert opt.get_config()["learning_rate"] == pytest.approx(default_lr)
    assert make_optimizer(name, 0.5).get_config()["learning_rate"] == pytest.approx(0.5)
    if name == "graves":
        assert _hypers(opt) == pytest.approx(dict(GRAVES_DEFAULTS))
    if name == "graves_nature":
        assert _hypers(opt) == pytest.approx(dict(GRAVES_NATURE))
        assert _hypers(make_optimizer(name, 1e-3))["epsilon"] == pytest.approx(0.01)
    assert make_optimizer(name) is not make_optimizer(name)  # fresh each time


def _adam_reference(init, grads, learning_rate, epsilon, beta_1=0.9, beta_2=0.999):
    """Keras' legacy Adam in float64 NumPy: lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t), then
    w -= lr_t * m / (sqrt(v) + epsilon)."""
    theta, m, v, out = [w.copy() for w in init], [0.0 * w for w in init], [0.0 * w for w in init], []
    for t, step_grads in enumerate(grads, start=1):
        lr_t = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g32 in enumerate(step_grads):
            g = g32.astype(np.float64)
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g**2
            theta[i] = theta[i] - lr_t * m[i] / (np.sqrt(v[i]) + epsilon)
        out.append([w.copy() for w in theta])
    return out


def test_optimizer_epsilon_is_the_one_in_the_update():
    """optimizer_epsilon (Rainbow's Adam: 1.5e-4) is the epsilon of the update, not Keras' 1e-7."""
    init, grads, after = _train(make_optimizer("adam", 1e-2, None, 0.5), steps=4)
    _assert_trajectory(after, _adam_reference(init, grads, 1e-2, 0.5))
    with pytest.raises(AssertionError):  # the comparison sees the difference
        _assert_trajectory(after, _adam_reference(init, grads, 1e-2, 1e-7))
    for name in OPTIMIZERS:
        assert make_optimizer(name, None, None, 1.5e-4).get_config()["epsilon"] == pytest.approx(1.5e-4)
    for bad in (0.0, -1e-3, math.nan, math.inf, "1e-3", True):
        with pytest.raises(ValueError, match="epsilon must be a finite number > 0"):
            make_optimizer("adam", None, None, bad)


def test_make_optimizer_errors():
    with pytest.raises(ValueError) as err:
        make_optimizer("sgd", None)
    message = str(err.value)
    assert "\n" not in message and "sgd" in message
    assert all(name in message for name in OPTIMIZERS)
    for bad in (0.0, -1e-3, math.nan, math.inf, "1e-3", True):
        with pytest.raises(ValueError):
            make_optimizer("adam", bad)


# --- make_loss ----------------------------------------------------------------------------------
def _eval_loss(fn, y_true, y_pred):
    t = backend.placeholder(shape=y_true.shape)
    p = backend.placeholder(shape=y_pred.shape)
    out = fn(t, p)
    return backend.function([t, p], [out])([y_true, y_pred])[0]


_Y_TRUE = np.array([[0.0, 1.0, -3.0, 0.2], [2.5, -0.7, 0.0, 10.0]], np.float32)
_Y_PRED = np.array([[0.3, -1.5, 1.0, 0.2], [2.0, -0.7, -0.99, -10.0]], np.float32)


@pytest.mark.parametrize("delta_clip", [1.0, 0.5, 2.0, np.inf])
def test_huber_matches_keras_rl(delta_clip):
    from rl.util import huber_loss

    backend.clear_session()
    got = _eval_loss(make_loss("huber", delta_clip), _Y_TRUE, _Y_PRED)
    want = _eval_loss(lambda t, p: huber_loss(t, p, delta_clip), _Y_TRUE, _Y_PRED)
    assert got.shape == _Y_TRUE.shape  # element-wise, not reduced
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=0)
    x = (_Y_TRUE - _Y_PRED).astype(np.float64)
    if np.isinf(delta_clip):
        expect = 0.5 * x**2
    else:
        linear = delta_clip * (np.abs(x) - 0.5 * delta_clip)
        expect = np.where(np.abs(x) < delta_clip, 0.5 * x**2, linear)
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    # Genuinely clipped for finite delta: the 20-unit error is linear, not quadratic.
    if not np.isinf(delta_clip):
        assert got[1, 3] == pytest.approx(delta_clip * (20.0 - 0.5 * delta_clip), rel=1e-6)


def test_mse_and_callable_losses():
    backend.clear_session()
    x = (_Y_TRUE - _Y_PRED).astype(np.float64)
    mse = _eval_loss(make_loss("mse", 1.0), _Y_TRUE, _Y_PRED)
    assert mse.shape == _Y_TRUE.shape
    np.testing.assert_allclose(mse, x**2, rtol=1e-6)

    def abs_error(y_true, y_pred):
        return backend.abs(y_true - y_pred)

    assert make_loss(abs_error, 1.0) is abs_error
    got = _eval_loss(make_loss(abs_error), _Y_TRUE, _Y_PRED)
    np.testing.assert_allclose(got, np.abs(x), rtol=1e-6)


def test_make_loss_errors():
    assert LOSSES == ("huber", "mse")
    with pytest.raises(ValueError) as err:
        make_loss("logcosh", 1.0)
    message = str(err.value)
    assert "\n" not in message and "logcosh" in message
    assert all(name in message for name in LOSSES)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError):
            make_loss("huber", bad)
