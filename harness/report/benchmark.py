"""The benchmark's table and figure (`python -m harness benchmark`), from finished run directories.

One row per game: the runs' step budget, the final greedy evaluation's mean return (summary.json
`eval.mean_return`, one value per seed) as mean ± sample std and as IQM with its 95% interval
(harness.report.stats), the wall time per run (summary.json `wall_seconds`: building, training,
validation and evaluation, not the process start-up nor the GIF), and the published references
(harness.report.references) side by side. The figure has one panel per game: each run's greedy
validation return against step (thin), their IQM and its pointwise 95% interval (the band), and
the references as horizontal lines.

Files: `benchmark.md` (the table, how it was made and what each column is), `benchmark.csv` (full
precision) and `benchmark.png`. Read from the runs' files only; no TensorFlow.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.core import files
from harness.core.rundir import RunLog
from harness.report import references as refs
from harness.report.plots import validation_history
from harness.report.stats import (
    Interval,
    few_seeds_note,
    interval_text,
    iqm_curve,
    iqm_interval,
    mean_std,
    method_note,
)
from harness.report.tables import load_groups

MARKDOWN = "benchmark.md"
CSV = "benchmark.csv"
FIGURE = "benchmark.png"
_LINE_STYLES = {refs.ZOO.key: (0, (5, 3)), refs.CLEANRL.key: (0, (1, 2))}


@dataclass
class GameRow:
    """One game's line of the table."""

    game: str
    experiment: str
    seeds: list[int]
    steps: list[int]  # the budgets of its runs (one, unless runs of different budgets were mixed)
    returns: list[float]  # each evaluated run's mean greedy return
    wall_seconds: list[float]
    references: list[refs.Reference] = field(default_factory=list)

    @property
    def interval(self) -> Interval:
        return iqm_interval(self.returns)


def _game(group: Sequence[RunLog], fallback: str) -> str:
    ids = sorted({str((run.config.get("experiment") or {}).get("env_id") or "") for run in group} - {""})
    return "/".join(ids) or fallback


def game_rows(groups: Mapping[str, Sequence[str | Path | RunLog]]) -> list[GameRow]:
    """A row per experiment (one per game), in the order given."""
    rows = []
    for name, group in load_groups(groups).items():
        evaluated = [
            run for run in group if run.summary and (run.summary.get("eval") or {}).get("mean_return") is not None
        ]
        game = _game(group, name)
        rows.append(
            GameRow(
                game=game,
                experiment=name,
                seeds=sorted({run.seed for run in evaluated if run.seed is not None}),
                steps=sorted({run.total_steps for run in group}),
                returns=[float(run.summary["eval"]["mean_return"]) for run in evaluated if run.summary],
                wall_seconds=[
                    float(run.summary["wall_seconds"])
                    for run in evaluated
                    if run.summary and isinstance(run.summary.get("wall_seconds"), (int, float))
                ],
                references=list(refs.REFERENCES.get(game, ())),
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Table


def _duration(seconds: Sequence[float]) -> str:
    mean, std = mean_std(seconds)
    if not math.isfinite(mean):
        return "–"
    unit, scale = ("min", 60.0) if mean >= 120 else ("s", 1.0)
    spread = f" ± {std / scale:,.1f}" if math.isfinite(std) else ""
    return f"{mean / scale:,.1f}{spread} {unit}"


def _returns(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    if not math.isfinite(mean):
        return "–"
    return f"{mean:,.1f}" + (f" ± {std:,.1f}" if math.isfinite(std) else "")


def _reference_cell(row: GameRow, source: refs.Source) -> str:
    ref = refs.reference(row.game, source)
    if ref is None:
        return "–"
    over = f"{ref.count:,} episodes of 1 agent" if source is refs.ZOO else f"{ref.count} seeds"
    renamed = f", {ref.env_id}" if ref.env_id != row.game else ""
    return f"{ref.text()} ({ref.steps // 1000:,}k steps; {over}{renamed})"


HEADERS = (
    "game",
    "experiment",
    "seeds",
    "steps",
    "eval return (mean ± std)",
    "eval return IQM [95% CI]",
    "wall time per run",
    "rl-baselines3-zoo",
    "CleanRL dqn.py",
)


def format_table(rows: Sequence[GameRow]) -> str:
    """The table as Markdown, then what its statistics are and which games have few seeds."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows:
        cells = [
            row.game,
            f"`{row.experiment}`",
            str(len(row.returns)),
            "/".join(f"{steps:,}" for steps in row.steps),
            _returns(row.returns),
            interval_text(row.interval, digits=1),
            _duration(row.wall_seconds),
            _reference_cell(row, refs.ZOO),
            _reference_cell(row, refs.CLEANRL),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [method_note(), few_seeds_note({row.game: len(row.returns) for row in rows})]
    return "\n".join(lines) + "\n\n" + "\n".join(note for note in notes if note) + "\n"


def format_document(rows: Sequence[GameRow], made_with: Sequence[str], figure: str | None) -> str:
    """benchmark.md: a title, how the runs were made, the table, the columns, the sources."""
    parts = [
        "# Classic-control benchmark\n",
        "\n".join(made_with) + "\n",
        format_table(rows),
        "Columns: *eval return* is each seed's final greedy evaluation (summary.json `eval.mean_return`, "
        "the mean over the experiment's `eval_episodes` on their own seed, with the weights that "
        "validated best), then the mean ± std and the IQM over seeds; *steps* is the training budget; "
        "*wall time per run* is summary.json `wall_seconds` (building, training, validation and "
        "evaluation, with the other runs going at the same time), mean ± std over seeds.\n",
        "References, printed beside the results, not as a test (each measures something else):\n",
        "\n".join(
            f"- [{source.name}]({source.url}) at {source.revision}: {source.measures}." for source in refs.SOURCES
        )
        + "\n",
    ]
    if figure:
        parts.append(
            f"![greedy validation return against training step, one panel per game]({figure})\n\n"
            "*Each seed's greedy validation rounds (thin lines), their IQM (bold) and its pointwise "
            "95% interval (band); dashed: the zoo's result, dotted: CleanRL's.*\n"
        )
    return "\n".join(parts)


CSV_FIELDS = (
    "game",
    "experiment",
    "seeds",
    "steps",
    "eval_return_mean",
    "eval_return_std",
    "eval_return_iqm",
    "eval_return_iqm_low",
    "eval_return_iqm_high",
    "wall_seconds_mean",
    "wall_seconds_std",
    "zoo_mean",
    "zoo_std",
    "zoo_steps",
    "cleanrl_mean",
    "cleanrl_std",
    "cleanrl_steps",
)


def format_csv(rows: Sequence[GameRow]) -> str:
    """The table at full precision, one column per number; empty where undefined."""

    def number(value: float) -> Any:
        return "" if not math.isfinite(value) else value

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        mean, std = mean_std(row.returns)
        wall_mean, wall_std = mean_std(row.wall_seconds)
        interval = row.interval
        values: dict[str, Any] = {
            "game": row.game,
            "experiment": row.experiment,
            "seeds": len(row.returns),
            "steps": "/".join(map(str, row.steps)),
            "eval_return_mean": number(mean),
            "eval_return_std": number(std),
            "eval_return_iqm": number(interval.iqm),
            "eval_return_iqm_low": number(interval.low),
            "eval_return_iqm_high": number(interval.high),
            "wall_seconds_mean": number(wall_mean),
            "wall_seconds_std": number(wall_std),
        }
        for source in refs.SOURCES:
            ref = refs.reference(row.game, source)
            values[f"{source.key}_mean"] = "" if ref is None else ref.mean
            values[f"{source.key}_std"] = "" if ref is None else ref.spread
            values[f"{source.key}_steps"] = "" if ref is None else ref.steps
        writer.writerow(values)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Figure


def validation_matrix(group: Sequence[RunLog]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, scores): the validation steps every run of the group has, and a (runs, steps) matrix
    of their scores there (runs without validation rounds are left out)."""
    histories = [validation_history(run) for run in group]
    histories = [(steps, scores) for steps, scores in histories if steps.size]
    if not histories:
        return np.zeros(0), np.zeros((0, 0))
    shared = histories[0][0]
    for steps, _ in histories[1:]:
        shared = np.intersect1d(shared, steps)
    matrix = np.array([[scores[np.flatnonzero(steps == s)[-1]] for s in shared] for steps, scores in histories])
    return shared, matrix.reshape(len(histories), shared.size)


def _step_label(x: float, _: Any) -> str:
    """Steps in thousands from 10,000 on ("400000" labels run into each other)."""
    return f"{x / 1000:g}k" if abs(x) >= 10_000 else f"{x:g}"


def plot_benchmark(groups: Mapping[str, Sequence[str | Path | RunLog]], out_png: str | Path) -> Path:
    """One panel per game: greedy validation return against step, IQM and its 95% band over the
    runs, the references as horizontal lines. Written atomically; returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    runs = load_groups(groups)
    columns = min(2, len(runs))
    rows = math.ceil(len(runs) / columns)
    fig = Figure(figsize=(6.0 * columns, 4.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax, (name, group) in zip(axes, runs.items(), strict=False):
        game = _game(group, name)
        steps, matrix = validation_matrix(group)
        ax.set_title(f"{game} ({name}, {len(group)} run{'s' if len(group) != 1 else ''})")
        ax.set_xlabel("training step")
        ax.set_ylabel("greedy validation return")
        ax.grid(True, alpha=0.3)
        if steps.size == 0:
            ax.text(0.5, 0.5, "no validation rounds", transform=ax.transAxes, ha="center", color="0.4")
            continue
        for scores in matrix:
            ax.plot(steps, scores, color="C0", linewidth=0.7, alpha=0.35, marker=".", markersize=3)
        iqm, low, high = iqm_curve(matrix)
        runs_text = f"{matrix.shape[0]} run{'s' if matrix.shape[0] != 1 else ''}"
        ax.plot(steps, iqm, color="C0", linewidth=2.0, label=f"IQM over {runs_text}")
        ax.fill_between(steps, low, high, color="C0", alpha=0.2, linewidth=0, label="its 95% CI")
        for ref in refs.REFERENCES.get(game, ()):
            ax.axhline(
                ref.mean,
                color="0.35",
                linewidth=1.2,
                linestyle=_LINE_STYLES[ref.source.key],
                label=f"{ref.source.name.split()[0]}, {ref.steps // 1000:,}k steps: {ref.mean:,.{ref.digits}f}",
            )
        ax.set_xlim(0, float(steps.max()))
        ax.xaxis.set_major_formatter(FuncFormatter(_step_label))
        ax.legend(loc="best", fontsize="small")
    for ax in axes[len(runs) :]:
        ax.set_visible(False)
    fig.suptitle("greedy validation return against training step")
    out_png = Path(out_png)
    files.write_with(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return out_png


# ---------------------------------------------------------------------------------------------
# All three files


def write_benchmark(
    groups: Mapping[str, Sequence[str | Path | RunLog]], out_dir: str | Path, made_with: Sequence[str]
) -> tuple[list[GameRow], dict[str, Path]]:
    """benchmark.md, benchmark.csv and benchmark.png in `out_dir`; returns the rows and the paths."""
    out_dir = Path(out_dir)
    rows = game_rows(groups)
    figure = plot_benchmark(groups, out_dir / FIGURE)
    files.write_text(out_dir / MARKDOWN, format_document(rows, made_with, figure.name))
    files.write_text(out_dir / CSV, format_csv(rows))
    return rows, {"table": out_dir / MARKDOWN, "csv": out_dir / CSV, "figure": figure}
