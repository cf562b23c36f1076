"""`SumTree`: the sum tree prioritized replay samples from (harness.kerasrl.prioritized), its walks
compiled with Numba.

Why compiled, and why not a library's tree: a batch's descent and its update are a few thousand
float additions and comparisons, but written with NumPy they cost one vectorised call per level
and per step of bookkeeping, and at catch_dense's batch of 32 those calls' overhead was the whole
cost: 45 of the ~100 microseconds prioritized replay added to each of its ~350-microsecond env
steps (the issue allows 20%). The same loops compiled by Numba take a few microseconds. cpprb's C++
prioritized buffer would own the transitions and its own unseeded generator, which a checkpoint
cannot save; Dopamine's and CleanRL's trees walk one sample at a time in Python.

The arithmetic is the NumPy version's, addition for addition (tests/test_replay.py keeps that
version as the oracle): a group's running sums are `np.add.accumulate`'s left-to-right sums, a
parent is its group's last running sum, and `find` subtracts `running - value` at each level, so
runs recorded before the kernels gave the same draws after them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["SumTree"]


@njit(cache=True, nogil=True)
def _accumulate_group(level: np.ndarray, running: np.ndarray, start: int, k: int) -> float:
    """running[start:start + k] = the running sums of level[start:start + k]; returns their total."""
    total = level[start]
    running[start] = total
    for j in range(start + 1, start + k):
        total = total + level[j]
        running[j] = total
    return total


@njit(cache=True, nogil=True)
def _set(
    levels: np.ndarray, running: np.ndarray, offsets: np.ndarray, k: int, leaves: np.ndarray, values: np.ndarray
) -> None:
    """Write `values` at `leaves` (distinct) of the last level, then every group above them, level
    by level from the leaves up (a group is recomputed once all of its children are final, and
    once: siblings share it)."""
    depth = len(offsets) - 2  # level d occupies [offsets[d], offsets[d + 1])
    base = offsets[depth]
    for i in range(len(leaves)):
        levels[base + leaves[i]] = values[i]
    groups = np.sort(leaves // k)
    while True:
        base = offsets[depth]
        previous = -1
        for group in groups:
            if group != previous:
                total = _accumulate_group(levels, running, base + group * k, k)
                if depth:
                    levels[offsets[depth - 1] + group] = total
                previous = group
        if depth == 0:
            return
        groups //= k  # still sorted
        depth -= 1


@njit(cache=True, nogil=True)
def _find(levels: np.ndarray, running: np.ndarray, offsets: np.ndarray, k: int, mass: np.ndarray) -> np.ndarray:
    """For each mass: the leaf whose prefix-sum interval holds it. At every level the child taken is
    the first whose running sum exceeds the mass, or the group's last (which takes what rounding
    leaves past the group's sum); the mass then loses the running sum before that child."""
    depths = len(offsets) - 1
    out = np.empty(len(mass), dtype=np.int64)
    for i in range(len(mass)):
        m = mass[i]
        index = 0
        for depth in range(depths):
            start = offsets[depth] + index * k
            child = k - 1
            for j in range(k - 1):
                if running[start + j] > m:
                    child = j
                    break
            node = start + child
            m -= running[node] - levels[node]
            index = index * k + child
        out[i] = index
    return out


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
        _set(self._levels, self._running, self._offsets, self.branching, leaves, values)

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each `mass` in [0, total): the leaf i with prefix(i) <= mass < prefix(i + 1)."""
        mass = np.ascontiguousarray(mass, dtype=np.float64)
        return _find(self._levels, self._running, self._offsets, self.branching, mass)
