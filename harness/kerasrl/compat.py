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
from typing import Any

# --- Environment, before TensorFlow is imported ------------------------------------------------
# TensorFlow 2.16+ maps `tensorflow.keras` to Keras 3, which has neither the graph-mode training
# loop (`training_v1`) nor the Keras 2 APIs keras-rl calls; TF_USE_LEGACY_KERAS=1 maps it to tf-keras
# (Keras 2) instead. It is read when `tensorflow.keras` is first resolved, so it must be set first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine, oneDNN notices) buries our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN kernels: `run` and `play` choose per experiment before this import (harness.core.schema.
# choose_onednn: on for conv networks); code that imports TensorFlow first gets them off, as the
# harness always had them. Same-seed runs give identical numbers either way at a fixed thread
# count (checked on cave_conv and catch_dense; tests/test_runner.py).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ONEDNN = os.environ["TF_ENABLE_ONEDNN_OPTS"].strip().lower() in ("1", "true")

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise ImportError(
        "harness.kerasrl.compat must be imported before TensorFlow (or run with TF_USE_LEGACY_KERAS=1): "
        "keras-rl2 needs tf-keras (Keras 2), not Keras 3"
    )


def _threads_from_env() -> int | None:
    """DQN_HARNESS_THREADS=n: TensorFlow thread pool sizes for this process (None: TF's default,
    one thread per core). A sweep sets it so that parallel runs do not fight over the cores."""
    text = os.environ.get("DQN_HARNESS_THREADS", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        from harness.core.errors import UserError

        raise UserError(f"DQN_HARNESS_THREADS={text!r} is not allowed; expected a positive integer")
    return int(text)


_THREADS = _threads_from_env()

import numpy as np
import tensorflow as tf
import tf_keras

if _THREADS is not None:
    # Must happen before TensorFlow's context is initialised (the first session or op). tf-keras
    # builds its graph-mode session from `get_default_session_config()`, which copies this context
    # config, so the keras-rl session gets these pool sizes (tests/test_sweep.py checks it).
    tf.config.threading.set_intra_op_parallelism_threads(_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(_THREADS)

tf.get_logger().setLevel("ERROR")
# tf-keras' graph-mode `train_on_batch` warns on every compile that `Model.state_updates` will be
# removed; it is tf-keras talking to itself, nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`Model.state_updates` will be removed")

if "tf_keras" not in (getattr(tf.keras, "__file__", "") or ""):
    raise ImportError("tensorflow.keras is not tf-keras; set TF_USE_LEGACY_KERAS=1 before importing TensorFlow")

# --- Shim 1: `from tensorflow.keras import __version__` ----------------------------------------
# rl/callbacks.py does this to pick a Progbar signature; tf-keras' public API module does not
# re-export `__version__` (the ImportError a new user hits first). Give it the real version.
import tensorflow.keras as _tf_keras_api  # the module `from tensorflow.keras import` reads

_tf_keras_api.__version__ = tf_keras.__version__

# --- Shim 2: graph mode -------------------------------------------------------------------------
# DQNAgent.compile builds a trainable model whose loss is a Lambda layer fed by extra Inputs and
# trains it with `train_on_batch` on a model that mixes functional pieces; that only works in the
# TF1-style graph mode keras-rl2 was written against (eager mode fails inside `compile`).
tf.compat.v1.disable_eager_execution()

import rl.core  # needs the shims above


# --- Shim 3: the step counter -----------------------------------------------------------------
# Agent.fit counts steps and episodes with `np.int16`. Under NumPy 2 (NEP 50) `np.int16 + 1` stays
# int16, so at step 32,767 the counter wraps to -32,768 and `while self.step < nb_steps` never ends.
# rl.core gets a NumPy namespace whose `int16` is int64; every other name is NumPy's own.
class _NumpyWithWideCounters(types.ModuleType):
    int16 = np.int64

    def __getattr__(self, name: str):
        return getattr(np, name)


rl.core.np = _NumpyWithWideCounters("numpy")


# --- Shim 4: cloning the online network for the target network -----------------------------------
# DQNAgent.compile builds the target network with rl.util.clone_model (NAFAgent and DDPGAgent theirs
# too), which rebuilds the model from its config. With a Lambda layer (keras-rl's dueling head, a
# DDPG actor scaling its output to the action bounds) that fails, rightly: tf-keras' safe mode
# refuses to rebuild a Lambda from config, since that means loading marshalled bytecode.
# Keras' own clone_model copies the layers in memory instead; Lambda layers are re-made around the
# same Python function, so nothing is deserialized.
def _clone_layer(layer: Any) -> Any:
    if isinstance(layer, tf_keras.layers.Lambda):
        return tf_keras.layers.Lambda(
            layer.function, output_shape=layer._output_shape, arguments=layer.arguments, name=layer.name
        )
    return layer.__class__.from_config(layer.get_config())


def _clone_model(model: Any, custom_objects: Any = None) -> Any:
    clone = tf_keras.models.clone_model(model, clone_function=_clone_layer)
    clone.set_weights(model.get_weights())
    return clone


import rl.agents.ddpg
import rl.agents.dqn
import rl.util

rl.util.clone_model = _clone_model
# dqn.py (DQNAgent, NAFAgent) and ddpg.py (DDPGAgent) bound the name with `from rl.util import *`.
rl.agents.dqn.clone_model = _clone_model
rl.agents.ddpg.clone_model = _clone_model

# --- Shim 5: gradients through `tf.scan` in a graph that a session has already run -------------
# NAFAgent's NAFLayer builds its covariance matrix with `tf.scan`, a v2 while loop. Its gradient
# needs values from inside the loop. Built in a Keras layer, the loop emits most of them up front,
# but by default the gradient code still moves some (shape computations) into the forward loop
# when the gradient is built, adding outputs to the While op. keras-rl builds that gradient lazily,
# at the first `train_on_batch`, after `forward` has already run the graph in the session, so the session
# cannot take the grown op: "Connecting to invalid output 39 of source node naf_layer/scan/while which
# has 39 outputs. Try using tf.compat.v1.experimental.output_all_intermediates(True)". That setting
# (TensorFlow's switch for Keras models run in a session) makes v2 control flow emit, when it is
# built, everything its gradient can need, so nothing is changed afterwards; it adds outputs and
# changes no value. It only touches graphs with v2 control flow; the harness' own networks have none
# (their graph defs are identical with and without it: all four experiments, both paths, trained).
tf.compat.v1.experimental.output_all_intermediates(True)

# --- Public re-exports ------------------------------------------------------------------------
from rl.agents.cem import CEMAgent
from rl.agents.ddpg import DDPGAgent
from rl.agents.dqn import DQNAgent, NAFAgent, mean_q
from rl.agents.sarsa import SARSAAgent
from rl.callbacks import (
    Callback,
    FileLogger,
    ModelIntervalCheckpoint,
    TestLogger,
    TrainEpisodeLogger,
    TrainIntervalLogger,
)
from rl.core import Processor
from rl.memory import EpisodeParameterMemory, Experience, Memory, SequentialMemory, sample_batch_indexes
from rl.policy import (
    BoltzmannQPolicy,
    EpsGreedyQPolicy,
    GreedyQPolicy,
    LinearAnnealedPolicy,
)
from rl.processors import MultiInputProcessor
from rl.random import OrnsteinUhlenbeckProcess
from rl.util import (
    AdditionalUpdatesOptimizer,
    clone_optimizer,
    get_soft_target_model_updates,
    huber_loss,
)

# The session-callable options proto (harness/kerasrl/fast.py calls graphs through it, as tf-keras'
# backend.function does underneath); tf.compat.v1 does not export it.
from tensorflow.core.protobuf.config_pb2 import CallableOptions

# Registers a variable that is not a layer weight with tf-keras' session, which initialises the
# variables it tracks (harness/kerasrl/noisy.py's noise switch); tf_keras.backend does not export it.
from tf_keras.src.backend import track_variable

keras = tf_keras
backend = tf_keras.backend
clone_model = _clone_model

__all__ = [
    "AdditionalUpdatesOptimizer",
    "CEMAgent",
    "CallableOptions",
    "track_variable",
    "DDPGAgent",
    "EpisodeParameterMemory",
    "Experience",
    "Memory",
    "sample_batch_indexes",
    "clone_model",
    "clone_optimizer",
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
    "MultiInputProcessor",
    "NAFAgent",
    "OrnsteinUhlenbeckProcess",
    "Processor",
    "SARSAAgent",
    "SequentialMemory",
    "TestLogger",
    "TrainEpisodeLogger",
    "TrainIntervalLogger",
    "backend",
    "keras",
    "np",
    "tf",
]
