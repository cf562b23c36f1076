"""Sweeps: every (experiment, seed) pair of a comparison run at once, on this machine or on Ray.

`python -m harness sweep catch_dense catch_graves --seeds 5` (`make sweep NAMES=... SEEDS=5`) runs
one `python -m harness run NAME --seed S ...` process per pair. Each run is its own OS process
(keras-rl trains in TensorFlow's graph mode, whose global state one process per run keeps apart)
and writes its usual run directory under RUNS. This module owns:

  planning     the runs, checked up front (a typo in NAMES or SET is a one-line error before any
               run starts) and the thread budget: with k runs at once on c cores each run gets
               max(1, c // k) TensorFlow threads (DQN_HARNESS_THREADS, read by harness.kerasrl.compat) so
               parallel runs do not fight over the cores;
  backends     `local`: a pool of k threads, each waiting on one run process at a time;
               `ray`: each run is a Ray task (num_cpus = its threads) that starts the same process,
               on an existing cluster when RAY_ADDRESS is set, else on a Ray started here;
  the sweep    folder `<RUNS>/sweeps/<YYYYmmdd-HHMMSS>/`: one log per run (`<name>-seed<s>.log`),
               `sweep.json` (the plan and every run's outcome, rewritten as runs finish),
               `summary.txt` (the console table), and from harness.report.plots `table.md`, `table.csv`
               and `comparison.png` over the runs that finished.

A failed run (non-zero exit, killed, no summary) is reported with the tail of its log and the others
go on; the sweep exits 1 if any run failed, after the table. Ctrl-C or SIGTERM stops starting runs
and passes the signal to the running ones (Ray: cancels their tasks, which send the runs SIGTERM),
which save what they have (see harness.run.runner); the sweep then exits 130 or 143.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.core import files
from harness.core.errors import UserError
from harness.core.registry import ENV_VAR as EXPERIMENTS_ENV
from harness.core.registry import resolve_experiment
from harness.core.rundir import new_stamped_dir
from harness.core.signals import SignalCatcher, signal_name
from harness.report.stats import few_seeds_note, iqm_text, mean_sd_text, method_note
from harness.report.tables import aligned

BACKENDS = ("local", "ray")
LOG_TAIL_LINES = 15
# How often the driver looks for finished runs and newly started logs (runs take seconds to hours).
POLL_SECONDS = 0.5
# The first line harness.run.runner.run prints: "run <name> seed <seed> -> <run_dir>". Reading it from a
# run's log is how the sweep learns where the run wrote (tests/test_sweep.py reads real runs).
_RUN_DIR_LINE = re.compile(r"^run (\S+) seed (\d+) -> (.+)$", re.MULTILINE)
_INSTALL_RAY = "run `make ray-deps` (installs requirements-ray.txt into .venv)"
_NOT_STARTED = "not started: the sweep was stopped"


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: an experiment, a seed, and the options every run shares."""

    name: str
    seed: int
    steps: int | None
    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} seed {self.seed}"

    @property
    def log_name(self) -> str:
        return f"{self.name}-seed{self.seed}.log"

    def argv(self, python: str, runs_dir: Path) -> list[str]:
        """The command a user would type for this run."""
        args = [python, "-m", "harness", "run", self.name, "--seed", str(self.seed)]
        if self.steps is not None:
            args += ["--steps", str(self.steps)]
        for assignment in self.overrides:
            args += ["--set", assignment]
        return args + ["--runs-dir", str(runs_dir)]


@dataclass(frozen=True)
class SweepPlan:
    specs: tuple[RunSpec, ...]
    names: tuple[str, ...]
    seeds: tuple[int, ...]
    runs_dir: Path  # absolute, so that a run process on any node writes where the user asked
    backend: str
    workers: int | None  # None: as many as there are cores (local) or cluster CPUs (Ray cluster)


def parse_seeds(text: str | int) -> tuple[int, ...]:
    """SEEDS: a count n (seeds 0 .. n-1) or a comma-separated list of seeds ("3,4,7")."""
    text = str(text).strip()
    allowed = "expected a count such as 5 (seeds 0-4) or a list of seeds such as 0,3,7"
    if "," in text:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise UserError(f"SEEDS={text!r} is not allowed; {allowed}")
        seeds = tuple(int(p) for p in parts)
        duplicates = sorted({s for s in seeds if seeds.count(s) > 1})
        if duplicates:
            raise UserError(f"SEEDS={text!r} lists seed {duplicates[0]} twice; {allowed}")
        return seeds
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"SEEDS={text!r} is not allowed; {allowed}")
    return tuple(range(int(text)))


def plan_sweep(
    names: Sequence[str],
    seeds: Sequence[int],
    steps: int | None = None,
    overrides: Sequence[str] = (),
    runs_dir: str | Path = "runs",
    backend: str = "local",
    workers: int | None = None,
) -> SweepPlan:
    """Check every experiment and override as `run` would, before anything starts."""
    if not names:
        raise UserError('no experiments given; expected NAMES="name ...", e.g. NAMES="catch_dense catch_graves"')
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"NAMES lists {name!r} twice; expected each experiment once")
        seen.add(name)
    if backend not in BACKENDS:
        raise UserError(f"BACKEND={backend!r} is not allowed; expected one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise UserError(f"WORKERS={workers!r} is not allowed; expected a positive integer")
    shared = tuple(overrides)
    for name in names:
        for seed in seeds:
            # The same checks as `python -m harness run` (schema, types, ranges), without TensorFlow.
            resolve_experiment(name, seed, steps, shared)
    specs = tuple(RunSpec(name, seed, steps, shared) for name in names for seed in seeds)
    return SweepPlan(
        specs=specs,
        names=tuple(names),
        seeds=tuple(seeds),
        runs_dir=Path(runs_dir).expanduser().resolve(),
        backend=backend,
        workers=workers,
    )


def machine_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_run(cores: int, workers: int) -> int:
    """TensorFlow threads for each of `workers` runs sharing `cores` cores."""
    return max(1, cores // max(1, workers))


def run_environment(threads: int) -> dict[str, str]:
    """Environment variables that size every thread pool of a run process to `threads`."""
    value = str(threads)
    return {
        "DQN_HARNESS_THREADS": value,  # TensorFlow's intra- and inter-op pools (harness.kerasrl.compat)
        # NumPy's OpenBLAS (and MKL/OpenMP where a build uses them) would otherwise start one
        # thread per core in every run process.
        "OMP_NUM_THREADS": value,
        "OPENBLAS_NUM_THREADS": value,
        "MKL_NUM_THREADS": value,
        "PYTHONUNBUFFERED": "1",  # the log shows progress as it happens
    }


def new_sweep_dir(runs_dir: Path) -> Path:
    """A new `<runs_dir>/sweeps/<YYYYmmdd-HHMMSS>[-k]/` (never an existing one)."""
    return new_stamped_dir(runs_dir / "sweeps", "{stamp}")


# ---------------------------------------------------------------------------------------------
# One run, as either backend executes it


def execute_run(
    argv: list[str], cwd: str, env_updates: dict[str, str], log_path: str, launch: Callable[..., Any] | None = None
) -> dict[str, Any]:
    """Run one `python -m harness run ...` process with its output in `log_path`; return its outcome.

    Runs in the driver (local backend) or in a Ray worker, possibly on another machine: it uses
    only the standard library and sends back plain data -- the exit code, the run directory and
    summary.json as the run wrote them, and the tail of the log -- so the driver can report a run
    even when it cannot see the worker's files. `launch` (local backend) is subprocess.Popen's
    stand-in that may decline to start (returns None) once the sweep is stopping.
    """
    import json as _json
    import os as _os
    import signal as _signal
    import socket
    import subprocess
    import time as _time

    outcome: dict[str, Any] = {
        "host": socket.gethostname(),
        "exit_code": None,
        "seconds": 0.0,
        "run_dir": None,
        "summary": None,
        "log_tail": [],
        "error": None,
        "started": False,
    }
    if not _os.path.isdir(cwd) or not _os.path.isfile(argv[0]):
        # A Ray node without the project: it must be at the same path on every node.
        outcome["error"] = (
            f"{outcome['host']} has no {argv[0]} or no {cwd}; the project and its .venv "
            "must be at the same path on every node"
        )
        return outcome
    _os.makedirs(_os.path.dirname(log_path), exist_ok=True)
    started = _time.monotonic()
    # The log is a stream the run process writes as it goes (read live, tailed on failure), so it is
    # opened here rather than written atomically through harness.core.files like the sweep's results.
    with open(log_path, "w") as log:
        proc = (launch or subprocess.Popen)(
            argv,
            cwd=cwd,
            env={**_os.environ, **env_updates},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: a signal reaches the run once, from the sweep, not also from the
            # terminal's process group (the runner saves on the first signal).
            start_new_session=True,
        )
        if proc is None:
            log.close()
            _os.unlink(log_path)
            outcome["error"] = _NOT_STARTED
            return outcome
        outcome["started"] = True
        try:
            # Waiting in short slices: Ray cancels a running task by raising KeyboardInterrupt in
            # it, which Python delivers between bytecodes, never inside one long blocking wait.
            while True:
                try:
                    code = proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:
            # Stop the run so that it saves what it has, and report how it ended. SIGTERM, not
            # SIGINT: Ray's workers ignore SIGINT, and an ignored signal stays ignored in the
            # processes they start.
            proc.send_signal(_signal.SIGTERM)
            code = proc.wait()
    outcome["exit_code"] = code
    outcome["seconds"] = round(_time.monotonic() - started, 3)
    try:
        with open(log_path) as log:
            text = log.read()
    except OSError as err:
        outcome["error"] = f"log {log_path} can't be read: {err}"
        return outcome
    outcome["log_tail"] = text.splitlines()[-LOG_TAIL_LINES:]
    match = _RUN_DIR_LINE.search(text)
    if match:
        run_dir = match.group(3).strip()
        outcome["run_dir"] = run_dir
        try:
            with open(_os.path.join(run_dir, "summary.json")) as handle:
                outcome["summary"] = _json.load(handle)
        except (OSError, ValueError):
            pass
    return outcome


# ---------------------------------------------------------------------------------------------
# Outcomes


@dataclass
class RunResult:
    spec: RunSpec
    log: Path
    outcome: dict[str, Any] | None = None  # from execute_run; None: never started

    @property
    def summary(self) -> dict[str, Any] | None:
        return (self.outcome or {}).get("summary")

    @property
    def run_dir(self) -> Path | None:
        run_dir = (self.outcome or {}).get("run_dir")
        return Path(run_dir) if run_dir else None

    @property
    def ok(self) -> bool:
        summary = self.summary
        # exit_code None: a Ray task that returned nothing (cancelled as the run finished); the
        # complete summary.json, written last, is then what says the run finished.
        return (
            self.outcome is not None
            and self.outcome.get("exit_code") in (0, None)
            and summary is not None
            and not summary.get("interrupted")
            and summary.get("eval") is not None
        )

    def _ok_summary(self) -> dict[str, Any]:
        """The summary of an `ok` run (`ok` checks that there is one)."""
        summary = self.summary
        assert summary is not None
        return summary

    @property
    def score(self) -> float | None:
        return float(self._ok_summary()["eval"]["score"]) if self.ok else None

    @property
    def score_name(self) -> str | None:
        return str(self._ok_summary()["eval"].get("score_name", "score")) if self.ok else None

    @property
    def steps_per_second(self) -> float | None:
        return float(self._ok_summary()["steps_per_second"]) if self.ok else None

    def reason(self) -> str:
        """Why the run failed, in a few words ('' if it did not)."""
        if self.ok:
            return ""
        outcome = self.outcome
        if outcome is None or not outcome.get("started"):
            return (outcome or {}).get("error") or _NOT_STARTED
        if self.summary and self.summary.get("interrupted"):
            return f"interrupted by {self.summary.get('signal') or 'a signal'} (partial run saved)"
        if outcome.get("error") and outcome.get("exit_code") is None:
            return str(outcome["error"])
        code = outcome.get("exit_code")
        if code is not None and code < 0:
            return f"killed by {signal_name(-code)}"
        if code == 0:
            return "exited 0 but wrote no complete summary.json"
        error_lines = [line for line in outcome.get("log_tail", []) if line.startswith("error:")]
        return f"exit {code}" + (f": {error_lines[-1][len('error:') :].strip()}" if error_lines else "")

    def to_json(self) -> dict[str, Any]:
        outcome = self.outcome or {}
        return {
            "experiment": self.spec.name,
            "seed": self.spec.seed,
            "status": "ok" if self.ok else ("failed" if outcome.get("started") else "not started"),
            "reason": self.reason() or None,
            "exit_code": outcome.get("exit_code"),
            "seconds": outcome.get("seconds"),
            "host": outcome.get("host"),
            "run_dir": outcome.get("run_dir"),
            "log": str(self.log),
            "score": self.score,
            "score_name": self.score_name,
            "steps_per_second": self.steps_per_second,
        }


def results_table(names: Sequence[str], results: Sequence[RunResult]) -> str:
    """Per experiment: runs finished / planned, the score as mean ± sample sd and as IQM with its
    95% interval over the finished runs (harness.report.stats), steps/s, and each failed seed with
    its reason; then what the statistics are, and which experiments have fewer than 3 finished runs."""
    rows = [("experiment", "ok/runs", "score", "score IQM [95% CI]", "steps/s", "not finished")]
    finished: dict[str, int] = {}
    for name in names:
        mine = [r for r in results if r.spec.name == name]
        good = [r for r in mine if r.ok]
        finished[name] = len(good)
        score_names = sorted({cast(str, r.score_name) for r in good})  # an ok run has a score name
        score = mean_sd_text([r.score for r in good])
        if score_names and score != "–":
            score = f"{score} ({'/'.join(score_names)})"
        failed = "; ".join(f"seed {r.spec.seed}: {r.reason()}" for r in mine if not r.ok) or "–"
        rows.append(
            (
                name,
                f"{len(good)}/{len(mine)}",
                score,
                iqm_text([r.score for r in good]),
                mean_sd_text([r.steps_per_second for r in good]),
                failed,
            )
        )
    notes = [method_note(), few_seeds_note({name: n for name, n in finished.items() if n})]
    return aligned(rows, ragged_last=True) + "\n\n" + "\n".join(note for note in notes if note) + "\n"


# ---------------------------------------------------------------------------------------------
# The sweep


class Reporter:
    """Progress lines (one per run start and finish) from any thread, and the sweep's record."""

    def __init__(
        self, plan: SweepPlan, sweep_dir: Path, results: list[RunResult], settings: dict[str, Any], stream: Any = None
    ) -> None:
        self.plan = plan
        self.sweep_dir = sweep_dir
        self.results = results
        self.settings = settings
        self.stream = stream or sys.stdout
        self.finished = 0
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def started(self, result: RunResult) -> None:
        self.say(f"start  {result.spec.label}  (log {short_path(result.log)})")

    def done(self, result: RunResult, outcome: dict[str, Any] | None) -> None:
        result.outcome = outcome
        with self._lock:
            self.finished += 1
            count = f"[{self.finished}/{len(self.plan.specs)}]"
        seconds = (outcome or {}).get("seconds") or 0.0
        host = (outcome or {}).get("host")
        where = f" on {host}" if host and self.plan.backend == "ray" else ""
        if result.ok:
            self.say(
                f"done   {result.spec.label}  {result.score_name} {result.score:.3f}  "
                f"{result.steps_per_second:,.0f} steps/s  {seconds:.1f} s{where}  {count}"
            )
        elif outcome is None or (not outcome.get("started") and result.reason() == _NOT_STARTED):
            self.say(f"skip   {result.spec.label}: {result.reason()}  {count}")
        elif result.summary and result.summary.get("interrupted"):
            self.say(f"stop   {result.spec.label}: {result.reason()} after {seconds:.1f} s{where}  {count}")
        else:
            tail = "\n".join(f"    | {line}" for line in outcome.get("log_tail", []))
            self.say(
                f"FAILED {result.spec.label}: {result.reason()} after {seconds:.1f} s{where}  {count}\n"
                f"    log {result.log}, last lines:\n{tail}"
            )
        self.save()

    def save(self) -> None:
        """sweep.json: the settings and every run's outcome so far (rewritten as runs finish)."""
        with self._lock:
            files.write_json(
                self.sweep_dir / "sweep.json",
                {
                    **self.settings,
                    "runs": [r.to_json() for r in self.results],
                },
            )


def short_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class LocalLauncher:
    """Starts run processes here (subprocess.Popen's stand-in for `execute_run`) and passes every
    signal `stop` catches on to the ones still running, which save what they have. Once stopped it
    starts nothing: under its lock a run either starts before the stop (and is told) or not at all."""

    def __init__(self, stop: SignalCatcher) -> None:
        self.stop = stop
        self._lock = threading.Lock()
        self._running: set[Any] = set()
        stop.on_signal(self._forward)

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        import subprocess

        with self._lock:
            if self.stop.stopped:
                return None
            self._running = {proc for proc in self._running if proc.poll() is None}
            proc = subprocess.Popen(*args, **kwargs)
            self._running.add(proc)
            return proc

    def _forward(self, signum: int) -> None:
        with self._lock:
            for proc in self._running:
                if proc.poll() is None:
                    proc.send_signal(signum)


def _run_local(
    plan: SweepPlan,
    results: list[RunResult],
    reporter: Reporter,
    workers: int,
    env_updates: dict[str, str],
    stop: SignalCatcher,
) -> None:
    """A pool of `workers` threads, each starting one run process and waiting for it.

    Threads rather than a process pool: each run must be a fresh process anyway (a pool's worker
    would carry one run's TensorFlow graph into the next), and a thread blocked on `wait()` costs
    nothing; Popen gives the exit code, the log redirection and a handle to pass signals on.
    """
    launcher = LocalLauncher(stop)

    def one(result: RunResult) -> dict[str, Any]:
        if stop.stopped:
            return {"started": False, "error": _NOT_STARTED}

        def launch_and_report(*args: Any, **kwargs: Any) -> Any:
            proc = launcher.launch(*args, **kwargs)
            if proc is not None:
                reporter.started(result)
            return proc

        return execute_run(
            result.spec.argv(sys.executable, plan.runs_dir),
            os.getcwd(),
            env_updates,
            str(result.log),
            launch=launch_and_report,
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
        futures = {pool.submit(one, result): result for result in results}
        pending = set(futures)
        while pending:
            # A timeout, so that the main thread runs signal handlers promptly.
            done, pending = concurrent.futures.wait(
                pending, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                try:
                    outcome = future.result()
                except Exception as err:  # e.g. the log can't be created or the process can't start
                    outcome = {"started": False, "error": f"could not start: {type(err).__name__}: {err}"}
                reporter.done(futures[future], outcome)


def _ray_token_available() -> bool:
    """Whether Ray would find an authentication token here (where Ray itself looks for one)."""
    return bool(
        os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or (Path.home() / ".ray" / "auth_token").is_file()
    )


def _start_ray(address: str | None, cores: int) -> Any:
    # Both are read when Ray is imported or initialised. No usage statistics leave this machine.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address and "RAY_AUTH_MODE" not in os.environ and _ray_token_available():
        # `ray start` (Ray >= 2.59) turns token authentication on by default, but a driver joining
        # with ray.init(address=...) sends its token only in token mode; a cluster without
        # authentication accepts a token too (checked with Ray 2.60), so send it when there is one.
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
        import ray.exceptions  # ray.exceptions is used below; importing ray alone does not load it
    except ImportError:
        raise UserError(
            f"BACKEND=ray needs Ray, which is not installed; {_INSTALL_RAY}, "
            "or use `make sweep BACKEND=ray`, which installs it"
        ) from None
    import logging

    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # "local": a new Ray on this machine even if another one runs here; the object store
            # holds nothing but the runs' small outcome dicts, so it is kept at Ray's minimum.
            ray.init(
                address="local", num_cpus=cores, include_dashboard=False, object_store_memory=80 * 1024 * 1024, **quiet
            )
    except ConnectionError as err:
        raise UserError(
            f"RAY_ADDRESS={address!r}: can't connect to a Ray cluster there ({err}); expected "
            "the address `ray start --head` printed, e.g. 10.0.0.5:6379"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """A wrong RAY_ADDRESS is a one-line error within seconds (Ray itself retries for minutes)."""
    import socket

    expected = (
        "expected the address `ray start --head` printed, e.g. 10.0.0.5:6379, or no RAY_ADDRESS "
        "for a Ray on this machine"
    )
    target = address.removeprefix("ray://")
    if target == "auto":  # Ray looks for a cluster started on this machine; it says if there is none
        return
    host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit():
        raise UserError(f"RAY_ADDRESS={address!r} is not host:port; {expected}")
    try:
        socket.create_connection((host.strip("[]"), int(port_text)), timeout=5).close()
    except OSError as err:
        raise UserError(f"RAY_ADDRESS={address!r}: nothing answers there ({err.strerror or err}); {expected}") from None


def _run_ray(
    ray: Any,
    plan: SweepPlan,
    results: list[RunResult],
    reporter: Reporter,
    workers: int,
    threads: int,
    env_updates: dict[str, str],
    stop: SignalCatcher,
) -> None:
    """Each run a Ray task of `threads` CPUs; at most `workers` in flight; a run is reported as
    started when its log appears (the task opens it first), finished when its task returns."""
    # execute_run needs only the standard library; pickled by value, a Ray worker can run it
    # without importing this package.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    remote = ray.remote(num_cpus=threads, max_retries=0)(execute_run)
    queue = collections.deque(results)
    in_flight: dict[Any, RunResult] = {}
    announced: set[int] = set()
    cancelled = False
    while queue or in_flight:
        while queue and len(in_flight) < workers and not stop.stopped:
            result = queue.popleft()
            ref = remote.remote(
                result.spec.argv(sys.executable, plan.runs_dir), os.getcwd(), env_updates, str(result.log)
            )
            in_flight[ref] = result
        if stop.stopped:
            while queue:
                reporter.done(queue.popleft(), None)
            if not cancelled:
                # A running task gets KeyboardInterrupt and passes SIGTERM to its run, which saves.
                for ref in in_flight:
                    ray.cancel(ref)
                cancelled = True
        if not in_flight:
            break
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_SECONDS)
        for result in in_flight.values():
            if id(result) not in announced and result.log.exists():
                announced.add(id(result))
                reporter.started(result)
        for ref in ready:
            result = in_flight.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                outcome = _outcome_from_files(
                    result, started=id(result) in announced, error="cancelled by the sweep's stop"
                )
            except ray.exceptions.RayError as err:
                message = " ".join(str(err).split())[:300]
                outcome = _outcome_from_files(result, started=True, error=f"Ray task failed: {message}")
            if id(result) not in announced and outcome.get("started"):
                announced.add(id(result))
                reporter.started(result)
            reporter.done(result, outcome)


def _outcome_from_files(result: RunResult, started: bool, error: str) -> dict[str, Any]:
    """What the driver can still learn about a run whose task returned nothing (cancelled, lost)."""
    outcome: dict[str, Any] = {
        "started": started,
        "exit_code": None,
        "seconds": 0.0,
        "error": error,
        "run_dir": None,
        "summary": None,
        "log_tail": [error],
        "host": None,
    }
    try:
        text = result.log.read_text()
    except OSError:
        return outcome
    outcome["log_tail"] = text.splitlines()[-LOG_TAIL_LINES:] + [error]
    match = _RUN_DIR_LINE.search(text)
    if match:
        outcome["run_dir"] = match.group(3).strip()
        with contextlib.suppress(OSError, ValueError):  # no summary: the run did not finish
            outcome["summary"] = json.loads((Path(outcome["run_dir"]) / "summary.json").read_text())
    return outcome


def write_reports(
    plan: SweepPlan, results: Sequence[RunResult], sweep_dir: Path, title: str, stream: Any = None
) -> dict[str, Path]:
    """table.md, table.csv and comparison.png (harness.report.plots) over the runs that finished."""
    stream = stream or sys.stdout
    groups = {name: [r.run_dir for r in results if r.spec.name == name and r.ok and r.run_dir] for name in plan.names}
    groups = {name: dirs for name, dirs in groups.items() if dirs}
    if not groups:
        print("no run finished: no table or plot written", file=stream, flush=True)
        return {}
    from harness.report import plots, tables

    written: dict[str, Path] = {}
    try:
        tables.write_table(groups, sweep_dir / "table.md", sweep_dir / "table.csv")
        written["table"] = sweep_dir / "table.md"
        written["plot"] = plots.plot_runs(groups, sweep_dir / "comparison.png", title=title)
    except (UserError, OSError) as err:
        # The runs are saved whatever happens here; say what could not be drawn and go on.
        print(f"warning: table/plot not written: {err}", file=stream, flush=True)
    return written


def _seeds_text(seeds: Sequence[int]) -> str:
    if len(seeds) > 1 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ",".join(map(str, seeds))


def _budget(plan: SweepPlan, ray: Any, address: str | None, runs: int) -> tuple[int, int]:
    """(runs at once, TensorFlow threads per run)."""
    cores = machine_cores()
    if ray is not None and address:
        # On a cluster the budget is the cluster's CPUs; one run never asks for more than the
        # largest node has, or Ray could never place it.
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        node_cpus = [int(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
        workers = min(plan.workers or cluster_cpus, runs)
        return workers, min(threads_per_run(cluster_cpus, workers), max(node_cpus or [1]))
    workers = min(plan.workers or cores, runs)
    return workers, threads_per_run(cores, workers)


def _announce_stop(signum: int) -> None:
    print(
        f"\nsweep: {signal_name(signum)} received; starting no more runs, letting the running ones save and stop",
        file=sys.stderr,
        flush=True,
    )


@dataclass
class Execution:
    """What `execute` did: every run's result, the folder of its logs, the wall time, the signal."""

    results: list[RunResult]
    sweep_dir: Path
    seconds: float
    signal_number: int | None


def execute(
    plan: SweepPlan, sweep_dir: Path | None = None, stream: Any = None, command: list[str] | None = None
) -> Execution:
    """Run every run of `plan` (k at a time, here or on Ray) with its log and sweep.json in
    `sweep_dir` (default: a new `<RUNS>/sweeps/<stamp>/`); the executor of both `sweep` and
    `compare`. A signal stops new runs and is passed to the running ones."""
    stream = stream or sys.stdout
    address = (os.environ.get("RAY_ADDRESS") or None) if plan.backend == "ray" else None
    ray = _start_ray(address, machine_cores()) if plan.backend == "ray" else None
    try:
        sweep_dir = sweep_dir or new_sweep_dir(plan.runs_dir)
        results = [RunResult(spec, sweep_dir / spec.log_name) for spec in plan.specs]
        workers, threads = _budget(plan, ray, address, len(results))
        env_updates = run_environment(threads)
        if os.environ.get(EXPERIMENTS_ENV):  # the user's experiment folders, for runs on Ray nodes too
            env_updates[EXPERIMENTS_ENV] = os.environ[EXPERIMENTS_ENV]
        where = {"local": "local processes", "ray": f"Ray at {address}" if address else "Ray on this machine"}
        settings: dict[str, Any] = {
            "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": command or sys.argv,
            "experiments": list(plan.names),
            "seeds": list(plan.seeds),
            "steps": plan.specs[0].steps if plan.specs else None,
            "overrides": list(plan.specs[0].overrides) if plan.specs else [],
            "backend": plan.backend,
            "ray_address": address,
            "workers": workers,
            "threads_per_run": threads,
            "runs_dir": str(plan.runs_dir),
        }
        reporter = Reporter(plan, sweep_dir, results, settings, stream)
        reporter.save()
        reporter.say(
            f"sweep: {len(results)} runs ({', '.join(plan.names)} × {_seeds_text(plan.seeds)}), "
            f"{workers} at a time, {threads} TensorFlow thread{'s' if threads > 1 else ''} each, "
            f"on {where[plan.backend]}; logs in {short_path(sweep_dir)}"
        )
        started = time.monotonic()
        with SignalCatcher() as stop:
            stop.on_signal(lambda signum: _announce_stop(signum) if signum == stop.signal_number else None)
            if ray is None:
                _run_local(plan, results, reporter, workers, env_updates, stop)
            else:
                _run_ray(ray, plan, results, reporter, workers, threads, env_updates, stop)
        elapsed = time.monotonic() - started
        # The runs' wall time, first start to last finish (tables and the plot come after).
        settings["runs_wall_seconds"] = round(elapsed, 3)
        reporter.save()
    finally:
        if ray is not None:
            ray.shutdown()
    return Execution(results, sweep_dir, elapsed, stop.signal_number)


def run_sweep(plan: SweepPlan, stream: Any = None) -> int:
    """Run every run of `plan`; print progress and the table; return the exit status
    (0: all finished, 1: some failed, 128 + signal: stopped by a signal)."""
    stream = stream or sys.stdout
    done = execute(plan, stream=stream)
    results, sweep_dir = done.results, done.sweep_dir
    table = results_table(plan.names, results)
    failed = [r for r in results if not r.ok]
    steps = f", {plan.specs[0].steps:,} steps" if plan.specs[0].steps else ""
    title = f"{' vs '.join(plan.names)} ({_seeds_text(plan.seeds)}{steps})"
    header = (
        f"sweep {sweep_dir.name}: {len(results) - len(failed)}/{len(results)} runs finished in {done.seconds:.1f} s\n"
    )
    files.write_text(sweep_dir / "summary.txt", header + "\n" + table)
    print("\n" + header + "\n" + table, file=stream, end="", flush=True)
    written = write_reports(plan, results, sweep_dir, title, stream)
    for what, path in written.items():
        print(f"{what}: {short_path(path)}", file=stream, flush=True)
    print(f"record: {short_path(sweep_dir / 'sweep.json')}", file=stream, flush=True)
    if done.signal_number is not None:
        return 128 + done.signal_number
    if failed:
        print(f"error: {len(failed)} of {len(results)} runs failed (listed above)", file=sys.stderr, flush=True)
        return 1
    return 0


def command(args: argparse.Namespace) -> int:
    """`python -m harness sweep ...` (see harness/cli.py for the arguments)."""
    plan = plan_sweep(
        args.names,
        parse_seeds(args.seeds),
        steps=args.steps,
        overrides=args.overrides,
        runs_dir=args.runs_dir,
        backend=args.backend,
        workers=args.workers,
    )
    return run_sweep(plan)
