"""Tables of results, as Markdown, CSV and aligned console text.

The final-metrics table (one row per experiment, mean and sample standard deviation over its
runs): the evaluation score and mean return from summary.json, and the training loss, mean Q and
episode reward averaged over the last `FINAL_FRACTION` of a run's episodes; next to the evaluation
score, its interquartile mean over the runs with a 95% stratified-bootstrap interval
(harness.report.stats, which owns the statistics); for a game that names what ended each episode
(CAVE: ceiling, floor, block), what the evaluation episodes of all runs died of, summed. Read from
the run directories only
(harness.core.rundir), without TensorFlow.

The per-run table (one row per run, the numbers a learning claim is reported with): its seed, the
greedy evaluation score, that score against the random player's and the best scripted player's on
the same episodes (summary.json's `eval.baselines`), the best validation round, what the
evaluation episodes died of, the wall time and the speed.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.core import files
from harness.core.errors import UserError
from harness.core.rundir import RunLog, load_run
from harness.core.scoring import counts_text
from harness.report.stats import Interval, few_seeds_note, interval_text, iqm_interval, mean_std, method_note

FINAL_FRACTION = 0.10  # "final" metrics: the last 10% of a run's episodes

# Table columns: (key, Markdown header). `*_mean`/`*_std` pairs are shown as "mean ± std".
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("experiment", "experiment"),
    ("runs", "runs"),
    ("score", "eval {score_name}"),
    ("score_iqm", "eval {score_name} IQM [95% CI]"),
    ("deaths", "eval deaths, all runs"),
    ("eval_return", "eval mean return"),
    ("final_reward", "final train reward"),
    ("final_loss", "final loss"),
    ("final_mean_q", "final mean Q"),
    ("steps_per_second", "steps/s"),
)
_PAIRED = ("score", "eval_return", "final_reward", "final_loss", "final_mean_q", "steps_per_second")
# Metrics whose IQM and interval over runs the table holds (`<m>_iqm`, `<m>_iqm_low`, `<m>_iqm_high`).
_IQM = ("score", "eval_return")


def final_value(run: RunLog, key: str, fraction: float = FINAL_FRACTION) -> float:
    """Mean of `key` over the last `fraction` of the run's episodes (NaN entries skipped)."""
    values = run.metrics.get(key)
    if values is None or values.size == 0:
        return math.nan
    tail = values[-max(1, math.ceil(fraction * values.size)) :]
    tail = tail[np.isfinite(tail)]
    return float(tail.mean()) if tail.size else math.nan


def summary_table(groups: Mapping[str, Sequence[str | Path | RunLog]]) -> list[dict[str, Any]]:
    """One row per group: run count and the mean and sample std over its runs of the final metrics.

    Keys: experiment, runs, evaluated (runs with an evaluation), score_name, `<m>_mean` / `<m>_std`
    for m in score, eval_return, final_reward, final_loss, final_mean_q, steps_per_second, and
    `<m>_iqm` / `<m>_iqm_low` / `<m>_iqm_high` (the IQM over runs and its 95% interval) for m in
    score, eval_return.
    """
    rows = []
    for label, group in load_groups(groups).items():
        evals = [r.summary["eval"] for r in group if r.summary and r.summary.get("eval")]
        names = sorted({e.get("score_name", "score") for e in evals})
        per_run = {
            "score": [float(e["score"]) for e in evals],
            "eval_return": [float(e["mean_return"]) for e in evals],
            "final_reward": [final_value(r, "episode_reward") for r in group],
            "final_loss": [final_value(r, "loss") for r in group],
            "final_mean_q": [final_value(r, "mean_q") for r in group],
            "steps_per_second": [
                float(r.summary["steps_per_second"])
                for r in group
                if r.summary and r.summary.get("steps_per_second") is not None
            ],
        }
        row: dict[str, Any] = {
            "experiment": label,
            "runs": len(group),
            "evaluated": len(evals),
            "score_name": "/".join(names) or "score",
            **_deaths(evals),
        }
        for key, values in per_run.items():
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std(values)
        intervals: dict[str, Interval] = {}
        for key in _IQM:
            # A game scored by its mean return has the same values twice: bootstrap them once.
            same = next((k for k in intervals if per_run[k] == per_run[key]), None)
            interval = intervals[key] = intervals[same] if same else iqm_interval(per_run[key])
            row[f"{key}_iqm"], row[f"{key}_iqm_low"], row[f"{key}_iqm_high"] = interval.iqm, interval.low, interval.high
        rows.append(row)
    return rows


def _deaths(evals: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`deaths`: the crash causes of the evaluations that counted them (summary.json
    `eval.crashes`), summed and most frequent first ({} when none did); `deaths_runs`: how many did."""
    counted = [e["crashes"] for e in evals if e.get("crashes")]
    total: Counter[str] = Counter()
    for crashes in counted:
        total.update({str(cause): int(n) for cause, n in crashes.items()})
    return {"deaths": dict(total.most_common()), "deaths_runs": len(counted)}


def _deaths_text(row: Mapping[str, Any], separator: str = ", ") -> str:
    """ "block 30, floor 20, ceiling 10", with "(2 of 3 runs)" when some runs did not count them."""
    text = counts_text(row["deaths"], separator)
    if text and row["deaths_runs"] != row["evaluated"]:
        text += f" ({row['deaths_runs']} of {row['evaluated']} runs)"
    return text


def _fmt(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2e}"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as Markdown: "mean ± std" over runs (std shown only with two or more runs) and the
    score's "IQM [low, high]", then a line saying what they are, and one naming every experiment
    with fewer than 3 evaluated runs."""
    score_names = {row["score_name"] for row in rows}
    score_name = score_names.pop() if len(score_names) == 1 else "score"
    # The deaths column only for games that report them.
    columns = [(k, h) for k, h in TABLE_COLUMNS if k != "deaths" or any(row["deaths"] for row in rows)]
    headers = [header.format(score_name=score_name) for _, header in columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = []
        for key, _ in columns:
            if key in _PAIRED:
                mean, std = row[f"{key}_mean"], row[f"{key}_std"]
                cells.append(_fmt(mean) + (f" ± {_fmt(std)}" if math.isfinite(std) else ""))
            elif key == "score_iqm":
                interval = Interval(row["score_iqm"], row["score_iqm_low"], row["score_iqm_high"], row["evaluated"])
                cells.append(interval_text(interval, digits=_cell_digits(interval.iqm)))
            elif key == "experiment":
                cells.append(f"`{row[key]}`")
            elif key == "deaths":
                cells.append(_deaths_text(row) or "–")
            elif key == "runs" and row["evaluated"] != row["runs"]:
                cells.append(f"{row['runs']} ({row['evaluated']} evaluated)")
            else:
                cells.append(str(row[key]))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [method_note(), few_seeds_note({str(row["experiment"]): int(row["evaluated"]) for row in rows})]
    return "\n".join(lines) + "\n\n" + "\n".join(note for note in notes if note) + "\n"


def _cell_digits(value: float) -> int:
    """The decimals `_fmt` shows for a value of this size."""
    return 3 if math.isfinite(value) and abs(value) < 100 else 0


CSV_FIELDS: tuple[str, ...] = (
    ("experiment", "runs", "evaluated", "score_name")
    + tuple(f"{key}_{stat}" for key in _PAIRED for stat in ("mean", "std"))
    + tuple(f"{key}_{stat}" for key in _IQM for stat in ("iqm", "iqm_low", "iqm_high"))
    + ("deaths",)
)


def format_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as CSV, one column per statistic, full precision; empty where undefined."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {k: row[k] for k in CSV_FIELDS if k != "deaths"}
        cells = {k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in cells.items()}
        writer.writerow({**cells, "deaths": _deaths_text(row, separator="; ")})
    return buffer.getvalue()


def per_run_table(groups: Mapping[str, Sequence[str | Path | RunLog]]) -> list[dict[str, Any]]:
    """One row per evaluated run, in each group's order: experiment, seed, score, score_name,
    random (the random player's score on the same episodes, or None), reference and reference_name
    (the other scripted player's: CAVE's heuristic pilot, Catch's perfect player; None without
    one), best_validation and best_step (None without validation), deaths (text), wall_seconds,
    steps_per_second."""
    rows = []
    for label, group in load_groups(groups).items():
        for run in group:
            summary = run.summary or {}
            evaluation = summary.get("eval")
            if not evaluation:
                continue
            baselines = evaluation.get("baselines") or {}
            others = [name for name in baselines if name != "random"]
            validation = summary.get("validation") or {}
            rows.append(
                {
                    "experiment": label,
                    "seed": run.seed,
                    "score": float(evaluation["score"]),
                    "score_name": evaluation.get("score_name", "score"),
                    "random": baselines["random"]["score"] if "random" in baselines else None,
                    "reference_name": others[0] if others else None,
                    "reference": baselines[others[0]]["score"] if others else None,
                    "best_validation": validation.get("best_score"),
                    "best_step": validation.get("best_step"),
                    "deaths": counts_text(evaluation.get("crashes") or {}),
                    "wall_seconds": summary.get("wall_seconds"),
                    "steps_per_second": summary.get("steps_per_second"),
                }
            )
    return rows


def format_per_run_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-run table as Markdown ("" without rows); the baseline, validation and deaths columns
    only when some run has them."""
    if not rows:
        return ""
    score_name = rows[0]["score_name"] if len({row["score_name"] for row in rows}) == 1 else "score"
    reference = next((row["reference_name"] for row in rows if row["reference_name"]), None)
    columns: list[tuple[str, Any]] = [
        ("experiment", lambda row: f"`{row['experiment']}`"),
        ("seed", lambda row: str(row["seed"])),
        (f"eval {score_name}", lambda row: _score_text(row["score"])),
    ]
    if any(row["random"] for row in rows):
        columns.append(("× random", lambda row: _ratio(row["score"], row["random"], "×")))
    if reference:
        columns.append((f"of the {reference}", lambda row: _ratio(row["score"], row["reference"], "%")))
    if any(row["best_step"] is not None for row in rows):
        columns.append(("best validation (step)", _best_validation))
    if any(row["deaths"] for row in rows):
        columns.append(("deaths", lambda row: row["deaths"] or "–"))
    columns += [
        ("wall time", lambda row: "–" if row["wall_seconds"] is None else f"{row['wall_seconds'] / 60:.1f} min"),
        ("steps/s", lambda row: "–" if row["steps_per_second"] is None else f"{row['steps_per_second']:.1f}"),
    ]
    lines = ["| " + " | ".join(header for header, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _ratio(value: float, base: float | None, unit: str) -> str:
    """value / base as "3.2×" or "45.1%" ("–" without a positive base)."""
    if not base or base <= 0:
        return "–"
    return f"{value / base:.1f}×" if unit == "×" else f"{100 * value / base:.1f}%"


def _best_validation(row: Mapping[str, Any]) -> str:
    if row["best_step"] is None or row["best_validation"] is None:
        return "–"
    return f"{_score_text(float(row['best_validation']))} ({int(row['best_step']):,})"


def _score_text(value: float) -> str:
    """A score with one decimal (frames: 180.4), or _fmt's three for a fraction (a catch rate)."""
    return _fmt(value) if abs(value) < 1 else f"{value:,.1f}"


def format_report(groups: Mapping[str, Sequence[str | Path | RunLog]], rows: Sequence[Mapping[str, Any]]) -> str:
    """The final-metrics table (`rows`, summary_table's) and below it the per-run table."""
    per_run = format_per_run_markdown(per_run_table(groups))
    return format_markdown(rows) + ("\nPer run:\n\n" + per_run if per_run else "")


def write_table(
    groups: Mapping[str, Sequence[str | Path | RunLog]], out_md: str | Path, out_csv: str | Path
) -> list[dict[str, Any]]:
    """Write the final-metrics table and the per-run table as Markdown, the former as CSV too
    (atomically); return the final-metrics rows."""
    loaded = load_groups(groups)
    rows = summary_table(loaded)
    files.write_text(out_md, format_report(loaded, rows))
    files.write_text(out_csv, format_csv(rows))
    return rows


def load_groups(groups: Mapping[str, Sequence[str | Path | RunLog]]) -> dict[str, list[RunLog]]:
    """Each group's runs loaded (run directories read, RunLogs kept); UserError when empty."""
    if not groups or not any(groups.values()):
        raise UserError("nothing to plot: no run directories given")
    return {
        name: [p if isinstance(p, RunLog) else load_run(p) for p in paths] for name, paths in groups.items() if paths
    }


def aligned(rows: Sequence[Sequence[str]], ragged_last: bool = False) -> str:
    """Plain text columns, the first row a header; `ragged_last` leaves the last column unpadded
    and underlines the header (the sweep's table, whose last column holds long reasons)."""
    count = len(rows[0])
    padded = count - 1 if ragged_last else count
    widths = [max(len(row[i]) for row in rows) for i in range(padded)]
    lines = [
        "  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + list(row[padded:])).rstrip()
        for row in rows
    ]
    if ragged_last:
        lines.insert(1, "  ".join(["-" * w for w in widths] + ["-" * len(rows[0][-1])]))
    return "\n".join(lines)
