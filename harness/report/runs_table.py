"""`runs`: a table of past runs, newest first, read from each run's config.json and summary.json.

A run directory is any `<RUNS>/<experiment>/<run>/` holding a config.json (the runner writes it
first). Its summary.json (written last) gives steps and score; a run without one crashed or is
still running, and shows the step of its newest checkpoint instead. Nothing here imports
TensorFlow, so the table comes up at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from pathlib import Path
from typing import Any, TextIO

from harness.core.errors import UserError
from harness.core.rundir import CONFIG, SUMMARY, newest_checkpoint, read_json
from harness.report.tables import aligned

COLUMNS = ("experiment", "seed", "steps", "score", "date", "status", "path")
NO_SUMMARY = "no summary (crashed or running)"


@dataclasses.dataclass(frozen=True)
class RunRow:
    experiment: str
    seed: str
    steps: str
    score: str
    date: str
    status: str
    path: str
    sort_key: float  # creation time, seconds since the epoch

    def cells(self) -> tuple[str, ...]:
        return tuple(getattr(self, column) for column in COLUMNS)


def _created(config: dict[str, Any] | None, run_dir: Path) -> dt.datetime:
    """When the run started: config.json's `run.created`, else the directory's modification time."""
    text = ((config or {}).get("run") or {}).get("created")
    if isinstance(text, str):
        try:
            created = dt.datetime.fromisoformat(text)
            return created if created.tzinfo else created.astimezone()
        except ValueError:
            pass
    return dt.datetime.fromtimestamp(run_dir.stat().st_mtime).astimezone()


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None), or (None, the problem) for a file that cannot be read as a JSON object."""
    try:
        return read_json(path), None
    except UserError:
        return None, f"unreadable {path.name}"


def describe_run(run_dir: Path) -> RunRow:
    """One table row for `run_dir` (a folder with config.json)."""
    config, problem = _read(run_dir / CONFIG)
    experiment_section = (config or {}).get("experiment") or {}
    run_section = (config or {}).get("run") or {}
    experiment = str(experiment_section.get("name") or run_dir.parent.name)
    seed = experiment_section.get("seed")
    steps, score = "-", "-"
    summary_path = run_dir / SUMMARY
    if problem is not None:
        status = problem
    elif not summary_path.exists():
        status = NO_SUMMARY
        checkpoint = newest_checkpoint(run_dir)
        if checkpoint is not None:
            steps = f"{checkpoint[1]} (checkpoint)"
    else:
        summary, problem = _read(summary_path)
        if summary is None:
            assert problem is not None  # _read gives no data only with a problem
            status = problem
        else:
            status = "interrupted" if summary.get("interrupted") else "finished"
            if isinstance(summary.get("pruned"), dict):  # a tuning trial its study's pruner stopped
                status = f"pruned at step {summary['pruned'].get('step', '?')}"
            elif summary.get("diverged"):
                status = f"diverged at step {summary['diverged'].get('step', '?')}"
            if summary.get("steps") is not None:
                steps = str(summary["steps"])
            evaluation = summary.get("eval")
            if isinstance(evaluation, dict) and isinstance(evaluation.get("score"), (int, float)):
                score = f"{evaluation['score']:.3f} {evaluation.get('score_name', '')}".rstrip()
            seed = summary.get("seed", seed)
    if run_section.get("resumed_from"):
        status += f", resumed at step {run_section.get('resumed_at_step', '?')}"
    created = _created(config, run_dir)
    return RunRow(
        experiment=experiment,
        seed="-" if seed is None else str(seed),
        steps=steps,
        score=score,
        date=created.strftime("%Y-%m-%d %H:%M"),
        status=status,
        path=str(run_dir),
        sort_key=created.timestamp(),
    )


def find_runs(runs_dir: str | Path) -> list[RunRow]:
    """Every run under `runs_dir`, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UserError(
            f"RUNS={str(runs_dir)!r} is not a directory; expected the folder runs are saved in (default: runs)"
        )
    run_dirs = [p.parent for p in root.glob("*/*/config.json") if p.parent.is_dir()]
    rows = [describe_run(run_dir) for run_dir in run_dirs]
    # Newest first; runs started in the same second by their directory name (it ends in the seed).
    return sorted(rows, key=lambda row: (row.sort_key, row.path), reverse=True)


def format_table(rows: list[RunRow]) -> str:
    """Plain aligned text: a header line and one line per run."""
    return aligned([COLUMNS, *(row.cells() for row in rows)])


def print_runs(runs_dir: str | Path, stream: TextIO | None = None) -> list[RunRow]:
    """Print the table of runs under `runs_dir`; return its rows."""
    stream = stream or sys.stdout
    rows = find_runs(runs_dir)
    if not rows:
        print(
            f"no runs under {runs_dir} (a run directory is <RUNS>/<experiment>/<run>/ with a config.json)", file=stream
        )
    else:
        print(format_table(rows), file=stream)
    return rows


def cli_runs(args: Any) -> int:
    """`python -m harness runs [--runs-dir DIR]`."""
    print_runs(args.runs_dir)
    return 0
