"""The fast path benchmark (`make bench`, bench/speed.py) with its measurements faked: the order
it runs them in, the tables and the targets it writes. Real measurements: test_fast_path.py
(`measure` on a short catch_dense run) and `make bench` itself."""

import json
import subprocess
import sys
from typing import Any

import pytest

from bench import speed
from harness.core.registry import load_experiment

# Train steps/s of each (experiment, path) in the fake measurements (env steps/s: 4x). Every
# target is met: catch_dense 8x stock, 1.6x base, prioritized replay 12.5%; cave_conv 3x
# stock, 2.1x base, 6.7%; cave_rainbow 73% of cave_conv's fast.
RATES = {
    "catch_dense": {
        "stock": 100.0,
        "base": 500.0,
        "fast-old": 700.0,
        "fast": 800.0,
        "fast-per": 700.0,
        "fast-n3": 750.0,
    },
    "cave_conv": {"stock": 10.0, "base": 14.0, "fast-old": 20.0, "fast": 30.0, "fast-per": 28.0, "fast-n3": 25.0},
    "cave_rainbow": {"fast": 22.0},
    "cave_drqn": {"fast": 8.0},
}


def fake_measurements(monkeypatch: pytest.MonkeyPatch, rates: dict[str, dict[str, float]]) -> list[tuple]:
    """Replace the subprocess measurement; returns the list the calls are recorded in."""
    calls: list[tuple] = []

    def measure(name: str, path: str, steps: int, warmup: int, memory_limit=None, rss_every=0, extra_env=None):
        calls.append((name, path, steps, warmup, rss_every))
        rate = rates[name][path]
        result: dict[str, Any] = {
            "experiment": name,
            "env_steps_per_second": 4 * rate,
            "train_steps_per_second": rate,
            "peak_rss_mb": 700.0,
            "load_before": 0.5,
            "wall_seconds": 1.0,
            "settings": speed.settings(load_experiment(name)),
        }
        if rss_every:
            result.update(
                path=path,
                memory_limit=memory_limit,
                memory_full_at_step=950,
                steps_after_full=steps - 950,
                rss_at_full_mb=600.0,
                rss_at_end_mb=601.0,
                growth_after_full_mb=1.0,
                rss_range_after_full_mb=1.5,
            )
        return result

    monkeypatch.setattr(speed, "_measure_in_subprocess", measure)
    return calls


def run_bench(tmp_path, reps: int = 2) -> int:
    return speed.bench(reps, 400, 700, tmp_path, 500, 600, drqn_steps=300)


def test_other_experiments_alternate_with_cave_convs_paths(monkeypatch, tmp_path):
    calls = fake_measurements(monkeypatch, RATES)
    assert run_bench(tmp_path) == 0
    speed_runs = [c for c in calls if c[0] != "catch_dense" and not c[4]]
    rep = [
        *(("cave_conv", p, 700, 500, 0) for p in speed.PATHS),
        ("cave_rainbow", "fast", 700, 500, 0),
        ("cave_drqn", "fast", 300, 200, 0),
    ]
    assert speed_runs == rep + rep[::-1]


def test_the_results_state_the_other_experiments_and_their_ratios(monkeypatch, tmp_path):
    fake_measurements(monkeypatch, RATES)
    run_bench(tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    rainbow, drqn = results["others"]["cave_rainbow"], results["others"]["cave_drqn"]
    assert rainbow["of_cave_conv"]["train_steps_per_second"] == pytest.approx(22 / 30)
    assert drqn["steps"] == 300 and drqn["nb_steps_warmup"] == 200 and len(drqn["runs"]) == 2
    assert set(results["cave_conv"]["runs"]) == set(speed.PATHS)
    table = (tmp_path / "results.md").read_text()
    assert "| experiment | steps | measure | cave_conv fast | this experiment | ratio | peak RSS |" in table
    assert "| cave_rainbow | 700 (warm-up 500) | train steps/s | 30.0 | 22.0 | **0.73x** | 700 MB |" in table
    # The recurrent experiment's label comes from its definition (experiments/cave_drqn.py).
    drqn_exp = load_experiment("cave_drqn")
    label = (
        f"cave_drqn ({drqn_exp.batch_size} sequences of sequence_length {drqn_exp.sequence_length} "
        f"after burn_in {drqn_exp.burn_in})"
    )
    assert f"| {label} | 300 (warm-up 200) | env steps/s | 120.0 | 32.0 | 0.27x |  |" in table
    assert "- cave_drqn fast (train steps/s): 8.0, 8.0" in table
    assert "- met: cave_rainbow trains at >= 70% of cave_conv's fast path train steps/s (measured 73.3%)" in table


def test_a_slow_rainbow_misses_its_target(monkeypatch, tmp_path):
    fake_measurements(monkeypatch, {**RATES, "cave_rainbow": {"fast": 20.0}})
    assert run_bench(tmp_path, reps=1) == 1
    table = (tmp_path / "results.md").read_text()
    assert "- MISSED: cave_rainbow trains at >= 70% of cave_conv's fast path train steps/s (measured 66.7%)" in table
    assert table.count("- MISSED") == 1


def test_without_cave_conv_there_are_no_other_rows(monkeypatch, tmp_path):
    calls = fake_measurements(monkeypatch, RATES)
    monkeypatch.setattr("harness.core.registry.available_experiments", lambda: ["catch_dense"])
    assert run_bench(tmp_path, reps=1) == 0
    assert {c[0] for c in calls} == {"catch_dense"}
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["cave_conv"] is None and results["others"] == {}
    assert "Other experiments" not in (tmp_path / "results.md").read_text()
    assert not any("cave_rainbow" in text for text, _ in results["targets"])


def test_the_speed_targets_hold_against_the_base_commit_not_todays_code(monkeypatch, tmp_path):
    # catch_dense: 1.6x base but 1.14x fast-old (met); cave_conv: 1.5x fast-old but 30/18 = 1.67x base.
    rates = {**RATES, "cave_conv": {**RATES["cave_conv"], "base": 18.0}}
    fake_measurements(monkeypatch, rates)
    assert run_bench(tmp_path, reps=1) == 1
    table = (tmp_path / "results.md").read_text()
    base = speed.BASE_COMMIT
    assert f"- met: catch_dense with today's defaults >= 1.5x the code of {base} (env steps per second: " in table
    assert (
        f"- MISSED: cave_conv with today's defaults >= 2x the code of {base} (train steps per second: "
        "measured 1.67x; 1.50x today's fast path with oneDNN off)"
    ) in table
    assert (
        "| cave_conv (700 steps, warm-up 500) | train steps/s "
        "| 10.0 | 18.0 | 20.0 | 30.0 | **3.00x** | **1.67x** | 1.50x" in table
    )


def _has_base_commit() -> bool:
    git = subprocess.run(
        ["git", "-C", str(speed.BENCH_DIR.parent), "cat-file", "-e", f"{speed.BASE_COMMIT}^{{commit}}"],
        capture_output=True,
    )
    return git.returncode == 0


@pytest.mark.skipif(not _has_base_commit(), reason="this checkout's git history lacks the base commit")
def test_the_base_tree_holds_the_base_commits_code():
    tree = speed.base_tree()
    for path in ("bench/speed.py", "harness/kerasrl/fast.py", "experiments/cave_conv.py"):
        shown = subprocess.run(
            ["git", "-C", str(speed.BENCH_DIR.parent), "show", f"{speed.BASE_COMMIT}:{path}"],
            capture_output=True,
            text=True,
        )
        assert (tree / path).read_text() == shown.stdout
    imported = subprocess.run(
        [sys.executable, "-c", "import harness, experiments; print(harness.__file__)"],
        cwd=tree,  # as bench.speed runs it: `-c`, like `-m`, puts the working folder first on the import path
        capture_output=True,
        text=True,
    )
    assert imported.stdout.strip() == str(tree / "harness" / "__init__.py"), imported.stderr


@pytest.mark.parametrize(
    ("full_at", "changes", "expected"),
    [
        (959, {"nb_steps_warmup": 200, "target_model_update": 2_000}, 2_001),  # cave_conv's flatness run
        (959, {"nb_steps_warmup": 2_000, "target_model_update": 2_000}, 4_001),  # warm-up's update copies no training
        (3_500, {"nb_steps_warmup": 200, "target_model_update": 2_000}, 3_500),  # full after the update
        (959, {"nb_steps_warmup": 200, "target_model_update": 0.01}, 959),  # soft updates from the first step
        (None, {"nb_steps_warmup": 200, "target_model_update": 2_000}, None),  # never full
        (959, {"nb_steps_warmup": 200, "target_model_update": 2_000, "nb_steps": 2_000}, 959),  # no update in budget
    ],
)
def test_flatness_window_starts_when_full_and_after_the_first_trained_target_update(full_at, changes, expected):
    import dataclasses

    exp = dataclasses.replace(load_experiment("cave_conv"), **{"nb_steps": 6_000, **changes})
    assert speed.flatness_window_start(full_at, exp) == expected
