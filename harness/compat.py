"""keras-rl2 1.0.5 on TensorFlow 2.21 with tf-keras: the one place that makes it work.

keras-rl2 was written for TensorFlow 2.1-2.4 and Keras 2. Every module of this project that needs
keras-rl, TensorFlow or Keras imports them from here, so that the environment and the shims below
are in force before the first TensorFlow import, and nothing else patches a library.

What is wrong out of the box, and what each shim does about it, is said beside the shim.
"""
from __future__ import annotations

import os
import sys
import types
import warnings

# --- Environment, before TensorFlow is imported ------------------------------------------------
# TensorFlow 2.16+ maps `tensorflow.keras` to Keras 3, which has neither the graph-mode training
# loop (`training_v1`) nor the Keras 2 APIs keras-rl calls; TF_USE_LEGACY_KERAS=1 maps it to tf-keras
# (Keras 2) instead. It is read when `tensorflow.keras` is first resolved, so it must be set first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine, oneDNN notices) buries our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN kernels may reorder floating-point sums between runs; off, a seed gives the same numbers.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "harness.compat must be imported before TensorFlow (or run with TF_USE_LEGACY_KERAS=1): "
        "keras-rl2 needs tf-keras (Keras 2), not Keras 3"
    )

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

tf.get_logger().setLevel("ERROR")
# tf-keras' graph-mode `train_on_batch` warns on every compile that `Model.state_updates` will be
# removed; it is tf-keras talking to itself, nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`Model.state_updates` will be removed")

if "tf_keras" not in (getattr(tf.keras, "__file__", "") or ""):
    raise ImportError(
        "tensorflow.keras is not tf-keras; set TF_USE_LEGACY_KERAS=1 before importing TensorFlow"
    )

# --- Shim 1: `from tensorflow.keras import __version__` ----------------------------------------
# rl/callbacks.py does this to pick a Progbar signature; tf-keras' public API module does not
# re-export `__version__` (the ImportError a new user hits first). Give it the real version.
import tensorflow.keras as _tf_keras_api  # noqa: E402  (the module `from tensorflow.keras import` reads)

_tf_keras_api.__version__ = tf_keras.__version__

# --- Shim 2: graph mode -------------------------------------------------------------------------
# DQNAgent.compile builds a trainable model whose loss is a Lambda layer fed by extra Inputs and
# trains it with `train_on_batch` on a model that mixes functional pieces; that only works in the
# TF1-style graph mode keras-rl2 was written against (eager mode fails inside `compile`).
tf.compat.v1.disable_eager_execution()

import rl.core  # noqa: E402  (needs the shims above)


# --- Shim 3: the step counter -----------------------------------------------------------------
# Agent.fit counts steps and episodes with `np.int16`. Under NumPy 2 (NEP 50) `np.int16 + 1` stays
# int16, so at step 32,767 the counter wraps to -32,768 and `while self.step < nb_steps` never ends.
# rl.core gets a NumPy namespace whose `int16` is int64; every other name is NumPy's own.
class _NumpyWithWideCounters(types.ModuleType):
    int16 = np.int64

    def __getattr__(self, name: str):
        return getattr(np, name)


rl.core.np = _NumpyWithWideCounters("numpy")

# --- Public re-exports ------------------------------------------------------------------------
from rl.agents.dqn import DQNAgent, mean_q  # noqa: E402
from rl.callbacks import (  # noqa: E402
    Callback,
    FileLogger,
    ModelIntervalCheckpoint,
    TestLogger,
    TrainEpisodeLogger,
    TrainIntervalLogger,
)
from rl.core import Processor  # noqa: E402
from rl.memory import SequentialMemory  # noqa: E402
from rl.util import (  # noqa: E402
    AdditionalUpdatesOptimizer,
    clone_model,
    get_soft_target_model_updates,
    huber_loss,
)
from rl.policy import (  # noqa: E402
    BoltzmannQPolicy,
    EpsGreedyQPolicy,
    GreedyQPolicy,
    LinearAnnealedPolicy,
)

keras = tf_keras
backend = tf_keras.backend

__all__ = [
    "AdditionalUpdatesOptimizer",
    "clone_model",
    "get_soft_target_model_updates",
    "huber_loss",
    "mean_q",
    "BoltzmannQPolicy",
    "Callback",
    "DQNAgent",
    "EpsGreedyQPolicy",
    "FileLogger",
    "GreedyQPolicy",
    "LinearAnnealedPolicy",
    "ModelIntervalCheckpoint",
    "Processor",
    "SequentialMemory",
    "TestLogger",
    "TrainEpisodeLogger",
    "TrainIntervalLogger",
    "backend",
    "keras",
    "np",
    "tf",
]
