"""Statistics over a set of runs, the same in every table and figure: mean ± sample standard
deviation, and the interquartile mean (IQM) with its 95% stratified-bootstrap confidence interval.

The IQM is the mean of the middle half of the runs' scores (a 25% trimmed mean: robust to one
diverged or lucky seed, and less noisy than the median), and its interval comes from resampling
the runs with replacement, as Agarwal et al. (2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice") recommend for few-seed results. Both are rliable's own:
`rliable.metrics.aggregate_iqm` (scipy's `trim_mean(scores, 0.25)` over all runs) and
`rliable.library.get_interval_estimates` (a stratified bootstrap over runs, percentile interval).

Two settings of that bootstrap are fixed here:

- `BOOTSTRAP_REPS` resamples, not rliable's default 50,000: its bootstrap calls the statistic once
  per resample in Python, 27 s for 50,000 resamples of 5 runs on this 2-core machine (under load),
  about 1 s for 2,000; a table has a row per experiment and a curve a point per validation round.
- The random stream: rliable's StratifiedBootstrap draws its resamples from NumPy's global
  generator (`np.random.choice` in its `update_indices`), whatever `random_state` it is given
  (which arch, underneath, also deprecates). `iqm_interval` seeds that generator with
  `BOOTSTRAP_SEED` for the call and puts its state back afterwards, so the same scores always give
  the same interval and a caller's own random stream is untouched.

The IQM trims int(n / 4) runs at each end, so below 4 runs it is the plain mean; below
`MIN_SEEDS` runs the interval also only spans the few values there are, and tables say so
(`few_seeds_note`).

rliable (with scipy, arch and pandas) is imported when an interval is first computed, so the
commands that only list things stay quick. No TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

BOOTSTRAP_REPS = 2_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
MIN_SEEDS = 3  # fewer runs than this: the IQM is the plain mean and its interval says little


def finite(values: Sequence[float | None]) -> np.ndarray:
    """The finite values as a float array (None, NaN and infinities dropped)."""
    return np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation of the finite values (NaN where undefined)."""
    kept = finite(values)
    if kept.size == 0:
        return math.nan, math.nan
    std = float(kept.std(ddof=1)) if kept.size > 1 else math.nan
    return float(kept.mean()), std


@dataclass(frozen=True)
class Interval:
    """An IQM and its confidence interval over `n` runs (NaN everywhere when n is 0)."""

    iqm: float
    low: float
    high: float
    n: int


@contextmanager
def _seeded_global_generator(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded with `seed` inside, restored to its old state after."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _bootstrap(scores: np.ndarray, statistic: Any, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """rliable's point estimate and (2, k) interval of `statistic` over the rows (runs) of `scores`."""
    from rliable import library

    with _seeded_global_generator(seed):
        points, intervals = library.get_interval_estimates(
            {"runs": scores}, statistic, reps=reps, confidence_interval_size=CONFIDENCE
        )
    return np.asarray(points["runs"], dtype=float), np.asarray(intervals["runs"], dtype=float)


def iqm_interval(values: Sequence[float | None], reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED) -> Interval:
    """The IQM of the finite values (one per run) and its 95% stratified-bootstrap interval."""
    from rliable import metrics

    kept = finite(values)
    if kept.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    # rliable's layout: (runs, tasks); one task here, so the strata are the runs themselves.
    point, interval = _bootstrap(kept.reshape(-1, 1), lambda x: np.array([metrics.aggregate_iqm(x)]), reps, seed)
    return Interval(float(point[0]), float(interval[0, 0]), float(interval[1, 0]), int(kept.size))


def iqm_curve(
    scores: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a (runs, points) matrix (a score per run at each step): the IQM at each point and its
    pointwise 95% interval, as rliable computes sample-efficiency curves (runs resampled
    independently at each point). Returns (iqm, low, high), each of length `points`."""
    from rliable import metrics

    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] == 0 or not np.isfinite(scores).all():
        raise ValueError(f"expected a (runs, points) matrix of finite scores; got shape {scores.shape}")

    def per_point(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x[:, j]) for j in range(x.shape[1])])

    point, interval = _bootstrap(scores, per_point, reps, seed)
    return point, interval[0], interval[1]


# ---------------------------------------------------------------------------------------------
# Text


def _digits(value: float) -> int:
    return 3 if abs(value) < 100 else 0


def mean_sd_text(values: Sequence[float | None]) -> str:
    """'mean ± sample sd' ('mean' alone for one value, '–' for none)."""
    mean, sd = mean_std(values)
    if not math.isfinite(mean):
        return "–"
    digits = _digits(mean)
    if not math.isfinite(sd):
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {sd:,.{digits}f}"


def interval_text(interval: Interval, digits: int | None = None) -> str:
    """'iqm [low, high]' ('–' for no runs)."""
    if interval.n == 0 or not math.isfinite(interval.iqm):
        return "–"
    digits = _digits(interval.iqm) if digits is None else digits
    return f"{interval.iqm:,.{digits}f} [{interval.low:,.{digits}f}, {interval.high:,.{digits}f}]"


def iqm_text(values: Sequence[float | None]) -> str:
    """'iqm [low, high]' of the finite values ('–' for none)."""
    return interval_text(iqm_interval(values))


def method_note() -> str:
    """One line saying what ± and the IQM interval are."""
    return (
        "± is the sample standard deviation over runs; IQM is the interquartile mean over runs, in "
        f"brackets its {CONFIDENCE:.0%} stratified-bootstrap confidence interval (rliable, "
        f"{BOOTSTRAP_REPS:,} resamples, seed {BOOTSTRAP_SEED})."
    )


def few_seeds_note(counts: dict[str, int]) -> str:
    """A line naming every group with fewer than MIN_SEEDS runs ('' when there is none)."""
    few = {name: n for name, n in counts.items() if n < MIN_SEEDS}
    if not few:
        return ""
    listed = ", ".join(f"{name} ({n})" for name, n in few.items())
    return (
        f"Fewer than {MIN_SEEDS} seeds: {listed}. The IQM of so few runs is their mean and its interval "
        f"only spans the values there are; run at least {MIN_SEEDS} seeds (4 or more for the IQM to trim)."
    )
