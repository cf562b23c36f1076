"""Learning curves, redrawn from a run's logged files alone (bsuite `analysis.py` style): one run's
curves.png, a comparison's figure, and `python -m harness plot`.

It reads only what the runner wrote -- `config.json`, `metrics.json` (keras-rl's FileLogger: one
value per episode) and `summary.json` -- so any plot can be redrawn offline, long after training,
without TensorFlow. matplotlib draws on the Agg canvas (no display needed).

How curves are made (the same for one run's `curves.png` and for `compare.png`):

* x is the training step. metrics.json's `nb_steps` is the cumulative step at each episode's end.
* Each run is resampled onto one step grid shared by every run in the figure (`GRID_POINTS`
  points up to the longest run) by a centred moving window `window` steps wide (default
  `WINDOW_FRACTION` of the longest run): the value at a grid point is the mean of the episodes
  that ended inside the window. Resampling and smoothing are one operation, and runs whose
  episodes end at different steps can then be averaged point by point.
* Loss and mean Q are weighted by each episode's length (the FileLogger logs an episode's mean
  over its steps, so the weighted mean is the mean over steps); episode reward is a per-episode
  mean. NaN entries (episodes before training starts have no loss or mean Q) are skipped; a window
  left empty between two filled ones is interpolated, so the curve starts where values start.
* A group (one experiment, several seeds) is drawn as the mean over its runs with a shaded band of
  +-1 sample standard deviation across runs (only where at least two runs have a value).

The final-metrics table beside the figures is harness.report.tables'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.core import files
from harness.core.errors import UserError
from harness.core.rundir import RunLog, find_run_dirs, load_run
from harness.report.tables import format_markdown, load_groups, summary_table

GRID_POINTS = 300
WINDOW_FRACTION = 0.05  # of the longest run's steps: 1,500 steps of a 30,000-step run

# (metrics.json key, panel title, weight episodes by their length)
PANELS: tuple[tuple[str, str, bool], ...] = (
    ("loss", "loss (TD, per step)", True),
    ("mean_q", "mean Q", True),
    ("episode_reward", "episode reward (training)", False),
)

VALIDATION_TITLE = "greedy validation {score_name} (dashed: scripted players)"


def group_runs(paths: Iterable[str | Path]) -> dict[str, list[Path]]:
    """Run directories (or experiment folders) grouped by experiment name, in first-seen order."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        for run_dir in find_run_dirs(path):
            run = load_run(run_dir)
            members = groups.setdefault(run.name, [])
            if run_dir.resolve() not in [p.resolve() for p in members]:
                members.append(run_dir)
    return groups


# ---------------------------------------------------------------------------------------------
# Curves


def windowed_mean(
    x: np.ndarray, values: np.ndarray, grid: np.ndarray, window: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """For each grid point g, the (weighted) mean of `values` whose `x` lies in (g - w/2, g + w/2].

    NaN values are skipped; a window with none left gives NaN. `x` need not be sorted.
    """
    x = np.asarray(x, dtype=float)
    values = np.asarray(values, dtype=float)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    keep = np.isfinite(values) & np.isfinite(x) & np.isfinite(weights) & (weights > 0)
    x, values, weights = x[keep], values[keep], weights[keep]
    order = np.argsort(x, kind="stable")
    x, values, weights = x[order], values[order], weights[order]
    # Prefix sums make every window two lookups, O((n + grid) log n) for any window width.
    weighted_sum = np.concatenate([[0.0], np.cumsum(values * weights)])
    weight_sum = np.concatenate([[0.0], np.cumsum(weights)])
    hi = np.searchsorted(x, grid + window / 2.0, side="right")
    lo = np.searchsorted(x, grid - window / 2.0, side="right")
    total = weight_sum[hi] - weight_sum[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (weighted_sum[hi] - weighted_sum[lo]) / total
    out[total <= 0] = np.nan
    return out


def run_curve(run: RunLog, key: str, grid: np.ndarray, window: float, weighted: bool) -> np.ndarray:
    """One run's metric `key` resampled onto `grid` (NaN where the run has no value)."""
    values = run.metrics.get(key)
    if values is None or values.size == 0 or run.steps.size != values.size:
        return np.full(grid.shape, np.nan)
    weights = run.metrics.get("nb_episode_steps") if weighted else None
    if weights is not None and weights.size != values.size:
        weights = None
    curve = windowed_mean(run.steps, values, grid, window, weights)
    # Where long episodes leave a window empty, interpolate between its neighbours, so a gap means
    # "no value yet" (before training starts), never "episodes happened to be long here".
    finite = np.flatnonzero(np.isfinite(curve))
    if finite.size > 1:
        inside = np.arange(finite[0], finite[-1] + 1)
        curve[inside] = np.interp(grid[inside], grid[finite], curve[finite])
    curve[grid > run.total_steps] = np.nan  # a shorter run does not extend to the longer ones' end
    return curve


def group_stats(curves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sample std (NaN with fewer than two values) and count over runs, point by point."""
    stack = np.vstack(curves)
    count = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(stack, axis=0)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        squares = np.nansum((stack - mean) ** 2, axis=0)
        std = np.where(count > 1, np.sqrt(squares / np.maximum(count - 1, 1)), np.nan)
    return mean, std, count


def validation_history(run: RunLog) -> tuple[np.ndarray, np.ndarray]:
    """(steps, scores) of a run's validation rounds (`validation_interval`); empty without them."""
    history = ((run.summary or {}).get("validation") or {}).get("history") or []
    rows = [(row.get("step"), row.get("score")) for row in history if isinstance(row, dict)]
    rows = [
        (float(step), float(score))
        for step, score in rows
        if isinstance(step, (int, float)) and isinstance(score, (int, float))
    ]
    if not rows:
        return np.zeros(0), np.zeros(0)
    steps, scores = np.array(rows).T
    return steps, scores


def _score_name(runs: Iterable[RunLog]) -> str:
    for run in runs:
        name = ((run.summary or {}).get("eval") or {}).get("score_name")
        if name:
            return str(name)
    return "score"


def _draw_validation(ax: Any, group: Sequence[RunLog], colour: str) -> None:
    """Each run's validation rounds (thin), the group's mean where every run has a round at the same
    step (bold), and the scripted players' evaluation scores, averaged over the group (dashed)."""
    histories = [validation_history(run) for run in group]
    alone = sum(h[0].size > 0 for h in histories) == 1
    for steps, scores in histories:
        if steps.size:
            ax.plot(
                steps,
                scores,
                color=colour,
                linewidth=1.8 if alone else 0.8,
                alpha=1.0 if alone else 0.45,
                marker=".",
                markersize=4,
            )
    shared = [h for h in histories if h[0].size]
    if len(shared) > 1 and all(np.array_equal(h[0], shared[0][0]) for h in shared):
        ax.plot(shared[0][0], np.mean([h[1] for h in shared], axis=0), color=colour, linewidth=1.8)
    players: dict[str, list[float]] = {}
    for run in group:
        for player, result in (((run.summary or {}).get("eval") or {}).get("baselines") or {}).items():
            if isinstance(result, dict) and isinstance(result.get("score"), (int, float)):
                players.setdefault(player, []).append(float(result["score"]))
    for index, (player, player_scores) in enumerate(players.items()):
        level = float(np.mean(player_scores))
        ax.axhline(level, color="0.45", linestyle=(0, (4, 3)) if index else (0, (1, 2)), linewidth=1)
        ax.annotate(
            player, (0.01, level), xycoords=("axes fraction", "data"), fontsize="small", color="0.35", va="bottom"
        )


def plot_runs(
    groups: Mapping[str, Sequence[str | Path | RunLog]],
    out_png: str | Path,
    title: str | None = None,
    window: float | None = None,
    show_episodes: bool = False,
) -> Path:
    """Draw loss, mean Q and episode reward against training step; one colour per group.

    `groups` maps a label (the experiment name) to its run directories. Each group is drawn as the
    mean over its runs, smoothed (see the module docstring), with a +-1 std band across runs.
    `window` is the smoothing width in steps (default `WINDOW_FRACTION` of the longest run).
    `show_episodes` also scatters the raw per-episode values faintly (for one run's curves.png).
    Writes `out_png` atomically and returns its path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = load_groups(groups)
    longest = max((r.total_steps for rs in runs.values() for r in rs), default=0)
    longest = max(longest, 1)
    window = float(window) if window else max(1.0, WINDOW_FRACTION * longest)
    grid = np.linspace(0.0, float(longest), GRID_POINTS + 1)[1:]
    # A fourth panel when any run validated during training: the greedy agent's game score.
    validated = any(validation_history(r)[0].size for rs in runs.values() for r in rs)
    titles = [title for _, title, _ in PANELS]
    if validated:
        titles.append(VALIDATION_TITLE.format(score_name=_score_name(r for rs in runs.values() for r in rs)))

    # A Figure of our own on the Agg canvas: no display, and no pyplot global state to leak or close.
    fig = Figure(figsize=(5 * len(titles), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(titles), sharex=True)
    colours = [f"C{i}" for i in range(10)]
    for index, (label, group) in enumerate(runs.items()):
        colour = colours[index % len(colours)]
        seeds = sorted({r.seed for r in group if r.seed is not None})
        legend = f"{label} ({len(group)} run{'s' if len(group) != 1 else ''}"
        legend += f", seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))})" if seeds else ")"
        for ax, (key, _, weighted) in zip(axes, PANELS, strict=False):
            if show_episodes:
                for run in group:
                    values = run.metrics.get(key)
                    if values is not None and values.size == run.steps.size:
                        ax.scatter(run.steps, values, s=5, color=colour, alpha=0.3, linewidths=0)
            curves = [run_curve(run, key, grid, window, weighted) for run in group]
            mean, std, _ = group_stats(curves)
            ax.plot(grid, mean, color=colour, linewidth=1.8, label=legend)
            if np.isfinite(std).any():
                ax.fill_between(grid, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
        if validated:
            _draw_validation(axes[-1], group, colour)
    from matplotlib.ticker import FuncFormatter

    # Steps in thousands past 10,000: "400000" labels run into each other on a 5-inch panel.
    step_format = FuncFormatter(lambda x, _: f"{x / 1000:g}k" if longest >= 10_000 and x else f"{x:g}")
    for ax, panel_title in zip(axes, titles, strict=True):
        ax.set_title(panel_title)
        ax.set_xlabel("training step")
        ax.xaxis.set_major_formatter(step_format)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, longest)
    axes[0].legend(loc="best", fontsize="small")
    band = "mean over runs, band ±1 std across runs; " if any(len(g) > 1 for g in runs.values()) else ""
    fig.suptitle(title or " vs ".join(runs))
    fig.supxlabel(f"{band}smoothed: centred moving window of {window:,.0f} steps", fontsize="small", color="0.35")
    out_png = Path(out_png)
    files.write_with(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return out_png


def write_run_curves(run_dir: str | Path) -> Path:
    """`run_dir/curves.png`: one run's episode reward, loss and mean Q against step, smoothed,
    over its raw per-episode values. Rebuilt from the logged files alone."""
    run = load_run(run_dir)
    seed = f" seed {run.seed}" if run.seed is not None else ""
    state = "" if run.finished else (" (interrupted)" if run.summary else " (unfinished)")
    return plot_runs(
        {run.name: [run]},
        run.run_dir / "curves.png",
        title=f"{run.name}{seed}{state} — {run.run_dir.name}",
        show_episodes=True,
    )


# ---------------------------------------------------------------------------------------------
# `python -m harness plot`


def default_plot_path(groups: Mapping[str, Sequence[Path]]) -> Path:
    """One run: its own curves.png. Several: plot-<names>.png in the current directory."""
    all_runs = [p for paths in groups.values() for p in paths]
    if len(all_runs) == 1:
        return Path(all_runs[0]) / "curves.png"
    return Path(f"plot-{'-'.join(groups)}.png")


def plot_command(paths: Sequence[str | Path], out: str | Path | None = None) -> tuple[Path, str]:
    """Group run directories by experiment, draw them, and return (png path, Markdown table)."""
    groups = group_runs(paths)
    out_png = Path(out) if out else default_plot_path(groups)
    if out_png.suffix.lower() != ".png":
        raise UserError(f"--out {str(out_png)!r}: expected a .png file name")
    all_runs = [p for g in groups.values() for p in g]
    if len(all_runs) == 1 and out_png == default_plot_path(groups):
        path = write_run_curves(all_runs[0])
    else:
        path = plot_runs(groups, out_png)
    return path, format_markdown(summary_table(groups))


def cli_plot(args: Any) -> int:
    """`python -m harness plot RUN_DIR... [--out file.png]`: redraw from logged files only."""
    path, table = plot_command(args.run_dirs, args.out)
    print(table)
    print(f"wrote {path}")
    return 0
