"""Training-state checkpoints for exact resume: everything a run needs to go on as if never stopped.

A checkpoint is a folder `checkpoints/state-<step>/` (harness.core.rundir names, lists and checks it):

  weights.h5       the online network (Keras HDF5; `play` and a weights-only resume read it too)
  state.npz        arrays: the target network's weights, the optimizer's (its slots and iteration
                   counter), noisy layers' draw counters (harness.kerasrl.noisy), and unless
                   `checkpoint_memory=false` the replay memory in its own dtypes (uint8 frames stay
                   uint8; a prioritized memory's priorities, sum tree and generator too)
  state.json       strict JSON: the global step, every random generator's state (Python's, NumPy's
                   global one, which keras-rl's policies and memory draw from, the env's own
                   generators and its action space's), the memory's scalars, and what the runner's
                   callbacks carry on (metrics.json's episodes, the validation history)
  best_weights.h5  with validation: the best-validated weights so far
  complete.json    written last: the size of every file above

It is written into a temporary folder beside it (`.state-<step>.*`) and renamed into place, so a
`state-<step>/` folder is all there or absent; the marker also catches a file truncated afterwards.
A process kill cannot lose what was written (the kernel has it); nothing is fsynced, so a power
cut can, and the marker check then skips that checkpoint.

The callback that takes checkpoints (harness.kerasrl.callbacks.StateCheckpoint) does so at an
episode boundary, so no game state is saved beyond the env's random generators: keras-rl's `fit`
resets the env before it acts again, and the games draw each new episode from those at reset.
Generators are found by looking: every `numpy.random.Generator` attribute of the unwrapped env
(gymnasium's `np_random`, Cave's flicker generator). A game that keeps randomness anywhere else is
not resumed exactly.

No pickle: arrays load with allow_pickle=False, everything else is JSON.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.core import files, signals
from harness.core.errors import UserError, one_line
from harness.core.rundir import STATE_MARKER, STATE_WEIGHTS, read_json
from harness.kerasrl.agents import load_weights_checked, weights_bytes
from harness.kerasrl.compat import backend
from harness.kerasrl.fast import FastDQNAgent
from harness.kerasrl.noisy import noise_counters

__all__ = ["BEST_WEIGHTS", "STATE_ARRAYS", "STATE_JSON", "load", "restore_random_states", "save"]

FORMAT = 1
STATE_ARRAYS = "state.npz"
STATE_JSON = "state.json"
BEST_WEIGHTS = "best_weights.h5"

_UMASK = os.umask(0)
os.umask(_UMASK)

# The bit generators a saved Generator state may name (looked up in this table, never by eval).
_BIT_GENERATORS = {
    cls.__name__: cls
    for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox, np.random.SFC64)
}


# ---------------------------------------------------------------------------------------------
# Saving


def save(
    directory: Path,
    agent: Any,
    env: Any,
    extra: dict[str, Any],
    with_memory: bool = True,
    best_weights: Path | None = None,
) -> None:
    """Write the agent's whole training state to the new folder `directory` (see the module
    docstring); `extra` is JSON data stored beside it (the callbacks' histories)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    arrays, memory_meta = _arrays(agent, with_memory)
    # Checked before anything is written: HDF5 does not fail cleanly half-way (files.write_with).
    arrays_bytes = sum(array.nbytes for array in arrays.values()) + 1024 * len(arrays)
    best_bytes = best_weights.stat().st_size if best_weights is not None and best_weights.is_file() else 0
    files.check_room(
        directory, weights_bytes(agent) + arrays_bytes + best_bytes, max(weights_bytes(agent), arrays_bytes)
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    # A signal stops the run after the checkpoint, not inside its HDF5 write (signals.deferred).
    with signals.deferred():
        try:
            os.chmod(tmp, 0o777 & ~_UMASK)
            agent.save_weights(str(tmp / STATE_WEIGHTS), overwrite=True)
            with open(tmp / STATE_ARRAYS, "wb") as out:  # a file object: np.savez would rename a path
                np.savez(out, **cast(dict[str, Any], arrays))  # (numpy's stub types **kwds as allow_pickle)
            files.write_json(
                tmp / STATE_JSON,
                {
                    "format": FORMAT,
                    "step": int(agent.step),
                    "random": random_states(env),
                    "memory": memory_meta,
                    "optimizer": _optimizer(agent) is not None,
                    **extra,
                },
            )
            if best_weights is not None and best_weights.is_file():
                shutil.copyfile(best_weights, tmp / BEST_WEIGHTS)
            sizes = {path.name: path.stat().st_size for path in sorted(tmp.iterdir())}
            files.write_json(tmp / STATE_MARKER, {"format": FORMAT, "step": int(agent.step), "files": sizes})
            os.rename(tmp, directory)
        except OSError as err:
            if not files.no_room(err):
                raise
            raise files.disk_full(directory, err) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; left behind only on failure


def _optimizer(agent: Any) -> Any:
    """The optimizer whose slots are saved: the fast path's. keras-rl's stock DQNAgent builds its
    optimizer's slots inside Keras' training function at the first train step, too late to load
    them into, so the stock path resumes with fresh slots (documented in the manual)."""
    return agent.optimizer if isinstance(agent, FastDQNAgent) else None


def _noise_counters(agent: Any) -> list[Any]:
    return noise_counters(agent.model) + noise_counters(agent.target_model)


def _arrays(agent: Any, with_memory: bool) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    arrays = {f"target_{k:03d}": w for k, w in enumerate(agent.target_model.get_weights())}
    optimizer = _optimizer(agent)
    if optimizer is not None:
        arrays.update({f"optimizer_{k:03d}": w for k, w in enumerate(optimizer.get_weights())})
    counters = _noise_counters(agent)
    if counters:
        arrays["noise_draws"] = np.array(backend.batch_get_value(counters), dtype=np.int64)
    if not with_memory or not hasattr(agent.memory, "get_state"):
        return arrays, None  # keras-rl's SequentialMemory (fast_path=false) is not saved
    memory_arrays, meta = agent.memory.get_state()
    arrays.update({f"memory_{name}": value for name, value in memory_arrays.items()})
    return arrays, meta


# ---------------------------------------------------------------------------------------------
# Loading


def load(directory: Path, agent: Any, what: str) -> dict[str, Any]:
    """Load the checkpoint folder `directory` into `agent` (networks, optimizer, memory) and return
    its state.json (the step, random states and the callbacks' data; apply the random states with
    `restore_random_states` just before training). Every failure is a UserError; `what` names the
    network, for the message."""
    data = read_json(directory / STATE_JSON)
    if data.get("format") != FORMAT:
        raise UserError(f"{directory / STATE_JSON}: format {data.get('format')!r}; expected {FORMAT}")
    load_weights_checked(agent, directory / STATE_WEIGHTS, what)  # also copies them to the target network
    try:
        with np.load(directory / STATE_ARRAYS, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        agent.target_model.set_weights(_numbered(arrays, "target"))
        optimizer = _optimizer(agent)
        if data["optimizer"] and optimizer is not None:
            optimizer.set_weights(_numbered(arrays, "optimizer"))
        counters = _noise_counters(agent)
        if counters:
            backend.batch_set_value(list(zip(counters, arrays["noise_draws"], strict=True)))
        if data["memory"] is not None and hasattr(agent.memory, "set_state"):
            prefix = "memory_"
            memory = {name[len(prefix) :]: value for name, value in arrays.items() if name.startswith(prefix)}
            agent.memory.set_state(memory, data["memory"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise UserError(f"{directory} can't be resumed from: {one_line(err)}") from None
    return data


def _numbered(arrays: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [arrays[name] for name in sorted(n for n in arrays if n.startswith(prefix + "_"))]


# ---------------------------------------------------------------------------------------------
# Random generators


def random_states(env: Any) -> dict[str, Any]:
    """Every random generator a run draws from, as JSON data."""
    return {
        "python": _jsonable(random.getstate()),
        "numpy": _jsonable(np.random.get_state()),
        "env": {name: _jsonable(g.bit_generator.state) for name, g in _env_generators(env).items()},
        "action_space": _jsonable(env.action_space.np_random.bit_generator.state),
    }


def restore_random_states(env: Any, states: dict[str, Any]) -> None:
    """Put back what `random_states` saved; `env` then continues its random streams at its next
    reset instead of reseeding (KerasRLEnv seeds the first reset otherwise)."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, _array(keys), pos, has_gauss, cached))
    env.reseed(None)
    game = env.unwrapped
    for attribute, state in states["env"].items():
        generator = getattr(game, attribute, None)
        if not isinstance(generator, np.random.Generator):  # made at the first reset (Cave's flicker)
            generator = np.random.Generator(_BIT_GENERATORS[state["bit_generator"]]())
            setattr(game, attribute, generator)
        generator.bit_generator.state = _from_json(state)
    env.action_space.np_random.bit_generator.state = _from_json(states["action_space"])


def _env_generators(env: Any) -> dict[str, np.random.Generator]:
    game = env.unwrapped
    _ = game.np_random  # gymnasium makes its generator on first use: make it, to save it
    return {name: value for name, value in vars(game).items() if isinstance(value, np.random.Generator)}


def _jsonable(value: Any) -> Any:
    """Generator states as JSON: arrays as {"ndarray": [...], "dtype": ...}, tuples as lists."""
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _array(value: Any) -> Any:
    return np.array(value["ndarray"], dtype=value["dtype"]) if isinstance(value, dict) else value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return _array(value) if "ndarray" in value else {key: _from_json(item) for key, item in value.items()}
    return value
