"""The classic-control experiments, the IQM statistics and `python -m harness benchmark`.

Real runs with tiny budgets: `benchmark` trains cartpole_dqn and mountaincar_dqn end to end (its
own run processes, in parallel), this process runs acrobot_dqn and lunarlander_dqn; every one of
the four must finish, evaluate and film its demo.gif. Episodes are capped at 30 steps
(`env_kwargs={"max_episode_steps": 30}`, gymnasium.make's own option) to keep the untrained
agents' evaluation and GIFs short. The statistics are checked against rliable itself and against
values worked out by hand.
"""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

from harness.core.registry import load_experiment
from harness.launch.benchmark import SUITE
from harness.report import references, stats
from tests.helpers import cli, tiny
from tests.test_cli import assert_one_line_error

GAMES = {
    "cartpole_dqn": ("CartPole-v1", (600, 400), 4, 2),
    "acrobot_dqn": ("Acrobot-v1", (500, 500), 6, 3),
    "mountaincar_dqn": ("MountainCar-v0", (600, 400), 2, 3),
    "lunarlander_dqn": ("LunarLander-v3", (600, 400), 8, 4),
}
# The tiny budget, as `--set` overrides for the benchmark command and as fields for tiny().
SMALL = {
    "nb_steps_warmup": 150,
    "memory_limit": 1_000,
    "eval_episodes": 1,
    "validation_interval": 150,
    "validation_episodes": 1,
    "checkpoint_interval": 150,
    "eps_anneal_steps": 200,
    "env_kwargs": {"max_episode_steps": 30},
}
STEPS = 300
SMALL_SET = [f"{k}={json.dumps(v, separators=(',', ':')) if isinstance(v, dict) else v}" for k, v in SMALL.items()]


def assert_valid_png(path):
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # not a blank canvas


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory):
    """`python -m harness benchmark` on two games, 1 seed each, 2 runs at once."""
    base = tmp_path_factory.mktemp("benchmark")
    args = ["benchmark", "CartPole-v1", "mountaincar_dqn", "--seeds", "1", "--steps", str(STEPS), "--workers", "2"]
    args += [arg for assignment in SMALL_SET for arg in ("--set", assignment)]
    args += ["--runs-dir", str(base / "runs"), "--out", str(base / "out")]
    first = cli(*args, timeout=240)
    second = cli(*args, timeout=120)  # everything is there: reuses both runs, trains nothing
    return base, first, second


@pytest.fixture(scope="module")
def in_process_runs(tmp_path_factory):
    from harness.run.runner import run

    runs = tmp_path_factory.mktemp("runs")
    out = {}
    for name in ("acrobot_dqn", "lunarlander_dqn"):
        exp = tiny(load_experiment(name), **SMALL)
        out[name] = run(exp, runs, command=["test"], log=io.StringIO())
    return out


def _run_dir(name, benchmarked, in_process_runs):
    if name in in_process_runs:
        return in_process_runs[name]
    base, _, _ = benchmarked
    (run_dir,) = sorted((base / "runs" / name).iterdir())
    return run_dir


# ---------------------------------------------------------------------------------------------
# The experiments


def _docstring_settings(doc: str) -> dict[str, object]:
    """`field=value` pairs in the right-hand column of an experiment docstring's translation table."""
    settings: dict[str, object] = {}
    for line in doc.splitlines():
        if not line.startswith("    ") or line.strip().startswith("zoo"):
            continue
        for key, text in re.findall(r"\b([a-z_]+)=(\"\w+\"|[-+\w.]+)", line):
            if text.startswith('"'):
                value: object = text.strip('"')
            elif text in ("True", "False"):
                value = text == "True"
            elif re.fullmatch(r"-?[\d_]+", text):
                value = int(text.replace("_", ""))
            else:
                value = float(text)
            settings[key] = value
    return settings


@pytest.mark.parametrize("name", SUITE)
def test_docstring_table_is_the_experiments_settings(name):
    """Each module's translation table names the values its Experiment has (and says where they came from)."""
    import importlib

    module = importlib.import_module(f"experiments.{name}")
    exp = load_experiment(name)
    documented = _docstring_settings(module.__doc__)
    assert len(documented) >= 15, documented
    assert {key: getattr(exp, key) for key in documented} == documented
    assert exp.env_id == GAMES[name][0] and exp.network_kwargs["hidden"] == [256, 256]
    assert "hyperparams/dqn.yml" in module.__doc__ and "Not translated:" in module.__doc__
    assert exp.validation_interval > 0 and exp.nb_steps // exp.validation_interval == 10


@pytest.mark.parametrize("name", SUITE)
def test_smoke_run_evaluates_and_films_each_game(name, benchmarked, in_process_runs):
    from PIL import Image

    env_id, size, observation, actions = GAMES[name]
    run_dir = _run_dir(name, benchmarked, in_process_runs)
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())["experiment"]
    assert config["env_id"] == env_id and summary["steps"] == STEPS and summary["interrupted"] is False
    evaluation = summary["eval"]
    # No scripted players for these games: the score is the mean return, and there are no baselines.
    assert evaluation["score_name"] == "mean_return" and evaluation["baselines"] is None
    assert evaluation["score"] == pytest.approx(np.mean(evaluation["returns"]))
    assert [row["step"] for row in summary["validation"]["history"]] == [150, 300]
    model = json.loads((run_dir / "model.json").read_text())
    assert "Dense" in json.dumps(model) and f'"units": {actions}' in json.dumps(model)
    assert f"[null, 1, {observation}]" in json.dumps(model["config"]["layers"][0])
    with Image.open(run_dir / "demo.gif") as gif:
        assert gif.size == size and gif.n_frames > 1
    assert (run_dir / "curves.png").is_file()


def test_games_without_scripted_players_are_a_one_line_baseline_error():
    result = cli("baseline", "CartPole-v1")
    assert_one_line_error(result, "no scripted players for env 'CartPole-v1'")


# ---------------------------------------------------------------------------------------------
# IQM and its interval

SCORES = np.array([12.0, -3.5, 7.25, 40.0, 0.5, 9.0, 15.5])


def test_iqm_and_interval_are_rliables():
    from rliable import library, metrics

    np.random.seed(7)  # rliable's resamples come from NumPy's global generator
    points, intervals = library.get_interval_estimates(
        {"x": SCORES.reshape(-1, 1)}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=500
    )
    ours = stats.iqm_interval(list(SCORES), reps=500, seed=7)
    assert ours.iqm == points["x"][0]
    assert (ours.low, ours.high) == (intervals["x"][0, 0], intervals["x"][1, 0])
    assert ours.n == 7


def test_iqm_matches_a_hand_computed_trimmed_mean():
    # 7 runs: int(7 / 4) = 1 cut at each end, the mean of the middle five.
    interval = stats.iqm_interval(list(SCORES), reps=300)
    assert interval.iqm == pytest.approx((0.5 + 7.25 + 9.0 + 12.0 + 15.5) / 5)
    assert SCORES.min() <= interval.low < interval.iqm < interval.high <= SCORES.max()
    # 8 runs: two cut at each end.
    assert stats.iqm_interval([8, 1, 7, 2, 6, 3, 5, 4], reps=50).iqm == pytest.approx(4.5)
    # Resampling one value can only give that value; two runs span their two values.
    assert stats.iqm_interval([3.0], reps=50) == stats.Interval(3.0, 3.0, 3.0, 1)
    assert stats.iqm_interval([3.0, 5.0, None, float("nan")], reps=300) == stats.Interval(4.0, 3.0, 5.0, 2)
    empty = stats.iqm_interval([])
    assert empty.n == 0 and np.isnan([empty.iqm, empty.low, empty.high]).all()


def test_interval_is_reproducible_and_leaves_the_global_generator_alone():
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    first = stats.iqm_interval(list(SCORES), reps=200)
    assert (np.random.random(3) == expected).all()
    assert stats.iqm_interval(list(SCORES), reps=200) == first
    assert stats.iqm_interval(list(SCORES), reps=200, seed=1) != first


def test_iqm_curve_is_rliables_per_point():
    from rliable import library, metrics

    matrix = np.array([[0.0, 10.0, 20.0], [1.0, 12.0, 26.0], [2.0, 11.0, 30.0], [5.0, 14.0, 21.0]])

    def per_point(x):
        return np.array([metrics.aggregate_iqm(x[:, j]) for j in range(x.shape[1])])

    np.random.seed(stats.BOOTSTRAP_SEED)
    points, intervals = library.get_interval_estimates({"x": matrix}, per_point, reps=300)
    iqm, low, high = stats.iqm_curve(matrix, reps=300)
    np.testing.assert_array_equal(iqm, points["x"])
    np.testing.assert_array_equal(low, intervals["x"][0])
    np.testing.assert_array_equal(high, intervals["x"][1])
    np.testing.assert_allclose(iqm, [1.5, 11.5, 23.5])  # 4 runs: the middle two at each step
    with pytest.raises(ValueError, match="matrix"):
        stats.iqm_curve(np.array([[1.0, np.nan]]))


# ---------------------------------------------------------------------------------------------
# The benchmark


def test_benchmark_writes_its_table_and_figure(benchmarked):
    base, first, second = benchmarked
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[1/2] cartpole_dqn seed 0 (300 steps): to train" in first.stdout
    assert "trained 2 run(s), reused 0" in first.stdout
    # The two runs went through the sweep executor, both at once, with their logs kept.
    assert "2 at a time" in first.stdout
    (logs,) = (base / "runs" / "benchmark").glob("*/sweep.json")
    assert {run["experiment"] for run in json.loads(logs.read_text())["runs"]} == {"cartpole_dqn", "mountaincar_dqn"}
    assert second.returncode == 0, second.stderr[-3000:]
    assert "trained 0 run(s), reused 2" in second.stdout
    assert len(list((base / "runs" / "benchmark").iterdir())) == 1  # the second left no empty log folder

    out = base / "out"
    rows = {row["game"]: row for row in csv.DictReader((out / "benchmark.csv").read_text().splitlines())}
    assert list(rows) == ["CartPole-v1", "MountainCar-v0"]
    for game, name in (("CartPole-v1", "cartpole_dqn"), ("MountainCar-v0", "mountaincar_dqn")):
        summary = json.loads(next((base / "runs" / name).glob("*/summary.json")).read_text())
        row = rows[game]
        assert row["experiment"] == name and row["seeds"] == "1" and row["steps"] == str(STEPS)
        # One seed: mean and IQM are its return, the interval is that point, no std.
        assert float(row["eval_return_mean"]) == pytest.approx(summary["eval"]["mean_return"])
        assert float(row["eval_return_iqm_low"]) == float(row["eval_return_iqm_high"]) == float(row["eval_return_iqm"])
        assert row["eval_return_std"] == ""
        assert float(row["wall_seconds_mean"]) == pytest.approx(summary["wall_seconds"])
        zoo, cleanrl = references.REFERENCES[game]
        assert float(row["zoo_mean"]) == zoo.mean and int(row["cleanrl_steps"]) == cleanrl.steps == 500_000
    markdown = (out / "benchmark.md").read_text()
    assert "| CartPole-v1 | `cartpole_dqn` | 1 | 300 |" in markdown
    assert "500.0 ± 0.0 (50k steps; 300 episodes of 1 agent)" in markdown
    assert "-194.95 ± 8.48 (500k steps; 3 seeds)" in markdown
    assert "Fewer than 3 seeds: CartPole-v1 (1), MountainCar-v0 (1)" in markdown
    assert "stratified-bootstrap" in markdown and "![" in markdown
    assert_valid_png(out / "benchmark.png")


def test_lunarlander_is_compared_with_the_zoos_v2_row_and_has_no_cleanrl_row():
    from harness.report.benchmark import GameRow, format_table

    row = GameRow(
        "LunarLander-v3", "lunarlander_dqn", [0, 1, 2], [100_000], [150.0, 200.0, 100.0], [600.0, 660.0, 720.0]
    )
    line = format_table([row]).splitlines()[2]
    assert "| 150.0 ± 50.0 | 150.0 [100.0, 200.0] | 11.0 ± 1.0 min |" in line
    assert "154.4 ± 79.2 (100k steps; 200 episodes of 1 agent, LunarLander-v2) | – |" in line


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["Pong-v5"], "'Pong-v5' is not in the benchmark suite"),
        (["cartpole"], "did you mean cartpole_dqn?"),
        (["CartPole-v1", "cartpole_dqn"], "GAMES names cartpole_dqn twice"),
        (["--seeds", "0"], "SEEDS='0'"),
        (["--set", "gamma=3"], "gamma=3"),
    ],
)
def test_benchmark_mistakes_are_one_line_errors_before_any_run(tmp_path, args, fragment):
    result = cli("benchmark", *args, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()
