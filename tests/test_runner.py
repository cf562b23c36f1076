"""The runner end to end with a tiny budget: files, summary, reload, reproducibility."""

import json

import numpy as np
import pytest

from harness.core.registry import load_experiment
from harness.run.runner import run
from tests.helpers import tiny


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    exp = tiny(load_experiment("catch_dense"), seed=7)
    return exp, run(exp, runs, command=["test"])


def test_run_directory_layout(smoke_run):
    exp, run_dir = smoke_run
    assert run_dir.parent.name == "catch_dense" and run_dir.name.endswith("-seed7")
    for name in ("config.json", "metrics.json", "model.json", "weights.h5", "summary.json"):
        assert (run_dir / name).is_file(), name
    from harness.core.rundir import list_states, state_problem

    # A checkpoint at the first episode end after every 100 steps, each complete, no temporary left.
    states = list_states(run_dir)
    steps = [step for step, _ in states]
    assert 2 <= len(states) <= 3 and all(state_problem(folder) is None for _, folder in states)
    assert [step // 100 for step in steps] == sorted(set(step // 100 for step in steps)) and steps[0] >= 100
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [folder.name for _, folder in states]
    assert not list(run_dir.rglob(".*.tmp")) and not list(run_dir.rglob(".*.h5"))


def test_summary_fields(smoke_run):
    exp, run_dir = smoke_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["experiment"] == "catch_dense" and summary["seed"] == 7
    assert summary["steps"] == 300 and summary["interrupted"] is False
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary["episodes"] == len(metrics["episode_reward"]) > 0
    assert sum(metrics["nb_episode_steps"]) <= 300
    assert summary["wall_seconds"] > 0 and summary["steps_per_second"] > 0
    evaluation = summary["eval"]
    assert evaluation["episodes"] == 2 and len(evaluation["returns"]) == 2
    assert evaluation["score_name"] == "catch_rate" and 0.0 <= evaluation["score"] <= 1.0
    assert evaluation["mean_return"] == pytest.approx(np.mean(evaluation["returns"]))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["experiment"]["nb_steps"] == 300 and config["experiment"]["seed"] == 7
    assert config["run"]["versions"]["keras-rl2"] == "1.0.5"


def test_weights_reload_into_a_fresh_model(smoke_run):
    from harness.kerasrl.compat import backend, keras

    exp, run_dir = smoke_run
    backend.clear_session()
    model = keras.models.model_from_json((run_dir / "model.json").read_text())
    before = [w.copy() for w in model.get_weights()]
    model.load_weights(str(run_dir / "weights.h5"))
    after = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    import h5py

    with h5py.File(run_dir / "weights.h5") as stored:
        kernels = []
        stored.visititems(lambda name, obj: kernels.append(obj[()]) if hasattr(obj, "shape") else None)
    assert sorted(k.size for k in kernels) == sorted(w.size for w in after)
    states = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    q = model.predict_on_batch(states)
    assert q.shape == (4, 3) and np.isfinite(q).all()


def _episode_rewards_and_weights(run_dir):
    import h5py

    rewards = json.loads((run_dir / "metrics.json").read_text())["episode_reward"]
    arrays = []
    with h5py.File(run_dir / "weights.h5") as stored:
        stored.visititems(lambda name, obj: arrays.append((name, obj[()])) if hasattr(obj, "shape") else None)
    return rewards, arrays


@pytest.mark.parametrize("name", ["catch_dense", "cave_conv"])
def test_same_seed_same_numbers_different_seed_different(tmp_path, name):
    exp = tiny(load_experiment(name), eval_episodes=1)
    first = _episode_rewards_and_weights(run(exp, tmp_path / "a"))
    second = _episode_rewards_and_weights(run(exp, tmp_path / "b"))
    other = _episode_rewards_and_weights(run(tiny(exp, seed=1, eval_episodes=1), tmp_path / "c"))
    assert first[0] == second[0]
    for (name_a, a), (name_b, b) in zip(first[1], second[1]):
        assert name_a == name_b
        np.testing.assert_array_equal(a, b)
    assert first[0] != other[0]
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(first[1], other[1]))
