"""`python -m harness compare`: train whatever runs a comparison is missing, reuse the finished ones,
then draw one figure and one table. This module owns finding reusable runs and the compare output.

For each experiment name and each seed 0..seeds-1 it looks under `<runs>/<name>/` for a finished
run of exactly what would be trained now:

* `summary.json` present with `interrupted: false` (summary.json is written last, so a crashed or
  stopped run never counts), and `summary.steps == summary.nb_steps == ` the requested steps;
* `config.json`'s `experiment` equal to the resolved experiment that would run now (the module's
  settings, `--set` overrides, the seed and the step budget), compared as a whole dict. Any
  changed setting -- in the experiment module, in `--set`, or a schema default -- triggers a new
  run, and so does a field added to the schema since the run was made (its default may change
  what is trained: `fast_path` did). How the run was made (`config.run`: command, host, library
  versions) is not compared.

When several runs match, the newest is used. Missing runs are trained one after another, each in
its own `python -m harness run ...` process (one graph-mode TensorFlow session per process, exactly
the command a user would type), with the child's output shown indented. Ctrl-C or SIGTERM is passed
to the running child, which saves what it has as an interrupted run; compare then stops.

Output, in `--out DIR` or a new `<runs>/compare/<names>-<stamp>/`: `compare.png` (harness.plots),
`compare.md` and `compare.csv`. They are derived from the runs and can be rebuilt at any time, so
an existing `compare.*` in a given `--out` is replaced; nothing else there is touched.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

from harness.errors import UserError
from harness.experiment import PROJECT_ROOT, Experiment, apply_overrides, check_types, load_experiment


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


def resolve(name: str, seed: int, steps: int | None, overrides: Sequence[str]) -> Experiment:
    """The experiment `python -m harness run name --seed seed --steps steps --set ...` would run."""
    exp = load_experiment(name)
    changes = list(overrides)
    if steps is not None:
        changes.append(f"nb_steps={steps}")
    changes.append(f"seed={seed}")
    exp = apply_overrides(exp, changes)
    check_types(exp)
    return exp.validate()


def _normalise(data: Any) -> Any:
    # The stored config went through JSON; send ours through it too so tuples, ints and floats
    # compare as they were written.
    return json.loads(json.dumps(data))


def match_reason(run_dir: Path, wanted: dict[str, Any]) -> str | None:
    """None if `run_dir` is a finished run of `wanted` (a normalised Experiment dict), else why not."""
    summary_path, config_path = run_dir / "summary.json", run_dir / "config.json"
    if not summary_path.is_file():
        return "unfinished"
    try:
        summary = json.loads(summary_path.read_text())
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return "unreadable"
    if not isinstance(summary, dict) or not isinstance(config, dict):
        return "unreadable"
    if summary.get("interrupted", True):
        return "interrupted"
    if summary.get("seed") != wanted["seed"]:
        return "other seed"
    if summary.get("steps") != wanted["nb_steps"] or summary.get("nb_steps") != wanted["nb_steps"]:
        return "other steps"
    stored = config.get("experiment")
    if not isinstance(stored, dict):
        return "unreadable"
    if stored != wanted:
        return "other settings"
    return None


def find_finished(runs_dir: str | Path, exp: Experiment) -> tuple[Path | None, Counter]:
    """The newest finished run of `exp` under `runs_dir/<name>/`, and why the others did not match."""
    wanted = _normalise(exp.to_dict())
    reasons: Counter = Counter()
    base = Path(runs_dir) / exp.name
    if not base.is_dir():
        return None, reasons
    # Run folders are named <YYYYmmdd-HHMMSS>-seed<s>[-n]: newest last by name.
    candidates = sorted((p for p in base.iterdir() if p.is_dir() and (p / "config.json").is_file()),
                        key=lambda p: p.name, reverse=True)
    for run_dir in candidates:
        reason = match_reason(run_dir, wanted)
        if reason is None:
            return run_dir, reasons
        reasons[reason] += 1
    return None, reasons


def _run_child(command: list[str], log: TextIO) -> int:
    """Run one training process, echoing its output indented; forward SIGINT/SIGTERM to it once."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    # Its own session: a terminal's Ctrl-C reaches only us, and we pass it on exactly once (the
    # child's runner treats a second signal differently from the first).
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, env=env, start_new_session=True)
    forwarded: set[int] = set()

    def forward(signum: int, frame: Any) -> None:
        if signum not in forwarded and proc.poll() is None:
            forwarded.add(signum)
            proc.send_signal(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"    {line.rstrip()}", file=log, flush=True)
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:  # we are leaving on an exception: do not orphan a training process
            proc.terminate()
            proc.wait()


def _new_out_dir(runs_dir: Path, names: Sequence[str]) -> Path:
    base = runs_dir / "compare"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        base.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            out = base / (f"{'-'.join(names)}-{stamp}" + (f"-{attempt}" if attempt else ""))
            try:
                out.mkdir()
                return out
            except FileExistsError:
                continue
    except OSError as err:
        raise UserError(f"compare folder {str(base)!r} can't be written: {err.strerror or err}") from None
    raise UserError(f"could not create a new compare folder under {base}")


def compare(names: Sequence[str], seeds: int = 3, steps: int | None = None,
            runs_dir: str | Path = "runs", out: str | Path | None = None,
            overrides: Sequence[str] = (), log: TextIO | None = None) -> CompareResult:
    """Make sure every (name, seed) has a finished run under `runs_dir`, then plot and tabulate.

    `steps` None keeps each experiment's own `nb_steps`. `overrides` are `key=value` settings
    applied to every experiment (as `--set`). Raises UserError for bad names or settings (before
    anything is trained) and CompareInterrupted if a training run was stopped by a signal.
    """
    from harness import plots

    log = log or sys.stdout
    names = list(names)
    if not names:
        raise UserError("no experiments given (NAMES=...); e.g. NAMES=\"catch_dense catch_graves\"")
    repeated = sorted(n for n, k in Counter(names).items() if k > 1)
    if repeated:
        raise UserError(f"NAMES lists {', '.join(repeated)} more than once; expected distinct experiments")
    if seeds < 1:
        raise UserError(f"SEEDS={seeds} is not allowed; expected a positive integer")
    runs_dir = Path(runs_dir).absolute()
    # Resolve everything first, so a mistake in any name or setting stops before hours of training.
    plan = [(name, seed, resolve(name, seed, steps, overrides)) for name in names for seed in range(seeds)]

    result = CompareResult(groups={name: [] for name in names})
    total = len(plan)
    for index, (name, seed, exp) in enumerate(plan, start=1):
        head = f"[{index}/{total}] {name} seed {seed} ({exp.nb_steps} steps)"
        found, reasons = find_finished(runs_dir, exp)
        if found is not None:
            print(f"{head}: reusing {found}", file=log, flush=True)
            result.reused.append(found)
            result.groups[name].append(found)
            continue
        why = (f" (not reusable under {runs_dir / name}: "
               + ", ".join(f"{n}× {r}" for r, n in sorted(reasons.items())) + ")") if reasons else ""
        print(f"{head}: training{why} ...", file=log, flush=True)
        command = [sys.executable, "-m", "harness", "run", name, "--seed", str(seed),
                   "--steps", str(exp.nb_steps), "--runs-dir", str(runs_dir)]
        for assignment in overrides:
            command += ["--set", assignment]
        started = time.monotonic()
        code = _run_child(command, log)
        if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            raise CompareInterrupted(f"stopped while training {name} seed {seed}; runs finished so far "
                                     f"are kept under {runs_dir} and reused next time", code)
        if code != 0:
            raise UserError(f"training {name} seed {seed} failed with exit status {code} "
                            f"(its output is above)")
        found, _ = find_finished(runs_dir, exp)
        if found is None:
            raise UserError(f"training {name} seed {seed} finished but left no matching run under "
                            f"{runs_dir / name}")
        print(f"{head}: done in {time.monotonic() - started:.0f}s -> {found}", file=log, flush=True)
        result.trained.append(found)
        result.groups[name].append(found)

    if out is None:
        out_dir = _new_out_dir(runs_dir, names)
    else:
        out_dir = Path(out)
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"OUT={str(out)!r} is a file; expected a folder for compare.png/.md/.csv")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"OUT={str(out)!r} can't be created: {err.strerror or err}") from None
    result.out_dir = out_dir
    seeds_text = f"{seeds} seed{'s' if seeds != 1 else ''}"
    title = f"{' vs '.join(names)} ({seeds_text}, {_steps_text(plan)})"
    result.png = plots.plot_runs(result.groups, out_dir / "compare.png", title=title)
    result.markdown, result.csv = out_dir / "compare.md", out_dir / "compare.csv"
    rows = plots.write_table(result.groups, result.markdown, result.csv)
    result.table = plots.format_markdown(rows)
    return result


def _steps_text(plan: Sequence[tuple[str, int, Experiment]]) -> str:
    budgets = sorted({exp.nb_steps for _, _, exp in plan})
    return "/".join(f"{b:,}" for b in budgets) + " steps"


# ---------------------------------------------------------------------------------------------
# Command-line entry points (harness/cli.py parses the arguments and calls these)

def cli_compare(args: Any) -> int:
    """`python -m harness compare NAMES... [--seeds] [--steps] [--runs-dir] [--out] [--set]`."""
    try:
        result = compare(args.names, seeds=args.seeds, steps=args.steps, runs_dir=args.runs_dir,
                         out=args.out, overrides=args.overrides)
    except CompareInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return stop.exit_code
    print(f"\ntrained {len(result.trained)} run(s), reused {len(result.reused)}\n")
    print(result.table)
    for path in (result.png, result.markdown, result.csv):
        print(f"wrote {path}")
    return 0


def cli_plot(args: Any) -> int:
    """`python -m harness plot RUN_DIR... [--out file.png]`: redraw from logged files only."""
    from harness import plots

    path, table = plots.plot_command(args.run_dirs, args.out)
    print(table)
    print(f"wrote {path}")
    return 0
