"""Sweeps: many (experiment, seed) runs at once on both backends, one of them failing on purpose.

The end-to-end tests run the real command with tiny budgets. The run that fails is a real run
process killed with SIGKILL after it has created its run directory (the way a run dies when the
kernel's OOM killer or a lost node ends it): the sweep must report it with its log, let the others
finish, still write the table and the plot, and exit non-zero.
"""

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.core.errors import UserError
from harness.launch import sweep
from tests.helpers import ROOT, TINY, cli, make_dry_run

TINY_ARGS = ["--steps", str(TINY["nb_steps"])] + [
    arg
    for key in ("nb_steps_warmup", "memory_limit", "eval_episodes", "checkpoint_interval", "eps_anneal_steps")
    for arg in ("--set", f"{key}={TINY[key]}")
]


# ---------------------------------------------------------------------------------------------
# Planning (no TensorFlow)


def test_seeds_are_a_count_or_a_list():
    assert sweep.parse_seeds("5") == (0, 1, 2, 3, 4)
    assert sweep.parse_seeds("3,4, 7") == (3, 4, 7)
    for bad in ("0", "-2", "x", "1.5", ",", "3,3"):
        with pytest.raises(UserError, match="SEEDS="):
            sweep.parse_seeds(bad)


def test_threads_split_the_cores():
    assert sweep.threads_per_run(cores=8, workers=2) == 4
    assert sweep.threads_per_run(cores=2, workers=2) == 1
    assert sweep.threads_per_run(cores=2, workers=5) == 1  # never 0
    env = sweep.run_environment(3)
    assert env["DQN_HARNESS_THREADS"] == env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "3"


def test_plan_is_every_name_times_every_seed(tmp_path):
    plan = sweep.plan_sweep(
        ["catch_dense", "catch_graves"], (0, 1, 2), steps=50, overrides=["gamma=0.9"], runs_dir=tmp_path / "r"
    )
    assert [(s.name, s.seed) for s in plan.specs] == [
        ("catch_dense", 0),
        ("catch_dense", 1),
        ("catch_dense", 2),
        ("catch_graves", 0),
        ("catch_graves", 1),
        ("catch_graves", 2),
    ]
    argv = plan.specs[4].argv("py", plan.runs_dir)
    assert argv == [
        "py",
        "-m",
        "harness",
        "run",
        "catch_graves",
        "--seed",
        "1",
        "--steps",
        "50",
        "--set",
        "gamma=0.9",
        "--runs-dir",
        str((tmp_path / "r").resolve()),
    ]


@pytest.mark.parametrize(
    "args, fragment",
    [
        ([], "no experiments given"),
        (["catch_dens"], "did you mean catch_dense?"),
        (["catch_dense", "catch_dense"], "NAMES lists 'catch_dense' twice"),
        (["catch_dense", "--set", "gamma=2"], "gamma=2"),
        (["catch_dense", "--seeds", "0"], "SEEDS='0'"),
        (["catch_dense", "--workers", "0"], "WORKERS='0'"),
        (["catch_dense", "--backend", "slurm"], "BACKEND='slurm'"),
    ],
)
def test_mistakes_are_one_line_errors_before_any_run(tmp_path, args, fragment):
    result = cli("sweep", *args, "--runs-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        line for line in result.stderr.splitlines() if line.strip()
    ], result.stderr
    assert fragment in result.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written for a rejected sweep"


def test_make_sweep_passes_every_option():
    command = make_dry_run(
        "sweep",
        "NAMES=a b",
        "SEEDS=2",
        "STEPS=10",
        "WORKERS=3",
        "BACKEND=local",
        "SET=gamma=0.9 eval_episodes=2",
        "RUNS=/somewhere",
    )
    assert (
        '-m harness sweep a b --seeds "2" --steps "10" --workers "3" --backend "local" '
        "--set 'gamma=0.9' --set 'eval_episodes=2' --runs-dir \"/somewhere\""
    ) in command


def test_results_table_mean_sd_and_failures(tmp_path):
    def result(seed, code, score=None, sps=None):
        spec = sweep.RunSpec("catch_dense", seed, None, ())
        summary = (
            None
            if score is None
            else {"interrupted": False, "steps_per_second": sps, "eval": {"score": score, "score_name": "catch_rate"}}
        )
        return sweep.RunResult(
            spec,
            tmp_path / spec.log_name,
            {"started": True, "exit_code": code, "summary": summary, "log_tail": ["error: boom"]},
        )

    results = [result(0, 0, 0.5, 100.0), result(1, 0, 0.7, 300.0), result(2, -9), result(3, 2)]
    table = sweep.results_table(["catch_dense"], results)
    header, row = table.splitlines()[0], table.splitlines()[2]
    sd = math.sqrt(((0.5 - 0.6) ** 2 + (0.7 - 0.6) ** 2) / 1)
    assert "2/4" in row and f"0.600 ± {sd:.3f} (catch_rate)" in row and "200 ± 141" in row
    assert "seed 2: killed by SIGKILL" in row and "seed 3: exit 2: boom" in row
    # Two runs: the IQM is their mean, and every resample of two values lies between them.
    assert "score IQM [95% CI]" in header and "0.600 [0.500, 0.700]" in row
    assert "stratified-bootstrap" in table and "Fewer than 3 seeds: catch_dense (2)" in table


def test_results_table_iqm_of_five_runs(tmp_path):
    def result(seed, score):
        spec = sweep.RunSpec("catch_dense", seed, None, ())
        summary = {"interrupted": False, "steps_per_second": 100.0, "eval": {"score": score, "score_name": "s"}}
        return sweep.RunResult(spec, tmp_path / spec.log_name, {"started": True, "exit_code": 0, "summary": summary})

    table = sweep.results_table(["catch_dense"], [result(s, v) for s, v in enumerate((0.0, 0.2, 0.4, 0.6, 5.0))])
    row = table.splitlines()[2]
    # IQM of 5: one cut at each end, the mean of 0.2, 0.4 and 0.6; the outlier moves the mean only.
    assert "1.240 ± 2.114 (s)" in row and "0.400 [" in row
    assert "Fewer than 3 seeds" not in table


# ---------------------------------------------------------------------------------------------
# Threads


def test_thread_setting_reaches_the_graph_mode_session():
    """DQN_HARNESS_THREADS sizes the pools of the tf.compat.v1 Session that keras-rl trains in."""
    code = (
        "import harness.kerasrl.compat; from tf_keras.src import backend as b; "
        "c = b.get_session()._config; print(c.intra_op_parallelism_threads, c.inter_op_parallelism_threads)"
    )
    env = {**os.environ, "DQN_HARNESS_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1"]


def test_bad_thread_setting_is_a_user_error():
    # Checked before TensorFlow is imported, so this process fails fast.
    env = {**os.environ, "DQN_HARNESS_THREADS": "two"}
    result = subprocess.run(
        [sys.executable, "-c", "import harness.kerasrl.compat"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        "harness.core.errors.UserError: DQN_HARNESS_THREADS='two' is not allowed; expected a positive integer"
        in result.stderr
    )
    assert "tensorflow" not in result.stderr.lower()


# ---------------------------------------------------------------------------------------------
# End to end


def _kill_run_once_started(sweep_proc, runs_dir: Path, name: str, seed: int, timeout: float = 240) -> None:
    """SIGKILL the run process of (name, seed) once it has written its config.json."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert sweep_proc.poll() is None, "the sweep ended before the run could be killed"
        if list((runs_dir / name).glob(f"*-seed{seed}/config.json")):
            for proc in psutil.process_iter(["cmdline"]):
                cmd = proc.info["cmdline"] or []
                if (
                    cmd[-2:] == ["--runs-dir", str(runs_dir)]
                    and "run" in cmd
                    and name in cmd
                    and cmd[cmd.index("--seed") + 1] == str(seed)
                ):
                    proc.kill()
                    return
        time.sleep(0.05)
    raise AssertionError(f"run {name} seed {seed} never started")


def _sweep_with_one_killed(tmp_path: Path, seeds: int, extra: list[str], env: dict | None = None):
    runs_dir = (tmp_path / "runs").resolve()
    args = [
        sys.executable,
        "-m",
        "harness",
        "sweep",
        "catch_dense",
        "--seeds",
        str(seeds),
        *TINY_ARGS,
        "--runs-dir",
        str(runs_dir),
        *extra,
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _kill_run_once_started(proc, runs_dir, "catch_dense", 1)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err, runs_dir


def _check_sweep(returncode, out, err, runs_dir, seeds, workers):
    assert returncode == 1, out + err
    assert "Traceback" not in err
    assert f"error: 1 of {seeds} runs failed" in err
    assert "FAILED catch_dense seed 1: killed by SIGKILL" in out
    [sweep_dir] = list((runs_dir / "sweeps").iterdir())
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["workers"] == workers
    assert record["threads_per_run"] == max(1, sweep.machine_cores() // workers)
    runs = {r["seed"]: r for r in record["runs"]}
    assert runs[1]["status"] == "failed" and runs[1]["reason"] == "killed by SIGKILL"
    # The killed run left a partial run directory (config first, no summary).
    killed_dir = Path(runs[1]["run_dir"])
    assert (killed_dir / "config.json").is_file() and not (killed_dir / "summary.json").exists()
    good = [s for s in range(seeds) if s != 1]
    scores = []
    for seed in good:
        assert runs[seed]["status"] == "ok", runs[seed]
        summary = json.loads((Path(runs[seed]["run_dir"]) / "summary.json").read_text())
        assert summary["seed"] == seed and summary["steps"] == TINY["nb_steps"]
        assert runs[seed]["score"] == summary["eval"]["score"]
        assert runs[seed]["steps_per_second"] == summary["steps_per_second"]
        log = (sweep_dir / f"catch_dense-seed{seed}.log").read_text()
        assert f"saved {runs[seed]['run_dir']}" in log  # the run's own output, captured
        scores.append(summary["eval"]["score"])
    # The table: the finished runs' mean score, and the failure with its reason.
    mean = sum(scores) / len(scores)
    row = next(line for line in out.splitlines() if line.startswith("catch_dense  "))
    assert f"{len(good)}/{seeds}" in row and f"{mean:.3f}" in row and "seed 1: killed by SIGKILL" in row
    assert (sweep_dir / "summary.txt").read_text().count("seed 1: killed by SIGKILL") == 1
    csv_lines = (sweep_dir / "table.csv").read_text().splitlines()
    assert csv_lines[1].startswith(f"catch_dense,{len(good)},")
    assert (sweep_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return runs


def test_local_sweep_reports_a_killed_run_and_finishes_the_others(tmp_path):
    returncode, out, err, runs_dir = _sweep_with_one_killed(tmp_path, seeds=3, extra=["--workers", "2"])
    _check_sweep(returncode, out, err, runs_dir, seeds=3, workers=2)
    assert "on local processes" in out
    assert out.count("start  catch_dense seed") == 3


def test_ray_sweep_on_a_local_ray(tmp_path):
    pytest.importorskip("ray", reason="Ray is optional: `make ray-deps` installs it (.ci/run does)")
    env = {"RAY_ADDRESS": ""}  # no cluster: Ray starts on this machine
    returncode, out, err, runs_dir = _sweep_with_one_killed(tmp_path, seeds=2, extra=["--backend", "ray"], env=env)
    runs = _check_sweep(returncode, out, err, runs_dir, seeds=2, workers=min(2, sweep.machine_cores()))
    assert "on Ray on this machine" in out
    assert runs[0]["host"]


def test_unreachable_ray_address_is_a_quick_one_line_error(tmp_path):
    pytest.importorskip("ray", reason="Ray is optional: `make ray-deps` installs it (.ci/run does)")
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "sweep",
            "catch_dense",
            "--seeds",
            "1",
            "--backend",
            "ray",
            "--runs-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"error: RAY_ADDRESS='127.0.0.1:{port}': nothing answers there" in result.stderr
    assert time.monotonic() - started < 30  # Ray alone would retry for minutes
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_ray_sweep_joins_an_existing_cluster(tmp_path):
    """`ray start --head` as a user would (its workers start in another folder than the project),
    then a sweep with RAY_ADDRESS set: the runs are tasks on that cluster."""
    pytest.importorskip("ray", reason="Ray is optional: `make ray-deps` installs it (.ci/run does)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_cli = str(Path(sys.executable).parent / "ray")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # Ray's default auth
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false", "--block"],
        cwd=elsewhere,
        env={**env, "RAY_USAGE_STATS_ENABLED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(3)  # the raylet registers after the GCS answers
        runs_dir = (tmp_path / "runs").resolve()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "sweep",
                "catch_dense",
                "--seeds",
                "2",
                *TINY_ARGS,
                "--backend",
                "ray",
                "--runs-dir",
                str(runs_dir),
            ],
            cwd=ROOT,
            env={**env, "RAY_ADDRESS": f"127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        head.terminate()  # `ray start --block` stops the cluster's processes when it is stopped
        head.wait(timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"on Ray at 127.0.0.1:{port}" in result.stdout
    record = json.loads(next((runs_dir / "sweeps").glob("*/sweep.json")).read_text())
    assert record["ray_address"] == f"127.0.0.1:{port}" and record["workers"] == 2
    assert [r["status"] for r in record["runs"]] == ["ok", "ok"]
    for run in record["runs"]:
        assert json.loads((Path(run["run_dir"]) / "summary.json").read_text())["eval"]["score"] == run["score"]
