"""A study's results: the table of its trials, the best trial as a ready `SET` line, and Optuna's
figures, written into the study folder `<RUNS>/tune/<study>/` at the end of every `tune` and by
`python -m harness tune-report STUDY` (`make tune-report STUDY=...`) at any time, also while
trials run. Read from the study's storage alone (no TensorFlow):

  trials.md, trials.csv   one row per trial: number, state, value, evaluation score, settings,
                          run directory, and why a trial was pruned or failed
  best.txt                the best complete trial: its value and `make experiment ... SET="..."`
  history.png             optimization history (each complete trial's value, and the best so far)
  importances.png         parameter importances (PED-ANOVA, Optuna's default), from 2 complete trials
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
import sys
import warnings
from pathlib import Path
from typing import Any

from harness.core import files
from harness.core.errors import UserError, one_line
from harness.launch import study as studies
from harness.report.tables import aligned

COLUMNS = ("trial", "state", "value", "eval", "settings", "run", "note")
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def _score_name(study: Any) -> str:
    for trial in study.trials:
        if trial.user_attrs.get("score_name"):
            return str(trial.user_attrs["score_name"])
    return "score"


def _settings(trial: Any) -> str:
    settings = trial.user_attrs.get("settings")
    if isinstance(settings, list):
        return " ".join(map(str, settings))
    return " ".join(f"{k}={v}" for k, v in trial.params.items())


def _run_dir(trial: Any) -> str:
    run_dir = trial.user_attrs.get("run_dir")
    if not run_dir:
        return "-"
    host = trial.user_attrs.get("host")
    return f"{host}:{run_dir}" if host and host != platform.node() else str(run_dir)


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def trial_rows(study: Any) -> list[dict[str, str]]:
    """One row per trial, oldest first."""
    rows = []
    for trial in study.trials:
        rows.append(
            {
                "trial": str(trial.number),
                "state": _STATES.get(trial.state.name, trial.state.name.lower()),
                "value": _number(trial.value),
                "eval": _number(trial.user_attrs.get("eval_score")),
                "settings": _settings(trial),
                "run": _run_dir(trial),
                "note": str(trial.user_attrs.get("reason") or ""),
            }
        )
    return rows


def best_line(study: Any) -> str | None:
    """The best complete trial and the command that trains its settings again, or None."""
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    record = study.user_attrs.get("dqn_harness") or {}
    texts = [*record.get("overrides", []), *(best.user_attrs.get("settings") or [])]
    joined = " ".join(map(str, texts))
    quote = "'" if '"' in joined else '"'
    steps = f" STEPS={record['nb_steps']}" if record.get("nb_steps") else ""
    name = record.get("experiment", "<name>")
    return (
        f"best: trial {best.number}, validation {_score_name(study)} {best.value:.3f} "
        f"(run {_run_dir(best)})\n"
        f"SET={quote}{joined}{quote}\n"
        f"make experiment NAME={name}{steps} SET={quote}{joined}{quote}"
    )


def _markdown(rows: list[dict[str, str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|") or " "

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_figures(study: Any, folder: Path) -> list[str]:
    """history.png and importances.png; returns a line per figure: written, or why not."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    optuna = studies.load_optuna()
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization import matplotlib as figures

    target = f"validation {_score_name(study)}"
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    lines = []
    for filename, needed, draw in (
        ("history.png", 1, lambda: figures.plot_optimization_history(study, target_name=target)),
        ("importances.png", 2, lambda: figures.plot_param_importances(study, target_name=target)),
    ):
        path = folder / filename
        if len(complete) < needed:
            lines.append(f"{filename}: not drawn, it needs {needed} complete trial{'s' if needed > 1 else ''}")
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                axes = draw()
        except (ValueError, RuntimeError, ZeroDivisionError, optuna.exceptions.OptunaError) as err:
            lines.append(f"{filename}: not drawn ({one_line(err)})")
            continue
        # Optuna's caveats (e.g. importances from too few trials) go on the figure's line.
        said = "; ".join(
            dict.fromkeys(
                " ".join(str(w.message).split())
                for w in caught
                if not issubclass(w.category, (DeprecationWarning, ExperimentalWarning))
            )
        )
        figure: Any = axes.get_figure(root=True)
        try:
            figure.set_size_inches(8, 5)
            figure.set_dpi(110)
            figure.tight_layout()
            files.write_with(path, figure.savefig)
        finally:
            plt.close(figure)
        lines.append(f"{filename}: {path}" + (f" (Optuna: {said})" if said else ""))
    return lines


def report(study: Any, folder: Path, stream: Any = None) -> str | None:
    """Print and write the table, the best trial and the figures; return the best-trial text."""
    stream = stream or sys.stdout
    rows = trial_rows(study)
    folder.mkdir(parents=True, exist_ok=True)
    files.write_text(folder / "trials.md", _markdown(rows))
    files.write_text(folder / "trials.csv", _csv(rows))
    table = aligned([COLUMNS, *[tuple(row[c] for c in COLUMNS) for row in rows]], ragged_last=True)
    print(f"\nstudy {study.study_name!r}: {len(rows)} trials\n{table}", file=stream, flush=True)
    best = best_line(study)
    files.write_text(folder / "best.txt", (best or "no complete trial yet") + "\n")
    print(best or "no complete trial yet: no best settings", file=stream, flush=True)
    for line in write_figures(study, folder):
        print(line, file=stream, flush=True)
    print(f"table: {folder / 'trials.md'}", file=stream, flush=True)
    return best


def command(args: argparse.Namespace) -> int:
    """`python -m harness tune-report STUDY [--storage URL] [--runs-dir DIR]`."""
    name = studies.check_study_name(args.study)
    folder = studies.study_dir(args.runs_dir, name)
    url = studies.storage_url(args.storage, folder)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise UserError(
            f"STUDY={name!r}: no study under {folder} (no study.db); expected the STUDY of an earlier "
            "`make tune` with the same RUNS, or STORAGE=<its database URL>"
        )
    storage = studies.open_storage(url, heartbeat=False)
    report(studies.open_study(storage, name, create=False), folder)
    return 0
