"""The sum tree's walks, compiled with Numba: `set_leaves` (write leaves, recompute the groups
above them) and `find` (the leaf holding each mass). harness.kerasrl.sum_tree imports this module
when the first SumTree is built, so that a run without prioritized replay never loads Numba
(measured: importing the fast path 594 MB peak RSS, with Numba 673 MB, with a tree and its walks
loaded 712 MB).

The arithmetic is the NumPy version's, addition for addition (tests/test_replay.py keeps that
version as the oracle): a group's running sums are `np.add.accumulate`'s left-to-right sums, a
parent is its group's last running sum, and `find` subtracts `running - value` at each level.
Every level lives in one flat buffer `levels` (level d at [offsets[d], offsets[d + 1])), each
group's running sums in `running`, laid out alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["find", "set_leaves"]


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
def set_leaves(
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
def find(levels: np.ndarray, running: np.ndarray, offsets: np.ndarray, k: int, mass: np.ndarray) -> np.ndarray:
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
