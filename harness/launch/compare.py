"""`python -m harness compare`: train whatever runs a comparison is missing, reuse the finished ones,
then draw one figure and one table. This module owns the compare plan (`gather_runs`: reuse or
train every planned run, which `python -m harness benchmark` shares) and its output.

For each experiment name and each seed 0..seeds-1 it looks under `<runs>/<name>/` for a finished
run of exactly what would be trained now (harness.core.rundir.find_finished: the whole resolved
experiment compared, so any changed setting means a new run); when several match, the newest is
used. The missing runs are trained through the sweep executor (harness.launch.sweep.execute), k
at a time (`--workers`, default one per core), each its own `python -m harness run ...` process
with its log in the output folder's `logs/`. Ctrl-C or SIGTERM is passed to the running runs,
which save what they have as interrupted runs; compare then stops.

Output, in `--out DIR` or a new `<runs>/compare/<names>-<stamp>/`: `compare.png` (harness.report.plots),
`compare.md` and `compare.csv` (harness.report.tables). They are derived from the runs and can be
rebuilt at any time, so an existing `compare.*` in a given `--out` is replaced; nothing else there
is touched.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.core.errors import UserError
from harness.core.registry import resolve_experiment
from harness.core.rundir import find_finished, new_stamped_dir
from harness.core.schema import Experiment
from harness.launch import sweep


@dataclass
class CompareResult:
    """What `compare` did: the runs it used per experiment, which it trained, and its outputs."""

    groups: dict[str, list[Path]]
    trained: list[Path] = field(default_factory=list)
    reused: list[Path] = field(default_factory=list)
    out_dir: Path | None = None
    png: Path | None = None
    markdown: Path | None = None
    csv: Path | None = None
    table: str = ""


class CompareInterrupted(Exception):
    """A training child was stopped by a signal; its run is saved as interrupted."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _out_dir(runs_dir: Path, names: Sequence[str], out: str | Path | None) -> Path:
    if out is None:
        return new_stamped_dir(runs_dir / "compare", f"{'-'.join(names)}-{{stamp}}", what="compare folder")
    return output_folder(out, "compare.png/.md/.csv")


def output_folder(out: str | Path, holds: str) -> Path:
    """The folder OUT names, made if missing; a file there or a folder that can't be made is a
    UserError saying what the folder is for (`holds`)."""
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"OUT={str(out)!r} is a file; expected a folder for {holds}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"OUT={str(out)!r} can't be created: {err.strerror or err}") from None
    return out_dir


def compare(
    names: Sequence[str],
    seeds: int = 3,
    steps: int | None = None,
    runs_dir: str | Path = "runs",
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    log: TextIO | None = None,
    workers: int | None = None,
) -> CompareResult:
    """Make sure every (name, seed) has a finished run under `runs_dir`, then plot and tabulate.

    `steps` None keeps each experiment's own `nb_steps`. `overrides` are `key=value` settings
    applied to every experiment (as `--set`). `workers`: missing runs trained at once (default:
    one per core). Raises UserError for bad names or settings (before anything is trained) or a
    failed run, and CompareInterrupted if the training was stopped by a signal.
    """
    from harness.report import plots, tables

    log = log or sys.stdout
    names = list(names)
    if not names:
        raise UserError('no experiments given (NAMES=...); e.g. NAMES="catch_dense catch_graves"')
    repeated = sorted(n for n, k in Counter(names).items() if k > 1)
    if repeated:
        raise UserError(f"NAMES lists {', '.join(repeated)} more than once; expected distinct experiments")
    if seeds < 1:
        raise UserError(f"SEEDS={seeds} is not allowed; expected a positive integer")
    if workers is not None and workers < 1:
        raise UserError(f"WORKERS={workers!r} is not allowed; expected a positive integer")
    runs_dir = Path(runs_dir).absolute()
    # Resolve everything first, so a mistake in any name or setting stops before hours of training.
    plan = resolve_plan(names, range(seeds), steps, overrides)
    out_dir = _out_dir(runs_dir, names, out)

    result = CompareResult(groups={name: [] for name in names}, out_dir=out_dir)
    result.groups, result.trained, result.reused = gather_runs(
        plan, runs_dir, out_dir / "logs", tuple(overrides), workers, log
    )

    seeds_text = f"{seeds} seed{'s' if seeds != 1 else ''}"
    title = f"{' vs '.join(names)} ({seeds_text}, {_steps_text(plan)})"
    result.png = plots.plot_runs(result.groups, out_dir / "compare.png", title=title)
    result.markdown, result.csv = out_dir / "compare.md", out_dir / "compare.csv"
    tables.write_table(result.groups, result.markdown, result.csv)
    result.table = result.markdown.read_text()
    return result


def resolve_plan(
    names: Sequence[str], seeds: Sequence[int], steps: int | None, overrides: Sequence[str]
) -> list[tuple[str, int, Experiment]]:
    """Every (name, seed) resolved as `run` would (UserError for a bad name or setting), seed by
    seed with every experiment at each, so that a comparison stopped part-way has matched pairs."""
    return [(name, seed, resolve_experiment(name, seed, steps, overrides)) for seed in seeds for name in names]


def gather_runs(
    plan: Sequence[tuple[str, int, Experiment]],
    runs_dir: Path,
    log_dir: Path,
    overrides: tuple[str, ...],
    workers: int | None,
    log: TextIO,
) -> tuple[dict[str, list[Path]], list[Path], list[Path]]:
    """A finished run of every planned (name, seed, experiment) under `runs_dir`: the newest
    identical one, else trained now through the sweep executor (logs in `log_dir`), `workers` at
    a time. Returns (run directories per name, in plan order; those trained; those reused).
    Raises UserError for a failed run and CompareInterrupted when stopped by a signal."""
    groups: dict[str, list[Path]] = {name: [] for name, _, _ in plan}
    trained: list[Path] = []
    reused: list[Path] = []
    missing: list[tuple[str, int, Experiment]] = []
    for index, (name, seed, exp) in enumerate(plan, start=1):
        head = f"[{index}/{len(plan)}] {name} seed {seed} ({exp.nb_steps} steps)"
        found, reasons = find_finished(runs_dir, exp)
        if found is not None:
            print(f"{head}: reusing {found}", file=log, flush=True)
            reused.append(found)
            continue
        why = (
            (
                f" (not reusable under {runs_dir / name}: "
                + ", ".join(f"{n}× {r}" for r, n in sorted(reasons.items()))
                + ")"
            )
            if reasons
            else ""
        )
        print(f"{head}: to train{why}", file=log, flush=True)
        missing.append((name, seed, exp))
    if missing:
        _train_missing(missing, runs_dir, log_dir, overrides, workers, log)
    for name, _, exp in plan:
        found, _ = find_finished(runs_dir, exp)
        if found is None:
            raise UserError(
                f"training {name} seed {exp.seed} finished but left no matching run under {runs_dir / name}"
            )
        groups[name].append(found)
        if found not in reused:
            trained.append(found)
    return groups, trained, reused


def _train_missing(
    missing: Sequence[tuple[str, int, Experiment]],
    runs_dir: Path,
    log_dir: Path,
    overrides: tuple[str, ...],
    workers: int | None,
    log: TextIO,
) -> None:
    """The missing runs through the sweep executor, their logs in `log_dir`."""
    specs = tuple(sweep.RunSpec(name, seed, exp.nb_steps, overrides) for name, seed, exp in missing)
    names = tuple(dict.fromkeys(name for name, _, _ in missing))
    seeds = tuple(sorted({seed for _, seed, _ in missing}))
    plan = sweep.SweepPlan(specs=specs, names=names, seeds=seeds, runs_dir=runs_dir, backend="local", workers=workers)
    done = sweep.execute(plan, sweep_dir=log_dir, stream=log)
    if done.signal_number is not None:
        stopped = ", ".join(r.spec.label for r in done.results if r.outcome and r.outcome.get("started") and not r.ok)
        raise CompareInterrupted(
            f"stopped while training {stopped or 'nothing'}; runs finished so far are kept "
            f"under {runs_dir} and reused next time",
            128 + done.signal_number,
        )
    failed = [r for r in done.results if not r.ok]
    if failed:
        raise UserError("training failed: " + "; ".join(f"{r.spec.label}: {r.reason()} (log {r.log})" for r in failed))


def _steps_text(plan: Sequence[tuple[str, int, Experiment]]) -> str:
    budgets = sorted({exp.nb_steps for _, _, exp in plan})
    return "/".join(f"{b:,}" for b in budgets) + " steps"


# ---------------------------------------------------------------------------------------------
# Command-line entry points (harness/cli.py parses the arguments and calls these)


def cli_compare(args: Any) -> int:
    """`python -m harness compare NAMES... [--seeds] [--steps] [--runs-dir] [--out] [--set]`."""
    try:
        result = compare(
            args.names,
            seeds=args.seeds,
            steps=args.steps,
            runs_dir=args.runs_dir,
            out=args.out,
            overrides=args.overrides,
            workers=args.workers,
        )
    except CompareInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return stop.exit_code
    print(f"\ntrained {len(result.trained)} run(s), reused {len(result.reused)}\n")
    print(result.table)
    for path in (result.png, result.markdown, result.csv):
        print(f"wrote {path}")
    return 0
