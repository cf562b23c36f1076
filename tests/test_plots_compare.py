"""catch_graves end to end, curves.png, `compare` (train missing, reuse finished) and `plot`.

Real tiny runs throughout: catch_graves in this process, catch_dense trained by `compare` itself in
a child process, then a second `compare` that must train nothing.
"""

import csv
import dataclasses
import io
import json
import math
import shutil

import numpy as np
import pytest

from harness.core.registry import load_experiment
from harness.core.registry import resolve_experiment as resolve
from harness.core.rundir import find_finished
from harness.launch.compare import compare
from harness.report import plots
from harness.run import runner
from harness.run.runner import run
from tests.helpers import TINY, cli, tiny
from tests.test_cli import assert_one_line_error

# The tiny budget as `--set` overrides, so `compare` resolves exactly what `tiny()` builds.
TINY_SET = [f"{key}={value}" for key, value in TINY.items() if key != "nb_steps"]
STEPS = TINY["nb_steps"]


def assert_valid_png(path):
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # not a blank canvas


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def graves_run(runs):
    exp = tiny(load_experiment("catch_graves"))
    return exp, run(exp, runs, command=["test"], log=io.StringIO())


@pytest.fixture(scope="module")
def compared(runs, graves_run, tmp_path_factory):
    """compare with catch_graves already finished: trains catch_dense only, then nothing."""
    out = tmp_path_factory.mktemp("out")
    log = io.StringIO()
    first = compare(
        ["catch_dense", "catch_graves"],
        seeds=1,
        steps=STEPS,
        runs_dir=runs,
        out=out / "first",
        overrides=TINY_SET,
        log=log,
    )
    stamps = {p: (p / "summary.json").stat().st_mtime_ns for p in first.trained + first.reused}
    second = compare(
        ["catch_dense", "catch_graves"],
        seeds=1,
        steps=STEPS,
        runs_dir=runs,
        out=out / "second",
        overrides=TINY_SET,
        log=log,
    )
    return first, second, stamps, log.getvalue()


def test_catch_graves_smoke_run(graves_run):
    exp, run_dir = graves_run
    assert exp.optimizer == "graves" and exp.name == "catch_graves"
    config = json.loads((run_dir / "config.json").read_text())["experiment"]
    assert config["optimizer"] == "graves" and config["learning_rate"] == exp.learning_rate
    # Everything but the optimizer is catch_dense's, so a comparison isolates the optimizer.
    dense = tiny(load_experiment("catch_dense")).to_dict()
    differ = sorted(k for k in config if config[k] != dense[k])
    assert differ == ["learning_rate", "name", "optimizer"] or differ == ["name", "optimizer"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["interrupted"] is False
    assert 0.0 <= summary["eval"]["score"] <= 1.0
    loss = np.array(json.loads((run_dir / "metrics.json").read_text())["loss"], dtype=float)
    assert np.isfinite(loss).any() and np.isnan(loss[0])  # trained after warm-up, not before


def test_finished_run_has_curves_png(graves_run):
    _, run_dir = graves_run
    assert_valid_png(run_dir / "curves.png")


def test_plot_failure_does_not_lose_the_run(tmp_path, monkeypatch):
    def broken(run_dir):
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(runner, "write_run_curves", broken)
    log = io.StringIO()
    run_dir = run(tiny(load_experiment("catch_dense"), nb_steps=150, eval_episodes=1), tmp_path, log=log)
    assert json.loads((run_dir / "summary.json").read_text())["interrupted"] is False
    assert not (run_dir / "curves.png").exists()
    assert "warning: curves.png not written (RuntimeError: no fonts today)" in log.getvalue()


def test_compare_trains_only_missing_runs(compared, graves_run):
    first, second, stamps, log = compared
    assert first.reused == [graves_run[1]]
    assert len(first.trained) == 1 and first.trained[0].parent.name == "catch_dense"
    assert "[1/2] catch_dense seed 0 (300 steps): to train" in log
    assert "done   catch_dense seed 0" in log  # trained through the sweep executor
    assert "[2/2] catch_graves seed 0 (300 steps): reusing" in log
    # The second call trains nothing and leaves the runs untouched.
    assert second.trained == [] and sorted(second.reused) == sorted(first.trained + first.reused)
    assert {p: (p / "summary.json").stat().st_mtime_ns for p in second.reused} == stamps


def test_compare_writes_png_and_tables(compared):
    first, _, _, _ = compared
    assert first.png.name == "compare.png"
    assert_valid_png(first.png)
    rows = list(csv.DictReader(first.csv.read_text().splitlines()))
    assert [r["experiment"] for r in rows] == ["catch_dense", "catch_graves"]
    for row in rows:
        (run_dir,) = first.groups[row["experiment"]]
        summary = json.loads((run_dir / "summary.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert row["runs"] == "1" and row["evaluated"] == "1" and row["score_name"] == "catch_rate"
        assert float(row["score_mean"]) == pytest.approx(summary["eval"]["score"])
        assert float(row["eval_return_mean"]) == pytest.approx(summary["eval"]["mean_return"])
        assert float(row["steps_per_second_mean"]) == pytest.approx(summary["steps_per_second"])
        assert row["score_std"] == ""  # one run: no spread
        # One run: its IQM is its score, and every resample of it is too.
        assert float(row["score_iqm"]) == float(row["score_iqm_low"]) == float(row["score_iqm_high"])
        assert float(row["score_iqm"]) == pytest.approx(summary["eval"]["score"])
        assert float(row["eval_return_iqm"]) == pytest.approx(summary["eval"]["mean_return"])
        tail = np.array(metrics["loss"], dtype=float)[-math.ceil(0.1 * len(metrics["loss"])) :]
        assert float(row["final_loss_mean"]) == pytest.approx(np.nanmean(tail))
    markdown = first.markdown.read_text()
    assert markdown.startswith("| experiment | runs | eval catch_rate | eval catch_rate IQM [95% CI] |")
    assert "stratified-bootstrap" in markdown
    assert "Fewer than 3 seeds: catch_dense (1), catch_graves (1)" in markdown
    assert "`catch_dense`" in markdown and "`catch_graves`" in markdown
    assert "deaths" not in markdown  # Catch names no crash cause: no column for it
    assert rows[0]["deaths"] == ""
    assert markdown == first.table


def test_the_table_sums_what_the_evaluation_episodes_died_of(graves_run, tmp_path):
    from harness.report import tables

    _, run_dir = graves_run
    copies = []
    for k, crashes in enumerate(({"block": 3, "floor": 1}, {"floor": 2, "block": 2, "ceiling": 1}, None)):
        copy = shutil.copytree(run_dir, tmp_path / f"run{k}")
        summary = json.loads((copy / "summary.json").read_text())
        if crashes is not None:
            summary["eval"]["crashes"] = crashes
        (copy / "summary.json").write_text(json.dumps(summary))
        copies.append(copy)
    rows = tables.summary_table({"counted": copies[:2], "partly": copies[1:]})
    assert rows[0]["deaths"] == {"block": 5, "floor": 3, "ceiling": 1} and rows[0]["deaths_runs"] == 2
    markdown = tables.format_markdown(rows)
    header, _, counted, partly = markdown.splitlines()[:4]
    assert "| eval deaths, all runs |" in header
    assert "| block 5, floor 3, ceiling 1 |" in counted
    assert "| floor 2, block 2, ceiling 1 (1 of 2 runs) |" in partly
    csv_rows = list(csv.DictReader(tables.format_csv(rows).splitlines()))
    assert [r["deaths"] for r in csv_rows] == [
        "block 5; floor 3; ceiling 1",
        "floor 2; block 2; ceiling 1 (1 of 2 runs)",
    ]


def test_the_per_run_table_gives_each_seed_against_the_scripted_players(graves_run, tmp_path):
    from harness.report import tables

    _, run_dir = graves_run
    copies = []
    for seed, score, crashes in ((4, 150.0, {"block": 3, "floor": 1}), (9, 300.0, None)):
        copy = shutil.copytree(run_dir, tmp_path / f"seed{seed}")
        config = json.loads((copy / "config.json").read_text())
        config["experiment"]["seed"] = seed
        (copy / "config.json").write_text(json.dumps(config))
        summary = json.loads((copy / "summary.json").read_text())
        summary["eval"].update(score=score, score_name="frames", crashes=crashes)
        summary["eval"]["baselines"] = {"random": {"score": 50.0}, "heuristic": {"score": 600.0}}
        summary.update(wall_seconds=90.0, steps_per_second=12.5)
        summary["validation"] = {"best_score": 320.5, "best_step": 25_000}
        (copy / "summary.json").write_text(json.dumps(summary))
        copies.append(copy)
    groups = {"cave_like": copies}
    assert [(r["seed"], r["score"], r["random"], r["reference"]) for r in tables.per_run_table(groups)] == [
        (4, 150.0, 50.0, 600.0),
        (9, 300.0, 50.0, 600.0),
    ]
    report = tables.format_report(groups, tables.summary_table(groups))
    per_run = report.split("Per run:")[1].strip().splitlines()
    assert per_run[0] == (
        "| experiment | seed | eval frames | × random | of the heuristic | best validation (step) | deaths "
        "| wall time | steps/s |"
    )
    assert per_run[2] == (
        "| `cave_like` | 4 | 150.0 | 3.0× | 25.0% | 320.5 (25,000) | block 3, floor 1 | 1.5 min | 12.5 |"
    )
    assert per_run[3] == "| `cave_like` | 9 | 300.0 | 6.0× | 50.0% | 320.5 (25,000) | – | 1.5 min | 12.5 |"


def test_only_finished_identical_runs_are_reused(runs, graves_run):
    exp, run_dir = graves_run
    wanted = resolve("catch_graves", 0, STEPS, TINY_SET)
    assert find_finished(runs, wanted)[0] == run_dir
    for changed, reason in (
        (dataclasses.replace(wanted, gamma=0.9), "other settings"),
        (dataclasses.replace(wanted, seed=1), "other seed"),
        (dataclasses.replace(wanted, nb_steps=400), "other steps"),
    ):
        found, reasons = find_finished(runs, changed)
        assert found is None and reasons[reason] >= 1
    # A run made before a setting existed is the same run at that setting's default only.
    config_path = run_dir / "config.json"
    original = config_path.read_text()
    config = json.loads(original)
    del config["experiment"]["n_step"]
    config_path.write_text(json.dumps(config))
    try:
        assert find_finished(runs, wanted)[0] == run_dir
        found, reasons = find_finished(runs, dataclasses.replace(wanted, n_step=3))
        assert found is None and reasons["other settings"] >= 1
    finally:
        config_path.write_text(original)
    # A newer copy marked interrupted is skipped in favour of the finished one.
    stopped = run_dir.parent / "99999999-999999-seed0"
    shutil.copytree(run_dir, stopped)
    summary = json.loads((stopped / "summary.json").read_text())
    (stopped / "summary.json").write_text(json.dumps({**summary, "interrupted": True}))
    try:
        found, reasons = find_finished(runs, wanted)
        assert found == run_dir and reasons == {"interrupted": 1}
    finally:
        shutil.rmtree(stopped)


def test_plot_command_groups_runs(compared, tmp_path):
    first, _, _, _ = compared
    dirs = [str(p) for paths in first.groups.values() for p in paths]
    out = tmp_path / "again.png"
    result = cli("plot", *dirs, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert_valid_png(out)
    assert "`catch_dense`" in result.stdout and "`catch_graves`" in result.stdout
    assert plots.group_runs(dirs) == {name: list(paths) for name, paths in first.groups.items()}


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["plot", "/no/such/run"], ["/no/such/run is not a run directory", "does not exist"]),
        (["plot", "tests"], ["tests is not a run directory and holds none"]),
        (["compare", "catch_grave"], ["unknown experiment 'catch_grave'", "did you mean catch_graves?"]),
        (["compare", "catch_dense", "catch_dense"], ["NAMES lists catch_dense more than once"]),
        (["compare", "catch_dense", "--seeds", "0"], ["SEEDS='0'", "positive integer"]),
        (["compare", "catch_dense", "--set", "gama=1"], ["unknown key 'gama'"]),
    ],
)
def test_bad_input_is_one_line(args, fragments):
    assert_one_line_error(cli(*args), *fragments)


def test_windowed_mean_and_group_stats_exact():
    x = np.array([10.0, 20.0, 30.0, 40.0])
    values = np.array([1.0, np.nan, 3.0, 5.0])
    grid = np.array([10.0, 30.0, 40.0, 60.0])
    # Windows of width 20 centred on each grid point: (0, 20], (20, 40], (30, 50], (50, 70].
    got = plots.windowed_mean(x, values, grid, 20.0, weights=np.array([1.0, 1.0, 3.0, 1.0]))
    np.testing.assert_allclose(got[:3], [1.0, (3 * 3 + 5) / 4, 5.0])
    assert np.isnan(got[3])
    mean, std, count = plots.group_stats([np.array([1.0, 2.0, np.nan]), np.array([3.0, np.nan, np.nan])])
    np.testing.assert_allclose(mean[:2], [2.0, 2.0])
    assert std[0] == pytest.approx(math.sqrt(2.0)) and np.isnan(std[1]) and np.isnan(mean[2])
    assert count.tolist() == [2, 1, 0]


def test_sigterm_stops_compare_and_keeps_the_run(tmp_path):
    """SIGTERM to `compare` reaches its training child once: the child saves an interrupted run,
    compare exits 143, and that run is never reused as finished."""
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers import ROOT

    command = [
        sys.executable,
        "-m",
        "harness",
        "compare",
        "catch_dense",
        "--seeds",
        "1",
        "--steps",
        "200000",
        "--runs-dir",
        str(tmp_path),
    ] + [a for kv in TINY_SET for a in ("--set", kv)]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    import time

    try:
        for line in proc.stdout:
            if line.startswith("start  catch_dense seed 0"):  # the sweep executor started the run
                break
        log = next((tmp_path / "compare").glob("*/logs/catch_dense-seed0.log"))
        deadline = time.monotonic() + 120
        while "training for" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)  # until the run is inside keras-rl's fit
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "interrupted: stopped while training catch_dense seed 0" in err and "Traceback" not in err
    (run_dir,) = (tmp_path / "catch_dense").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["signal"] == "SIGTERM" and summary["steps"] < 200000
    wanted = resolve("catch_dense", 0, 200000, TINY_SET)
    assert find_finished(tmp_path, wanted) == (None, {"interrupted": 1})
