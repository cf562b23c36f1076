"""Prioritized experience replay (Schaul et al. 2016, proportional): `SumTree` and
`PrioritizedRingMemory`, a `RingMemory` (so an `rl.memory.Memory`) that samples transitions in
proportion to priority**alpha and returns the importance-sampling weights the loss needs.

keras-rl has no prioritized replay. Written here rather than borrowed: Dopamine's and CleanRL's
sum trees walk the tree one sample at a time in Python; this one descends and updates a whole
batch at once with NumPy (O(batch * log N) work in log N vectorised steps), which is what keeps
its cost small next to catch_dense's ~250-microsecond env steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.kerasrl.memory import Batch, RingMemory

__all__ = ["PrioritizedRingMemory", "SumTree"]


class SumTree:
    """Non-negative values in `size` leaves and their prefix sums, in one array: node k's children
    are 2k and 2k + 1, the root is node 1, leaf i is node `capacity + i`. Parents are recomputed
    from their children (never adjusted by differences), so no rounding error accumulates."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.capacity = 1 << max(0, (self.size - 1).bit_length())
        self.depth = self.capacity.bit_length() - 1
        self.nodes = np.zeros(2 * self.capacity, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, leaves: np.ndarray) -> np.ndarray:
        return self.nodes[self.capacity + np.asarray(leaves)]

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        """leaves[k] = values[k] (for repeated leaves the last value wins), parents updated."""
        nodes = self.nodes
        index = self.capacity + np.asarray(leaves, dtype=np.int64)
        nodes[index] = values
        for _ in range(self.depth):
            index >>= 1
            nodes[index] = nodes[2 * index] + nodes[2 * index + 1]

    def set_one(self, leaf: int, value: float) -> None:
        """One leaf, in plain Python (cheaper than the array path for a single value)."""
        nodes = self.nodes
        index = self.capacity + leaf
        nodes[index] = value
        while index > 1:
            index >>= 1
            nodes[index] = nodes[2 * index] + nodes[2 * index + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each `mass` in [0, total): the leaf i with prefix(i) <= mass < prefix(i + 1)."""
        nodes = self.nodes
        mass = np.array(mass, dtype=np.float64)
        index = np.ones(mass.shape, dtype=np.int64)
        for _ in range(self.depth):
            index <<= 1
            left = nodes[index]
            right = mass >= left
            mass -= left * right
            index += right
        return index - self.capacity


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
    ) -> None:
        super().__init__(limit, window_length=window_length, ignore_episode_boundaries=ignore_episode_boundaries)
        self.alpha, self.beta0, self.eps = float(alpha), float(beta0), float(eps)
        self.beta_steps, self.step_offset = max(1, int(beta_steps)), int(step_offset)
        self.tree = SumTree(self.limit)
        self.priorities = np.zeros(self.limit, dtype=np.float64)  # p_i of each slot (0: not drawable)
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
        self.tree.set_one(slot, priority**self.alpha if priority > 0 else 0.0)

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
        total = self.tree.total
        mass = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        slots = self.tree.find(np.minimum(mass, np.nextafter(total, 0.0)))
        bad = self._undrawable(slots)
        while bad.any():
            # Rounding at a part's edge can land on an empty neighbour; redraw those anywhere.
            slots[bad] = self.tree.find(self.rng.random(int(bad.sum())) * total)
            bad = self._undrawable(slots)
        return slots

    def _undrawable(self, slots: np.ndarray) -> np.ndarray:
        return (slots >= self.limit) | (self.priorities[np.minimum(slots, self.limit - 1)] == 0)

    def importance_weights(self, slots: np.ndarray, beta: float) -> np.ndarray:
        """(N * P(i))**-beta for the drawn slots, divided by their largest (float32)."""
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
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps
        if not np.all(np.isfinite(priorities)):
            # A diverged step (the DivergenceGuard stops the run at it); keep the old priorities.
            return
        self.priorities[slots] = priorities
        self.tree.set(slots, priorities**self.alpha)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(alpha=self.alpha, beta0=self.beta0, eps=self.eps, beta_steps=self.beta_steps)
        return config
