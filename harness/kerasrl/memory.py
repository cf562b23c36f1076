"""The fast path's replay memory, `RingMemory`: keras-rl's `SequentialMemory` in preallocated NumPy
ring buffers (see harness.kerasrl.fast for why the fast path exists), and the batch it trains on,
`Batch`, with n-step returns. Prioritized replay builds on it in harness.kerasrl.prioritized.

Observations are arrays, or, for a network with several inputs, tuples of arrays (one per input,
what keras-rl's `MultiInputProcessor` takes); a batch's states are then a tuple of per-input
arrays (`States`)."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple, overload

import numpy as np

from harness.kerasrl.compat import Experience, Memory, sample_batch_indexes

__all__ = ["Batch", "RingMemory", "States"]

#: A batch of states: (batch, window, *observation) for array observations, or one such array per
#: component for tuple observations (RingMemory(components=n)).
States = np.ndarray | tuple[np.ndarray, ...]


class Batch(NamedTuple):
    """What one train step learns from: the target is `returns + discounts * Q_target(bootstrap, a*)`.

    `returns` is the n-step discounted reward sum, `discounts` is gamma**m for the m steps summed,
    or 0 where a terminal lies among them (nothing to bootstrap from). `weights` are prioritized
    replay's importance-sampling weights (None: uniform replay) and `slots` the ring slots of the
    transitions, for its priority update.
    """

    state0: States
    actions: np.ndarray
    returns: np.ndarray
    bootstrap: States
    discounts: np.ndarray
    weights: np.ndarray | None = None
    slots: np.ndarray | None = None


class RingMemory(Memory):
    """keras-rl's `SequentialMemory`, stored in preallocated NumPy ring buffers.

    Same interface and semantics as `SequentialMemory(limit, window_length=...)`: `append`,
    `sample(batch_size, batch_idxs=None)` returning keras-rl `Experience` tuples, `nb_entries`,
    `get_recent_state` (keras-rl's own, from `Memory`), `get_config`. Logical index 0 is the
    oldest stored transition, as in SequentialMemory's deques; for the same appends and the same
    `batch_idxs` both return the same transitions.

    `sample_arrays` returns the batch as arrays, which is what `FastDQNAgent` trains on:
    state0 and state1 of shape (batch, window_length, *observation_shape) in the observations'
    own dtype (with `components`, a tuple of such arrays), actions, rewards and terminal1 flags of
    shape (batch,).

    The observation buffer is allocated at the first stored observation (its shape and dtype are
    not known before); after that nothing is allocated per step, so memory use stops growing
    once `limit` transitions are stored.

    `components=n`: each observation is a tuple (or list) of n arrays, one per input of a
    multi-input network, as keras-rl's `MultiInputProcessor(n)` takes them. Each component gets
    its own preallocated buffer in its own dtype (`parts`; an image stays uint8 beside a float32
    vector), and states come back as a tuple of n arrays of shape (batch, window, *component),
    which is what `MultiInputProcessor.process_state_batch` makes of keras-rl's nested lists, built
    without them. None (the default): each observation is one array (`observations`), as before.
    `FastDQNAgent` sets it from its model when it is left None (`use_components`).
    """

    def __init__(
        self,
        limit: int,
        window_length: int = 1,
        ignore_episode_boundaries: bool = False,
        components: int | None = None,
    ) -> None:
        super().__init__(window_length=window_length, ignore_episode_boundaries=ignore_episode_boundaries)
        if int(limit) < 1:
            raise ValueError(f"RingMemory: limit must be a positive integer; got {limit!r}")
        self.limit = int(limit)
        self.observations: np.ndarray | None = None  # array observations (components=None)
        self.parts: tuple[np.ndarray, ...] | None = None  # tuple observations: one buffer per component
        self.components: int | None = None
        if components is not None:
            self.use_components(components)
        self.actions = np.zeros(self.limit, dtype=np.int64)
        self.rewards = np.zeros(self.limit, dtype=np.float64)
        self.terminals = np.zeros(self.limit, dtype=bool)
        # Terminals that were a time-limit cut (`mark_truncated`): they end the episode (sampling
        # and windows stop there as at any terminal) but the target bootstraps from the next state.
        self.truncations = np.zeros(self.limit, dtype=bool)
        self._next = 0  # physical slot the next transition goes to
        self._count = 0  # transitions stored (at most limit)

    # --- keras-rl Memory interface ------------------------------------------------------------
    @property
    def nb_entries(self) -> int:
        """Number of stored transitions (as SequentialMemory: at most `limit`)."""
        return self._count

    def append(self, observation: Any, action: Any, reward: float, terminal: bool, training: bool = True) -> None:
        """Store one transition: in `observation`, `action` gave `reward`; `terminal` says whether
        the next state is terminal. Outside training only the recent-state window is updated."""
        super().append(observation, action, reward, terminal, training=training)
        if not training:
            return
        slot = self._next
        if self.components is None:
            if self.observations is None:
                self.observations = self._buffer(observation)
            self.observations[slot] = observation
        else:
            if self.parts is None:
                self.parts = self._component_buffers(observation)
            for buffer, part in zip(self.parts, observation, strict=True):
                buffer[slot] = part
        self.actions[slot] = action
        self.rewards[slot] = reward
        self.terminals[slot] = terminal
        self.truncations[slot] = False
        self._next = (slot + 1) % self.limit
        if self._count < self.limit:
            self._count += 1

    def mark_truncated(self) -> None:
        """The newest stored transition's terminal was a time-limit cut, not the game's end: its
        target bootstraps from the state after it (gymnasium's `truncated`; Stable-Baselines3's
        `handle_timeout_termination`). keras-rl's `append` has one terminal flag, hence a call of
        its own."""
        if self._count == 0:
            raise ValueError("mark_truncated: no transition is stored yet")
        slot = self._physical(self._count - 1)
        if not self.terminals[slot]:
            raise ValueError("mark_truncated: the newest stored transition is not terminal")
        self.truncations[slot] = True

    def sample(self, batch_size: int, batch_idxs: Sequence[int] | None = None) -> list:
        """A batch as keras-rl `Experience` tuples (state0 and state1 as lists of observations)."""
        state0, actions, rewards, state1, terminal1 = self.sample_arrays(batch_size, batch_idxs)
        return [
            Experience(
                state0=_observations(state0, k),
                action=actions[k],
                reward=rewards[k],
                state1=_observations(state1, k),
                terminal1=bool(terminal1[k]),
            )
            for k in range(len(actions))
        ]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["limit"] = self.limit
        if self.components is not None:
            config["components"] = self.components
        return config

    # --- checkpoints (harness.kerasrl.checkpoint) ------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything stored, for an exact resume: arrays (observations in their own dtype, so
        uint8 frames stay uint8) and JSON-ready scalars. keras-rl's recent-state window
        (`recent_observations`, `recent_terminals`) is part of it: at an episode's start it still
        holds the end of the previous episode, which the first state's window is built from."""
        arrays = {
            "actions": self.actions,
            "rewards": self.rewards,
            "terminals": self.terminals,
            "truncations": self.truncations,
        }
        if self.observations is not None:
            arrays["observations"] = self.observations
        for k, part in enumerate(self.parts or ()):
            arrays[f"part{k}"] = part
        recent = list(self.recent_observations)
        if recent and self.components is None:
            arrays["recent"] = np.stack(recent)
        elif recent:
            for k in range(self.components or 0):
                arrays[f"recent{k}"] = np.stack([observation[k] for observation in recent])
        meta = {
            "kind": type(self).__name__,
            "limit": self.limit,
            "window_length": self.window_length,
            "components": self.components,
            "next": self._next,
            "count": self._count,
            "recent": len(recent),
            "recent_terminals": [bool(t) for t in self.recent_terminals],
        }
        return arrays, meta

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Put back what `get_state` returned (of a memory of the same kind, limit and window)."""
        mine = (type(self).__name__, self.limit, self.window_length)
        theirs = (meta["kind"], meta["limit"], meta["window_length"])
        if mine != theirs:
            raise ValueError(
                f"the checkpoint holds a {theirs[0]}(limit={theirs[1]}, window_length={theirs[2]}); "
                f"this run has a {mine[0]}(limit={mine[1]}, window_length={mine[2]})"
            )
        if meta["components"] is not None:
            self.use_components(int(meta["components"]))
        self.actions, self.rewards, self.terminals = arrays["actions"], arrays["rewards"], arrays["terminals"]
        # Checkpoints written before time-limit cuts were recorded have none.
        self.truncations = arrays.get("truncations", np.zeros(self.limit, dtype=bool))
        self.observations = arrays.get("observations")
        parts = [arrays[f"part{k}"] for k in range(self.components or 0) if f"part{k}" in arrays]
        self.parts = tuple(parts) if parts else None
        self._next, self._count = int(meta["next"]), int(meta["count"])
        if self.components is None:
            recent: list = list(arrays["recent"]) if meta["recent"] else []
        else:
            columns = [arrays[f"recent{k}"] for k in range(self.components)] if meta["recent"] else []
            recent = [tuple(column[i] for column in columns) for i in range(int(meta["recent"]))]
        self.recent_observations = deque(recent, maxlen=self.window_length)
        self.recent_terminals = deque(meta["recent_terminals"], maxlen=self.window_length)

    # --- storage ------------------------------------------------------------------------------
    def use_components(self, components: int) -> None:
        """Store each observation as a tuple of `components` arrays (see the class docstring).
        Allowed until the first observation is stored; setting the same number again is a no-op."""
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(f"RingMemory: components must be a positive integer or None; got {components!r}")
        if components == self.components:
            return
        if self.observations is not None or self.parts is not None:
            stored = "array observations" if self.components is None else f"{self.components} components"
            raise ValueError(
                f"RingMemory already stores {stored}; components={components} must be set before "
                "the first observation is stored"
            )
        self.components = components

    def _buffer(self, value: Any) -> np.ndarray:
        """A zeroed (limit, *shape) buffer in `value`'s own dtype (an observation or a component)."""
        try:
            first = np.asarray(value)
        except ValueError:  # NumPy 2 refuses ragged nesting (a tuple of differently shaped arrays)
            first = np.empty((), dtype=object)
        if first.dtype == object:
            hint = ""
            if isinstance(value, (dict, tuple, list)):
                hint = (
                    "; a multi-input network's observations are tuples of arrays, one per input "
                    "(RingMemory(components=n); a processor's process_observation can make them from a dict)"
                )
            raise TypeError(
                "RingMemory stores array observations; got an observation of type "
                f"{type(value).__name__} (use SequentialMemory, fast_path=false){hint}"
            )
        return np.zeros((self.limit, *first.shape), dtype=first.dtype)

    def _component_buffers(self, observation: Any) -> tuple[np.ndarray, ...]:
        """One zeroed buffer per component of the first tuple observation."""
        if not isinstance(observation, (tuple, list)) or len(observation) != self.components:
            got = type(observation).__name__
            if isinstance(observation, (tuple, list)):
                got += f" of {len(observation)}"
            elif isinstance(observation, dict):
                got += " (a processor's process_observation can turn it into a tuple)"
            raise TypeError(
                f"RingMemory(components={self.components}) stores tuples or lists of {self.components} "
                f"arrays, one per network input; got a {got}"
            )
        return tuple(self._buffer(part) for part in observation)

    # --- vectorised sampling ------------------------------------------------------------------
    @overload
    def _physical(self, logical: int) -> int: ...

    @overload
    def _physical(self, logical: np.ndarray) -> np.ndarray: ...

    def _physical(self, logical: int | np.ndarray) -> int | np.ndarray:
        """Logical index (0 = oldest stored) -> slot in the ring buffers."""
        return (logical + (self._next - self._count)) % self.limit

    def sample_indexes(self, batch_size: int, batch_idxs: Sequence[int] | None = None) -> np.ndarray:
        """SequentialMemory's choice of transitions, as logical indexes of state1's observation.

        Draws `batch_idxs` as keras-rl does (`sample_batch_indexes(window_length, nb_entries - 1)`,
        from Python's `random`, or NumPy's global generator with replacement when there are fewer
        entries than `batch_size`), adds one, and re-draws, one at a time in batch order as
        keras-rl does, each transition whose state0 follows a terminal (the env was reset there).
        """
        if self._count < self.window_length + 2:
            raise ValueError(
                f"not enough entries in the memory: {self._count} stored, sampling needs "
                f"at least window_length + 2 = {self.window_length + 2}"
            )
        if batch_idxs is None:
            batch_idxs = sample_batch_indexes(self.window_length, self._count - 1, size=batch_size)
        idx = np.array(batch_idxs, dtype=np.int64) + 1
        if idx.shape != (batch_size,):
            raise ValueError(f"batch_idxs has {idx.size} entries; expected batch_size={batch_size}")
        if idx.min() < self.window_length + 1 or idx.max() >= self._count:
            raise ValueError(f"batch_idxs must lie in [{self.window_length}, {self._count - 2}]")
        after_terminal = self.terminals[self._physical(idx - 2)]
        for k in np.flatnonzero(after_terminal):
            i = int(idx[k])
            while self.terminals[self._physical(i - 2)]:
                # keras-rl's sample_batch_indexes(low, high, size=1) is random.sample(range(low,
                # high), 1): one _randbelow(high - low), the same draw as randrange(low, high),
                # which skips sample's set-up (a fifth of catch_dense's sampling time).
                i = random.randrange(self.window_length + 1, self._count)
            idx[k] = i
        return idx

    def sample_arrays(
        self, batch_size: int, batch_idxs: Sequence[int] | None = None
    ) -> tuple[States, np.ndarray, np.ndarray, States, np.ndarray]:
        """(state0, actions, rewards, state1, terminal1) for a batch chosen as `sample` chooses it."""
        return self._one_step(self.sample_indexes(batch_size, batch_idxs) - 1)

    def sample_batch(self, batch_size: int, gamma: float, n_step: int = 1) -> Batch:
        """A training batch drawn as `sample` draws it, with `n_step` returns (see `batch_at`)."""
        return self.batch_at(self.sample_indexes(batch_size) - 1, gamma, n_step)

    def batch_at(self, last: np.ndarray, gamma: float, n_step: int = 1) -> Batch:
        """The batch of the transitions whose state0 ends at logical indexes `last`.

        n_step = 1 is keras-rl's one-step target (the same arrays `sample_arrays` gives). For
        n_step = n the return sums r_t + gamma r_{t+1} + ... over at most n stored transitions and
        bootstraps from the state after the last of them with gamma**m; the sum stops at the first
        terminal (included, discount 0: no bootstrap past it) and at the newest stored observation
        (a shorter sum, still an unbiased m-step target). Stored transitions count, not env steps:
        with action_repetition each is one action and its summed reward, with memory_interval > 1
        the stored ones follow each other as in keras-rl's one-step targets. A time-limit cut is
        stored as terminal by keras-rl's fit (harness.kerasrl.adapters), so it ends the sum too;
        one marked by `mark_truncated` ends the sum but bootstraps from the state after it.
        """
        last = np.asarray(last, dtype=np.int64)
        if n_step == 1:
            state0, actions, rewards, state1, terminal1 = self._one_step(last)
            ends = terminal1 & ~self.truncations[self._physical(last)]
            discounts = np.where(ends, np.float32(0.0), np.float32(gamma))
            return Batch(state0, actions, rewards.astype(np.float32), state1, discounts)
        returns = np.zeros(len(last), dtype=np.float64)
        taken = np.zeros(len(last), dtype=np.int64)
        cut = np.zeros(len(last), dtype=bool)
        going = np.ones(len(last), dtype=bool)
        stored_after = (self._count - 1) - last  # observations stored after each state0's newest
        for k in range(n_step):
            step = going & (k < stored_after)
            slot = self._physical(last + k)
            returns += np.where(step, gamma**k * self.rewards[slot], 0.0)
            taken += step
            ended = step & self.terminals[slot]
            cut |= ended & ~self.truncations[slot]
            going = step & ~ended
        discounts = np.where(cut, 0.0, float(gamma) ** taken).astype(np.float32)
        return Batch(
            self.windows(last),
            self.actions[self._physical(last)],
            returns.astype(np.float32),
            self.windows(last + taken),
            discounts,
        )

    def windows(self, newest: np.ndarray) -> States:
        """The states (batch, window_length, *obs) whose newest observations are at logical indexes
        `newest`, zero-padded where SequentialMemory stops at an episode start (with components, a
        tuple of such arrays, one per component)."""
        if self.parts is None:
            assert self.observations is not None  # called for sampled transitions, so the buffer exists
            return self._windows(self.observations, newest)
        return tuple(self._windows(part, newest) for part in self.parts)

    def _windows(self, obs: np.ndarray, newest: np.ndarray) -> np.ndarray:
        """`windows` of one observation buffer."""
        wl = self.window_length
        if wl == 1:
            return obs[self._physical(newest)][:, None]
        # Window position p holds the observation at logical newest - wl + 1 + p. Position p is
        # zeroed when a terminal lies between it and the newest one, i.e. when any of
        # terminals[newest - wl + q] for q >= p is set, as SequentialMemory stops walking back at
        # the first terminal it meets.
        window = newest[:, None] - wl + 1 + np.arange(wl)[None, :]
        states = obs[self._physical(window)]
        if not self.ignore_episode_boundaries:
            crossing = self.terminals[self._physical(window[:, :-1] - 1)]
            zeroed = np.logical_or.accumulate(crossing[:, ::-1], axis=1)[:, ::-1]
            states[:, :-1][zeroed] = 0
        return states

    def _one_step(self, last: np.ndarray) -> tuple[States, np.ndarray, np.ndarray, States, np.ndarray]:
        """keras-rl's one-step transitions whose state0 ends at logical indexes `last`."""
        slots = self._physical(last)
        following = self._physical(last + 1)
        state0: States
        state1: States
        if self.parts is None:
            assert self.observations is not None  # called for sampled transitions, so the buffer exists
            windows = self._windows(self.observations, last)
            state0, state1 = windows, self._next_windows(windows, self.observations[following])
        else:
            state0 = tuple(self._windows(part, last) for part in self.parts)
            state1 = tuple(self._next_windows(s, part[following]) for s, part in zip(state0, self.parts, strict=True))
        return state0, self.actions[slots], self.rewards[slots], state1, self.terminals[slots]

    def _next_windows(self, state0: np.ndarray, following: np.ndarray) -> np.ndarray:
        # SequentialMemory builds state1 from state0 shifted by one, with no boundary check of its
        # own (a terminal1 state's target is masked anyway).
        if self.window_length == 1:
            return following[:, None]
        return np.concatenate([state0[:, 1:], following[:, None]], axis=1)


def _observations(states: States, k: int) -> list:
    """Row k of a batch of states as keras-rl's list of observations (tuples with components)."""
    if isinstance(states, tuple):
        return [tuple(part[k, w] for part in states) for w in range(states[0].shape[1])]
    return list(states[k])
