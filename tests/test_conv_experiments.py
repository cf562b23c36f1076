"""catch_conv and cave_conv end to end with tiny budgets, the scripted baselines next to the agent's
score in summary.json, and the `baseline` command."""

import io
import json

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.core.schema import apply_overrides
from harness.run import scripted as baselines
from harness.run.runner import EVAL_SEED_OFFSET, run
from tests.helpers import cli, tiny


@pytest.fixture(scope="module")
def conv_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    out = {}
    for name in ("catch_conv", "cave_conv"):
        exp = tiny(load_experiment(name), seed=3)
        out[name] = (exp, run(exp, runs, command=["test"]))
    return out


@pytest.mark.parametrize(
    "name, input_shape, actions, players, score_name",
    [
        ("catch_conv", (None, 16, 16, 1), 3, ["random", "perfect"], "catch_rate"),
        ("cave_conv", (None, 48, 48, 4), 2, ["random", "heuristic"], "frames"),
    ],
)
def test_smoke_run_saves_a_conv_agent_and_its_baselines(conv_runs, name, input_shape, actions, players, score_name):
    from harness.kerasrl.compat import backend, keras

    exp, run_dir = conv_runs[name]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 300 and summary["interrupted"] is False
    evaluation = summary["eval"]
    assert evaluation["seed"] == 3 + EVAL_SEED_OFFSET and evaluation["score_name"] == score_name
    assert list(evaluation["baselines"]) == players
    # The baselines in the summary are the players' own scores on the evaluation seed: replaying
    # them gives the same numbers.
    replayed = baselines.scores(exp.env_id, exp.env_kwargs, exp.eval_episodes, evaluation["seed"])
    assert evaluation["baselines"] == json.loads(json.dumps(replayed))
    for player in players:
        result = evaluation["baselines"][player]
        assert result["score_name"] == score_name and len(result["returns"]) == exp.eval_episodes
        assert result["mean_return"] == pytest.approx(np.mean(result["returns"]))
    # CAVE says what each episode crashed into (an untrained agent crashes in every one); Catch
    # has no crashes to count.
    if name == "cave_conv":
        crashes = evaluation["crashes"]
        assert set(crashes) <= {"ceiling", "floor", "block"} and sum(crashes.values()) == exp.eval_episodes
        assert list(crashes.values()) == sorted(crashes.values(), reverse=True)
    else:
        assert "crashes" not in evaluation
    # The saved network is the conv network, channels-last, one Q value per action.
    backend.clear_session()
    model = keras.models.model_from_json((run_dir / "model.json").read_text())
    model.load_weights(str(run_dir / "weights.h5"))
    assert model.input_shape == input_shape and model.output_shape == (None, actions)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == 3
    q = model.predict_on_batch(np.random.default_rng(0).random((2, *input_shape[1:]), dtype=np.float32))
    assert q.shape == (2, actions) and np.isfinite(q).all()


def test_scripted_players_set_the_bars():
    catch = baselines.scores("Catch-v0", {"size": 16}, episodes=3, seed=0)
    assert catch["perfect"]["score"] == 1.0 and catch["random"]["score"] < 0.5
    cave = baselines.scores("Cave-v0", {}, episodes=3, seed=0)
    assert cave["heuristic"]["score"] > 5 * cave["random"]["score"] > 0
    # Each CAVE episode ends in a crash whose cause is counted; Catch reports none.
    assert sum(cave["random"]["crashes"].values()) == 3 and "crashes" not in catch["random"]
    # Same seed, same numbers; another seed, other caves.
    assert baselines.scores("Cave-v0", {}, episodes=3, seed=0) == cave
    assert baselines.scores("Cave-v0", {}, episodes=3, seed=1)["random"]["returns"] != cave["random"]["returns"]


def test_baseline_command_prints_each_player():
    result = cli("baseline", "Cave-v0", "--episodes", "2", "--seed", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Cave-v0: 2 episodes per player, env seed 5"
    assert sum(line.startswith("random     episode") for line in lines) == 2
    assert sum(line.startswith("heuristic  episode") for line in lines) == 2
    expected = baselines.scores("Cave-v0", {}, episodes=2, seed=5)
    for player, values in expected.items():
        summary = [line for line in lines if line.startswith(f"{player:<10} mean")]
        crashes = ", ".join(f"{cause} {n}" for cause, n in values["crashes"].items())
        assert sum(values["crashes"].values()) == 2
        scores = f"mean frames {values['score']:.3f}  mean return {values['mean_return']:.3f}"
        assert summary == [f"{player:<10} {scores}; crashes: {crashes}"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["baseline", "Cave-v1"], "no scripted players for env 'Cave-v1' (did you mean Cave-v0?)"),
        (["baseline", "Catch-v0", "--env-kwargs", '{"size":3}'], "size must be an int >= 5"),
        (["baseline", "Catch-v0", "--env-kwargs", "[16]"], "expected a JSON object"),
        (["baseline", "Catch-v0", "--episodes", "0"], "--episodes='0' is not allowed"),
    ],
)
def test_baseline_command_errors_are_one_line(args, fragment):
    result = cli(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr


def test_action_repetition_is_a_checked_setting():
    exp = apply_overrides(load_experiment("cave_conv"), ["action_repetition=2"])
    assert exp.validate().action_repetition == 2
    with pytest.raises(UserError, match="action_repetition=0 is not allowed; expected a positive integer"):
        apply_overrides(exp, ["action_repetition=0"]).validate()


# --- Learning at the experiments' real budgets (`make test-all`; about an hour each on 2 cores) ---


@pytest.mark.slow
def test_catch_conv_learns_on_most_seeds(tmp_path):
    import dataclasses

    exp = load_experiment("catch_conv")
    rates = []
    for seed in range(5):
        run_dir = run(dataclasses.replace(exp, seed=seed), tmp_path)
        rates.append(json.loads((run_dir / "summary.json").read_text())["eval"]["score"])
    assert sum(rate >= 0.9 for rate in rates) >= 3, rates


@pytest.mark.slow
def test_cave_conv_learns_to_avoid_blocks(tmp_path):
    exp = load_experiment("cave_conv")
    run_dir = run(exp, tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    frames = summary["eval"]["score"]
    bars = summary["eval"]["baselines"]
    assert frames >= 5 * bars["random"]["score"], summary["eval"]
    assert frames >= 0.5 * bars["heuristic"]["score"], summary["eval"]
    assert summary["wall_seconds"] < 45 * 60


@pytest.mark.slow  # make test's time: test_distributional runs every component together on a small game
def test_cave_rainbow_smoke_runs_and_play_replays_it(tmp_path):
    """Every Rainbow component on the conv network (noisy dueling atoms, n-step, prioritized)."""
    from harness.run.play import play

    exp = tiny(load_experiment("cave_rainbow"), seed=1, eval_episodes=1)
    run_dir = run(exp, tmp_path, command=["test"], log=io.StringIO())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 300 and summary["eval"]["score_name"] == "frames"
    assert play(run_dir, stream=io.StringIO())["returns"] == summary["eval"]["returns"]
