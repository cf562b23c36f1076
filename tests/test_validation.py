"""Validation rounds during training (`validation_interval`): the greedy loop they play is keras-rl's
`test` loop exactly, the best-validated weights are the ones evaluated, saved and replayed."""

import dataclasses
import io
import json

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.kerasrl.callbacks import play_greedy
from harness.run.runner import EVAL_SEED_OFFSET, VALIDATION_SEED_OFFSET, evaluate, run
from tests.helpers import tiny


@pytest.mark.parametrize(
    "name, changes",
    [
        ("cave_conv", {"validation_interval": 0}),  # window of 4 frames, action repetition 2, frames processor
        ("catch_dense", {"validation_interval": 0}),  # window of 1, no repetition
    ],
)
def test_play_greedy_plays_exactly_what_keras_rl_test_plays(tmp_path, name, changes):
    from harness.kerasrl.agents import make_env
    from harness.run.play import load_agent

    exp = tiny(load_experiment(name), seed=4, nb_steps=400, **changes)
    run_dir = run(exp, tmp_path, command=["test"])
    exp, _, agent = load_agent(run_dir)
    seed = 77
    tested = evaluate(exp, agent, 3, seed)  # keras-rl's agent.test
    env = make_env(exp, seed=seed)
    agent.step, agent.training = 1234, True  # as in the middle of `fit`
    played = play_greedy(agent, env, 3, exp.action_repetition)
    env.close()
    assert played.returns == pytest.approx(tested["returns"], abs=1e-9)
    assert played.lengths == tested["lengths"]
    assert played.final_infos and all(played.final_infos)
    # play_greedy leaves the agent's training state alone (`test` resets the step counter).
    assert int(agent.step) == 1234 and agent.training is True


def test_run_evaluates_the_best_validated_weights_and_play_replays_them(tmp_path):
    from harness.run.play import play

    exp = tiny(
        load_experiment("catch_dense"),
        seed=2,
        nb_steps=3_000,
        nb_steps_warmup=200,
        eps_anneal_steps=1_500,
        validation_interval=500,
        validation_episodes=3,
        eval_episodes=5,
    )
    run_dir = run(exp, tmp_path, command=["test"])
    summary = json.loads((run_dir / "summary.json").read_text())
    validation = summary["validation"]
    history = validation["history"]
    assert [row["step"] for row in history] == [500, 1000, 1500, 2000, 2500, 3000]
    assert validation["seed"] == 2 + VALIDATION_SEED_OFFSET != summary["eval"]["seed"] == 2 + EVAL_SEED_OFFSET
    best = max(
        history, key=lambda row: row["score"]
    )  # the first of equal scores: only a strictly better one replaces it
    assert (validation["best_step"], validation["best_score"]) == (best["step"], best["score"])
    assert summary["eval_weights"] == "best_weights.h5" and (run_dir / "best_weights.h5").is_file()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["validation_seed"] == validation["seed"]
    # `play` loads best_weights.h5 and reproduces the run's own evaluation.
    replayed = play(run_dir, stream=io.StringIO())
    assert replayed["returns"] == summary["eval"]["returns"]
    # weights.h5 still holds the final weights (resume continues from them), which differ from the
    # best ones unless the last round was the best.
    import h5py

    def arrays(path):
        with h5py.File(path, "r") as f:
            out = []
            f.visititems(lambda n, o: out.append(np.array(o)) if isinstance(o, h5py.Dataset) else None)
            return out

    same = all(
        np.array_equal(a, b) for a, b in zip(arrays(run_dir / "weights.h5"), arrays(run_dir / "best_weights.h5"))
    )
    assert same == (best["step"] == 3000)


def test_without_validation_the_final_weights_are_evaluated(tmp_path):
    run_dir = run(tiny(load_experiment("catch_dense"), seed=1), tmp_path, command=["test"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["validation"] is None and summary["eval_weights"] == "weights.h5"
    assert not (run_dir / "best_weights.h5").exists()


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("validation_interval", -1, "an integer >= 0"),
        ("validation_episodes", 0, "a positive integer"),
    ],
)
def test_validation_settings_are_checked(field, value, allowed):
    exp = load_experiment("catch_dense")
    with pytest.raises(UserError, match=f"{field}={value} is not allowed; expected {allowed}"):
        dataclasses.replace(exp, **{field: value})  # every construction is validated


def test_curves_get_a_validation_panel_with_the_scripted_players(tmp_path):
    import matplotlib.image

    from harness.core import rundir
    from harness.report import plots

    exp = tiny(load_experiment("catch_dense"), seed=5, nb_steps=600, validation_interval=200, validation_episodes=2)
    run_dir = run(exp, tmp_path, command=["test"])
    steps, scores = plots.validation_history(rundir.load_run(run_dir))
    assert steps.tolist() == [200, 400, 600] and scores.size == 3 and ((scores >= 0) & (scores <= 1)).all()
    # curves.png has four panels (5 inches each at 110 dpi) instead of three.
    assert matplotlib.image.imread(str(run_dir / "curves.png")).shape[1] == 4 * 5 * 110
    plain = run(tiny(load_experiment("catch_dense"), seed=5), tmp_path, command=["test"])
    assert plots.validation_history(rundir.load_run(plain))[0].size == 0
    assert matplotlib.image.imread(str(plain / "curves.png")).shape[1] == 3 * 5 * 110
