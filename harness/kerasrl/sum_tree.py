"""`SumTree`: the sum tree prioritized replay samples from (harness.kerasrl.prioritized), its walks
compiled with Numba.

Why compiled, and why not a library's tree: a batch's descent and its update are a few thousand
float additions and comparisons, but written with NumPy they cost one vectorised call per level
and per step of bookkeeping, and at catch_dense's batch of 32 those calls' overhead was the whole
cost: 45 of the ~100 microseconds prioritized replay added to each of its ~350-microsecond env
steps (the issue allows 20%). The same loops compiled by Numba take a few microseconds (a batch
of 32 in a 50,000-leaf tree: `find` 21 -> 2.3, updating 35 leaves 24 -> 1.8, medians of 20,000
calls), and prioritized replay's cost on catch_dense fell from 22.9% to 13.6% (medians of 5
alternating 10,000-step runs, idle machine; `make bench`: 15.1%). cpprb's C++
prioritized buffer stores the transitions itself (a second copy beside RingMemory's, or a rewrite
of it and of its checkpoint format); Dopamine's and CleanRL's trees walk one sample at a time in
Python.

The walks are harness.kerasrl.sum_tree_kernels', loaded with the first tree (a run without
prioritized replay never imports Numba); their arithmetic is the NumPy version's, addition for
addition, so runs recorded before them draw the same transitions after them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SumTree"]


class SumTree:
    """Non-negative values in `size` leaves and their sums, in a tree of branching factor `branching`.

    `levels[-1]` holds the leaves, `levels[d - 1][i]` the sum of `levels[d][k * i : k * i + k]`
    (k = branching, every level padded with zeros to a multiple of k), `levels[0]` the root's
    children. Each group of k siblings also keeps its running sums (`find` compares the mass
    against them), recomputed from the children whenever one changes, never adjusted by a
    difference, so no rounding error accumulates and `find` sees exactly the stored sums.

    Why 32 children: fewer levels to walk (4 for 100,000 leaves instead of 17) for k comparisons
    per level, which compiled code makes cheap; the NumPy version chose it for its call overhead,
    and keeping it keeps the arithmetic identical.

    All levels live in one flat float64 buffer (and the running sums in another), so that the
    compiled walks take three arrays; `levels` are views of it.
    """

    def __init__(self, size: int, branching: int = 32) -> None:
        self.size, self.branching = int(size), int(branching)
        sizes, n = [], self.size
        while True:
            groups = -(-n // self.branching)
            sizes.append(groups * self.branching)
            if groups == 1:
                break
            n = groups
        from harness.kerasrl import sum_tree_kernels  # Numba loads with the first tree, not with the package

        self._walks = sum_tree_kernels
        self.load([np.zeros(n, dtype=np.float64) for n in reversed(sizes)])
        # Compile the walks (or load them from Numba's cache) now, with no work, rather than at the
        # first draw inside a timed training loop.
        self.set(np.zeros(0, dtype=np.int64), np.zeros(0))
        self.find(np.zeros(0))

    @property
    def total(self) -> float:
        return float(self._running[self.branching - 1])

    def get(self, leaves: np.ndarray) -> np.ndarray:
        return self.levels[-1][np.asarray(leaves)]

    def load(self, levels: list[np.ndarray]) -> None:
        """Take `levels` as they are (a saved tree's), and the sums derived from them."""
        k = self.branching
        self._offsets = np.concatenate([[0], np.cumsum([len(level) for level in levels])]).astype(np.int64)
        self._levels = np.concatenate([np.asarray(level, dtype=np.float64) for level in levels])
        self.levels = [self._levels[a:b] for a, b in zip(self._offsets[:-1], self._offsets[1:], strict=True)]
        self._running = np.add.accumulate(self._levels.reshape(-1, k), axis=-1).ravel()

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        """leaves[i] = values[i] for distinct `leaves`, and every sum above them."""
        leaves = np.asarray(leaves, dtype=np.int64)
        values = np.ascontiguousarray(values, dtype=np.float64)  # one compiled signature
        if values.shape != leaves.shape:
            raise ValueError(f"SumTree.set: {len(leaves)} leaves but values of shape {values.shape}")
        self._walks.set_leaves(self._levels, self._running, self._offsets, self.branching, leaves, values)

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each `mass` in [0, total): the leaf i with prefix(i) <= mass < prefix(i + 1)."""
        mass = np.ascontiguousarray(mass, dtype=np.float64)
        return self._walks.find(self._levels, self._running, self._offsets, self.branching, mass)
