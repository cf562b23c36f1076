"""Prioritized experience replay (Schaul et al. 2016, proportional): `PrioritizedRingMemory`, a
`RingMemory` (so an `rl.memory.Memory`) that samples transitions in
proportion to priority**alpha and returns the importance-sampling weights the loss needs.

keras-rl has no prioritized replay. The sum tree is harness.kerasrl.sum_tree's (compiled walks;
see there why not a library's).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.kerasrl.memory import Batch, RingMemory
from harness.kerasrl.sum_tree import SumTree

__all__ = ["PrioritizedRingMemory"]


# Slots waiting for the tree at most (a dict entry costs about 100 bytes; 4,096 of them are
# flushed in one batched update of a few milliseconds).
_MAX_PENDING = 4096


class PrioritizedRingMemory(RingMemory):
    """`RingMemory` with proportional prioritized sampling.

    A transition is drawn with probability P(i) = p_i**alpha / sum_k p_k**alpha, where p_i is its
    priority: the current maximum priority when it enters (1 at first), then |delta| + eps after
    each train step that drew it (`update_priorities`). The weights that correct for the biased
    draw are (N * P(i))**-beta divided by the batch's largest, with N the number of transitions
    that can be drawn and beta annealed linearly from `beta0` to 1 over `beta_steps` agent steps.
    A batch is stratified: the priority mass is cut into `batch_size` equal parts, one draw in
    each, from the memory's own seeded generator.

    The transitions that can be drawn are the ones keras-rl's SequentialMemory draws from: state0
    ending at logical index j in [window_length, nb_entries - 2], and not the terminal observation
    of an episode (the one keras-rl stores with a dummy action after `done`). Every other slot has
    priority 0, so it is never drawn and needs no re-draw.
    """

    def __init__(
        self,
        limit: int,
        window_length: int = 1,
        alpha: float = 0.6,
        beta0: float = 0.4,
        eps: float = 1e-6,
        beta_steps: int = 1,
        step_offset: int = 0,
        seed: int | None = None,
        ignore_episode_boundaries: bool = False,
        components: int | None = None,
    ) -> None:
        super().__init__(
            limit,
            window_length=window_length,
            ignore_episode_boundaries=ignore_episode_boundaries,
            components=components,
        )
        self.alpha, self.beta0, self.eps = float(alpha), float(beta0), float(eps)
        if not self.alpha >= 0:  # a negative one would make 0**alpha infinite in the tree
            raise ValueError(f"alpha must be a number >= 0; got {alpha!r}")
        self.beta_steps, self.step_offset = max(1, int(beta_steps)), int(step_offset)
        self.tree = SumTree(self.limit)
        # p_i of each slot (0: not drawable), the start of a buffer as long as the tree's leaves:
        # the padding leaves, which rounding can make `find` land on, read as undrawable too.
        self._leaf_priorities = np.zeros(len(self.tree.levels[-1]), dtype=np.float64)
        self.priorities = self._leaf_priorities[: self.limit]
        # The slots whose priority changed since the tree was last updated (a dict as an ordered
        # set; their priorities are in `priorities`). The tree takes them all in one batched
        # update when it is next sampled, which costs a few NumPy calls instead of a walk to the
        # root for every stored transition.
        self._pending: dict[int, None] = {}
        self.max_priority = 1.0
        self.drawable = 0
        self.rng = np.random.default_rng(seed)

    # --- storing ------------------------------------------------------------------------------
    def append(self, observation: Any, action: Any, reward: float, terminal: bool, training: bool = True) -> None:
        super().append(observation, action, reward, terminal, training=training)
        if not training:
            return
        wl, count = self.window_length, self._count
        self._set_priority(self._physical(count - 1), 0.0)  # the newest has no next observation yet
        if count == self.limit:
            # The oldest moved up by one: logical window_length - 1 can no longer be drawn.
            self._set_priority(self._physical(wl - 1), 0.0)
        j = count - 2  # the previous newest now has its next observation
        if j >= wl and not self.terminals[self._physical(j - 1)]:
            self._set_priority(self._physical(j), self.max_priority)

    def _set_priority(self, slot: int, priority: float) -> None:
        self.drawable += int(priority > 0) - int(self.priorities[slot] > 0)
        self.priorities[slot] = priority
        self._pending[slot] = None
        if len(self._pending) >= _MAX_PENDING:  # no sampling for a while (warm-up): keep the dict small
            self._update_tree()

    def _update_tree(self) -> None:
        if not self._pending:
            return
        slots = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
        self._pending.clear()
        priorities = self.priorities[slots]
        # A priority of 0 (not drawable) is a leaf of 0, with alpha = 0 too (where 0**0 is 1).
        self.tree.set(slots, priorities**self.alpha * (priorities > 0.0))

    # --- sampling -----------------------------------------------------------------------------
    def beta(self, step: int) -> float:
        """The importance-sampling exponent at agent step `step` (of a run that started at
        `step_offset`, as a resumed run does)."""
        progress = min(1.0, (step + self.step_offset) / self.beta_steps)
        return self.beta0 + (1.0 - self.beta0) * progress

    def sample_slots(self, batch_size: int) -> np.ndarray:
        """`batch_size` slots drawn in proportion to priority**alpha, one per equal part of the mass."""
        if self.drawable == 0:
            raise ValueError(
                f"not enough entries in the memory: {self._count} stored, none can be drawn yet "
                f"(sampling needs at least window_length + 2 = {self.window_length + 2})"
            )
        self._update_tree()
        total = self.tree.total
        mass = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        slots = self.tree.find(np.minimum(mass, math.nextafter(total, 0.0), out=mass))
        bad = self._undrawable(slots)
        while np.count_nonzero(bad):  # half of bad.any()'s cost (valgrind)
            # Rounding at a part's edge can land on an empty neighbour; redraw those anywhere.
            slots[bad] = self.tree.find(self.rng.random(int(bad.sum())) * total)
            bad = self._undrawable(slots)
        return slots

    def _undrawable(self, slots: np.ndarray) -> np.ndarray:
        return self._leaf_priorities[slots] == 0

    def importance_weights(self, slots: np.ndarray, beta: float) -> np.ndarray:
        """(N * P(i))**-beta for the drawn slots, divided by their largest (float32)."""
        self._update_tree()
        probabilities = self.tree.get(slots) / self.tree.total
        weights = (self.drawable * probabilities) ** -beta
        return (weights / weights.max()).astype(np.float32)

    def sample_batch(self, batch_size: int, gamma: float, n_step: int = 1, step: int = 0) -> Batch:
        slots = self.sample_slots(batch_size)
        logical = (slots - (self._next - self._count)) % self.limit
        batch = self.batch_at(logical, gamma, n_step)
        return batch._replace(weights=self.importance_weights(slots, self.beta(step)), slots=slots)

    def update_priorities(self, slots: np.ndarray, td_errors: np.ndarray) -> None:
        """Priorities |delta| + eps for the slots of the batch just trained on."""
        priorities = np.abs(td_errors, dtype=np.float64) + self.eps
        largest = float(priorities.max())  # NaN if any is NaN
        if not math.isfinite(largest):
            # A diverged step (the DivergenceGuard stops the run at it); keep the old priorities.
            return
        listed = slots.tolist()
        if len(set(listed)) == len(listed) == len(priorities):
            self.priorities[slots] = priorities
        else:
            # A slot drawn twice in the batch keeps its last priority (a dict keeps the last, where
            # NumPy's assignment to repeated indexes leaves the order unspecified).
            latest = dict(zip(listed, priorities.tolist(), strict=True))
            self.priorities[list(latest)] = list(latest.values())
        self._pending.update(dict.fromkeys(listed))
        self.max_priority = max(self.max_priority, largest)

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """RingMemory's state plus the priorities, the sum tree as it is and the priorities still
        waiting for it (saved, not flushed, so that a checkpoint changes nothing of the run), the
        largest priority and the generator's state."""
        arrays, meta = super().get_state()
        arrays["priorities"] = self.priorities
        for depth, level in enumerate(self.tree.levels):
            arrays[f"tree{depth}"] = level
        arrays["pending_slots"] = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
        arrays["pending_values"] = self.priorities[arrays["pending_slots"]]
        meta.update(
            tree_total=self.tree.total,
            max_priority=self.max_priority,
            drawable=self.drawable,
            rng=self.rng.bit_generator.state,  # PCG64's state is plain integers
        )
        return arrays, meta

    def set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super().set_state(arrays, meta)
        self.priorities[:] = arrays["priorities"]
        self.tree.load([arrays[f"tree{depth}"] for depth in range(len(self.tree.levels))])
        # A dict keeps insertion order, which is the order the tree takes them in; their values
        # are the saved priorities' (pending_values repeats them).
        self._pending = dict.fromkeys(arrays["pending_slots"].tolist())
        self.max_priority, self.drawable = float(meta["max_priority"]), int(meta["drawable"])
        self.rng.bit_generator.state = meta["rng"]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(alpha=self.alpha, beta0=self.beta0, eps=self.eps, beta_steps=self.beta_steps)
        return config
