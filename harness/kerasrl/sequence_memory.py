"""Sequence replay for the recurrent agent (harness.kerasrl.recurrent): `SequenceMemory`, a
`RingMemory` that samples whole stretches of an episode, and the batch it trains on,
`SequenceBatch`.

Storage is RingMemory's own: each transition once, frames in their own dtype (uint8 stays uint8),
preallocated, so memory stays flat once `limit` transitions are stored. A sequence is gathered by
index when it is sampled; nothing is stored twice.

Layout of one sampled sequence (burn_in K, sequence_length L, n_step n; P = K + L + n positions):

    position   0 ... K-1          K ... K+L-1              K+L ... K+L+n-1
               burn-in            loss steps               bootstrap-only observations
    holds      obs t-K ... t-1    obs t ... t+L-1 (their   obs t+L ... t+L+n-1
                                  transitions carry loss)

`t`, the first loss step, is drawn uniformly over the stored transitions that have a next
observation and are not an episode's final observation (the transitions keras-rl's
SequentialMemory can draw), from the memory's own generator seeded with the experiment's seed.
A sequence never crosses an episode start:

* near the episode's start the burn-in is shorter: positions before the episode's first
  observation are invalid (`valid` False, frames zero), and the network's state stays zero through
  them, so the first real step starts from the zero state the agent acts from;
* at the episode's end (or at the newest stored observation) the sequence is shorter: the
  positions after the final observation are invalid and zero, the loss steps after the last
  transition are masked (`mask` False), not filled from the next episode.

A loss step's target is the n-step return of its transition, computed here as RingMemory.batch_at
computes it (the sum stops at a terminal, discount 0, and at the newest stored observation, a
shorter sum), and the observation it bootstraps from is the sequence's position `bootstrap`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from harness.kerasrl.memory import RingMemory

__all__ = ["SequenceBatch", "SequenceMemory"]

# Rejection rounds for the first loss steps before the valid ones are listed outright.
_REDRAWS = 20


class SequenceBatch(NamedTuple):
    """`batch_size` sequences of P = burn_in + sequence_length + n_step positions (see the module
    docstring). `frames` (batch, P, *observation) in the stored dtype, zero where `valid` is False;
    per loss step (batch, sequence_length): `actions`, `returns` (n-step sums), `discounts`
    (gamma**m, 0 after a terminal), `bootstrap` (the position of the observation the target
    bootstraps from) and `mask` (the step is a real transition of the sequence's episode)."""

    frames: np.ndarray
    valid: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    discounts: np.ndarray
    bootstrap: np.ndarray
    mask: np.ndarray


class SequenceMemory(RingMemory):
    """A RingMemory (window_length 1, array observations) that samples sequences for a recurrent
    agent; `seed` seeds the generator the sequences are drawn from (the experiment's seed)."""

    def __init__(self, limit: int, seed: int | None = None) -> None:
        super().__init__(limit=limit, window_length=1)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["seed"] = self.seed
        return config

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """RingMemory's state plus the sequence generator's, so that a resumed run draws the
        sequences the uninterrupted one would (harness.kerasrl.checkpoint)."""
        arrays, meta = super().get_state()
        meta.update(sequence_rng=self._rng.bit_generator.state)  # PCG64's state is plain integers
        return arrays, meta

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super().set_state(arrays, meta)
        self._rng.bit_generator.state = meta["sequence_rng"]

    def use_components(self, components: int) -> None:
        raise ValueError("SequenceMemory stores array observations; a recurrent network has one input")

    # --- sampling -----------------------------------------------------------------------------
    def first_steps(self, batch_size: int) -> np.ndarray:
        """Logical indexes of `batch_size` first loss steps: transitions with a next observation
        stored that are not an episode's final observation (whose action is keras-rl's dummy)."""
        count = self._count
        if count < 3:
            raise ValueError(f"not enough entries in the memory: {count} stored, sampling sequences needs at least 3")
        first = self._rng.integers(1, count - 1, size=batch_size)
        for _ in range(_REDRAWS):
            bad = self.terminals[self._physical(first - 1)]
            if not bad.any():
                return first
            first[bad] = self._rng.integers(1, count - 1, size=int(bad.sum()))
        candidates = np.arange(1, count - 1)
        candidates = candidates[~self.terminals[self._physical(candidates - 1)]]
        if candidates.size == 0:
            raise ValueError("no stored transition can start a sequence (every one is an episode's final observation)")
        bad = self.terminals[self._physical(first - 1)]
        first[bad] = self._rng.choice(candidates, size=int(bad.sum()))
        return first

    def sample_sequences(
        self, batch_size: int, sequence_length: int, burn_in: int, gamma: float, n_step: int = 1
    ) -> SequenceBatch:
        """A batch of sequences drawn as the module docstring says."""
        return self.sequences_at(self.first_steps(batch_size), sequence_length, burn_in, gamma, n_step)

    def sequences_at(
        self, first: np.ndarray, sequence_length: int, burn_in: int, gamma: float, n_step: int = 1
    ) -> SequenceBatch:
        """The sequences whose first loss steps are the logical indexes `first`."""
        first = np.asarray(first, dtype=np.int64)
        length, back, n = int(sequence_length), int(burn_in), int(n_step)
        count = self._count
        ahead = length + n  # positions from the first loss step on
        # Forward: obs t+j belongs to t's episode while no terminal lies in [t, t+j-2] (obs t+j-1
        # may be the last transition, obs t+j then the final observation) and it is stored.
        offsets = np.arange(ahead)
        terminal_ahead = self._terminals_at(first[:, None] + np.arange(max(ahead - 1, 1))[None, :])
        ended = np.logical_or.accumulate(terminal_ahead, axis=1)  # ended[:, i]: a terminal in [t, t+i]
        in_episode = np.ones((len(first), ahead), dtype=bool)
        in_episode[:, 2:] = ~ended[:, : ahead - 2]
        valid_ahead = in_episode & (first[:, None] + offsets[None, :] <= count - 1)
        # Loss steps: transition t+j needs no terminal in [t, t+j-1] and a next observation stored.
        steps = np.arange(length)
        mask = np.ones((len(first), length), dtype=bool)
        mask[:, 1:] = ~ended[:, : length - 1]
        mask &= first[:, None] + steps[None, :] <= count - 2
        # Backward (burn-in): obs t-k belongs to t's episode while no terminal lies in [t-k-1, t-2].
        if back:
            terminal_behind = self._terminals_at(first[:, None] - 2 - np.arange(back)[None, :])
            started = np.logical_or.accumulate(terminal_behind, axis=1)  # [:, k-1]: one in [t-k-1, t-2]
            ks = np.arange(1, back + 1)
            valid_behind = ~started & (first[:, None] - ks[None, :] >= 0)
            valid = np.concatenate([valid_behind[:, ::-1], valid_ahead], axis=1)
        else:
            valid = valid_ahead

        returns, discounts, taken = self._n_step(first[:, None] + steps[None, :], mask, gamma, n)
        bootstrap = back + steps[None, :] + taken

        logical = first[:, None] - back + np.arange(back + ahead)[None, :]
        assert self.observations is not None  # sampled only once transitions are stored
        frames = self.observations[self._physical(np.clip(logical, 0, count - 1))]
        frames[~valid] = 0
        return SequenceBatch(
            frames=frames,
            valid=valid,
            actions=np.where(mask, self.actions[self._physical(np.clip(first[:, None] + steps, 0, count - 1))], 0),
            returns=returns,
            discounts=discounts,
            bootstrap=bootstrap.astype(np.int64),
            mask=mask,
        )

    def _terminals_at(self, logical: np.ndarray) -> np.ndarray:
        """terminals at logical indexes, False outside the stored ones (before the oldest, after the newest)."""
        inside = (logical >= 0) & (logical <= self._count - 1)
        return np.where(inside, self.terminals[self._physical(np.clip(logical, 0, self._count - 1))], False)

    def _n_step(
        self, transitions: np.ndarray, mask: np.ndarray, gamma: float, n_step: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(returns, discounts, steps summed) of each transition, as RingMemory.batch_at computes
        them; zero for masked steps (which bootstrap from their own position, discount 0)."""
        returns = np.zeros(transitions.shape, dtype=np.float64)
        taken = np.zeros(transitions.shape, dtype=np.int64)
        cut = np.zeros(transitions.shape, dtype=bool)
        going = mask.copy()
        for k in range(n_step):
            index = transitions + k
            step = going & (index <= self._count - 2)
            slot = self._physical(np.clip(index, 0, self._count - 1))
            returns += np.where(step, gamma**k * self.rewards[slot], 0.0)
            taken += step
            ended = step & self.terminals[slot]
            cut |= ended
            going = step & ~ended
        discounts = np.where(cut | ~mask, 0.0, float(gamma) ** taken).astype(np.float32)
        return returns.astype(np.float32), discounts, taken
