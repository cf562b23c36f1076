"""What a user gets from a run besides its numbers: demo.gif, TensorBoard scalars, `play`, resume,
the runs table, and one-line errors for run directories that cannot be played or resumed.

One tiny parent run (eps annealed over 1,000 steps, so it stops mid-schedule at step 300), a run
resumed from it to step 600, and a run that crashes at step 150 are shared by the module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.core.registry import load_experiment
from harness.core.rundir import list_states
from harness.kerasrl.compat import Callback
from harness.run.runner import run
from tests.helpers import cli, tiny

EPS = {"eps_max": 1.0, "eps_min": 0.05, "eps_anneal_steps": 1_000}


class _Crash(Callback):
    """Raises at a given step, as a bug or an out-of-memory kill would end a run."""

    def __init__(self, at_step: int) -> None:
        super().__init__()
        self.at_step = at_step
        self.steps = 0

    def on_step_end(self, step, logs=None):
        self.steps += 1
        if self.steps == self.at_step:
            raise RuntimeError("simulated crash")


def _exp(**changes):
    return tiny(load_experiment("catch_dense"), **{**EPS, **changes})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def parent(runs):
    return run(_exp(seed=3), runs, command=["test"], log=io.StringIO())


@pytest.fixture(scope="module")
def resumed(runs, parent):
    return run(_exp(seed=3, nb_steps=600), runs, command=["test"], log=io.StringIO(), resume_from=parent)


@pytest.fixture(scope="module")
def crashed(runs):
    exp = _exp(seed=5, callbacks=[lambda run_dir: _Crash(at_step=150)])
    before = set((runs / "catch_dense").glob("*")) if (runs / "catch_dense").exists() else set()
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(exp, runs, command=["test"], log=io.StringIO())
    (run_dir,) = set((runs / "catch_dense").glob("*")) - before
    return run_dir


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` by content hash: equal snapshots mean nothing was written."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _render_size(exp) -> tuple[int, int]:
    from harness.kerasrl.agents import make_env

    env = make_env(exp, seed=0, render_mode="rgb_array")
    env.reset()
    height, width, _ = env.render(mode="rgb_array").shape
    env.close()
    return width, height


# ---------------------------------------------------------------------------------------------
# demo.gif


def test_demo_gif_has_frames_at_the_envs_render_size(parent):
    from PIL import Image

    from harness.run.media import MAX_FRAMES

    with Image.open(parent / "demo.gif") as gif:
        assert 1 < gif.n_frames <= MAX_FRAMES
        assert gif.size == _render_size(_exp()) == (128, 128)
        gif.seek(gif.n_frames - 1)
        assert gif.convert("RGB").size == gif.size


def test_write_gif_keeps_every_frame_and_its_colours(tmp_path):
    from PIL import Image

    from harness.run.media import write_gif

    frames = [np.full((16, 24, 3), value, dtype=np.uint8) for value in (0, 100, 200)]
    frames[1][4:8, 4:8] = (255, 200, 40)
    write_gif(tmp_path / "x.gif", frames, fps=8)
    with Image.open(tmp_path / "x.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (24, 16)
        for index, frame in enumerate(frames):
            gif.seek(index)
            np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["x.gif"]  # no temporary file left behind


# ---------------------------------------------------------------------------------------------
# TensorBoard


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from harness.kerasrl.compat import tf

    out: dict[str, list[tuple[int, float]]] = {}
    (event_file,) = (run_dir / "tensorboard").glob("events.out.tfevents.*")
    for event in tf.compat.v1.train.summary_iterator(str(event_file)):
        for value in event.summary.value:
            out.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return out


def test_tensorboard_event_file_holds_the_runs_scalars(parent):
    scalars = _scalars(parent)
    for tag in (
        "charts/episode_reward",
        "charts/episode_length",
        "losses/loss",
        "charts/mean_q",
        "charts/epsilon",
        "charts/steps_per_second",
    ):
        assert tag in scalars, sorted(scalars)
    metrics = _json(parent / "metrics.json")
    # One point per episode, the same rewards as metrics.json, at the step each episode ended.
    assert [v for _, v in scalars["charts/episode_reward"]] == metrics["episode_reward"]
    assert [s for s, _ in scalars["charts/episode_reward"]] == metrics["nb_steps"]
    # Interval points every 100 steps; training (and the loss) starts after the 100 warm-up steps.
    assert [s for s, _ in scalars["charts/steps_per_second"]] == [100, 200, 300]
    assert [s for s, _ in scalars["losses/loss"]] == [200, 300]
    assert all(0.05 <= v <= 1.0 for _, v in scalars["charts/epsilon"])
    assert all(v > 0 for _, v in scalars["charts/steps_per_second"])


# ---------------------------------------------------------------------------------------------
# play


def test_play_reproduces_the_runs_own_evaluation_and_films_it(parent, tmp_path):
    from PIL import Image

    from harness.run.play import play

    out = io.StringIO()
    evaluation = play(parent, gif=tmp_path / "play.gif", stream=out)
    own = _json(parent / "summary.json")["eval"]
    assert evaluation["seed"] == own["seed"] == 10_003
    assert evaluation["returns"] == own["returns"]
    assert evaluation["mean_return"] == own["mean_return"]
    assert evaluation["score"] == own["score"] and evaluation["score_name"] == own["score_name"]
    text = out.getvalue()
    assert "episode   1/2:" in text and "episode   2/2:" in text and "(identical)" in text
    with Image.open(tmp_path / "play.gif") as gif:
        assert gif.n_frames > 1 and gif.size == (128, 128)


def test_play_with_another_seed_plays_other_episodes(parent):
    from harness.run.play import play

    evaluation = play(parent, episodes=3, seed=123, stream=io.StringIO())
    assert evaluation["seed"] == 123 and evaluation["episodes"] == 3 and len(evaluation["returns"]) == 3


def test_play_on_a_variant_of_the_game_plays_it_and_scores_the_scripted_players_on_it(parent):
    from harness.run import scripted
    from harness.run.evaluation import evaluate
    from harness.run.play import load_agent, play

    out = io.StringIO()
    # The run trained with a ball every 4 steps; here one falls every 2 (the same board and actions).
    evaluation = play(parent, env_kwargs={"interval": 2}, stream=out)
    own = _json(parent / "summary.json")["eval"]
    text = out.getvalue()
    assert 'Catch-v0 with {"interval": 2}' in text and "identical" not in text and "DIFFERENT" not in text
    exp, _, agent = load_agent(parent)
    variant = dataclasses.replace(exp, env_kwargs={**exp.env_kwargs, "interval": 2})
    # What play reports is the agent's evaluation on the variant (greedy, so exactly repeatable).
    assert evaluation == evaluate(variant, agent, own["episodes"], own["seed"])
    players = scripted.run_scripted_players(variant, own["episodes"], own["seed"])
    assert players is not None and players != scripted.run_scripted_players(exp, own["episodes"], own["seed"])
    perfect = players["perfect"]
    assert f"perfect player on the same episodes: {perfect['score_name']} {perfect['score']:.3f}" in text
    # The run's own game, named explicitly, is no variant: it reproduces the evaluation.
    same = play(parent, env_kwargs={"interval": 4}, stream=io.StringIO())
    assert same["returns"] == own["returns"]


def test_play_refuses_a_variant_the_network_cannot_take(parent, tmp_path, capsys):
    from harness.cli import main

    before = _snapshot(parent)
    code = main(["play", str(parent), "--env-kwargs", '{"size": 16}'])
    _one_line_error(code, capsys.readouterr().err, "changes Catch-v0's observation space")
    code = main(["play", str(parent), "--env-kwargs", "[16]"])
    _one_line_error(code, capsys.readouterr().err, "expected a JSON object")
    code = main(["play", str(parent), "--env-kwargs", '{"interval": 0}'])
    _one_line_error(code, capsys.readouterr().err, "interval")
    assert _snapshot(parent) == before


# ---------------------------------------------------------------------------------------------
# resume


def _newest_state(run_dir: Path) -> tuple[int, Path]:
    return list_states(run_dir)[-1]


def test_resume_continues_the_step_count(parent, resumed):
    # The parent finished at step 300; its newest checkpoint, from the first episode end after step
    # 200, is where the resumed run starts, exactly.
    start, state = _newest_state(parent)
    assert 200 <= start < 300
    summary = _json(resumed / "summary.json")
    assert summary["steps"] == 600 and summary["steps_this_run"] == 600 - start
    assert summary["resumed_at_step"] == start and summary["resumed_from"] == str(parent)
    config = _json(resumed / "config.json")
    assert config["run"]["resumed_from"] == str(parent) and config["run"]["resumed_at_step"] == start
    assert config["run"]["resumed_from_weights"] == str(state / "weights.h5")
    assert config["run"]["resumed_from_state"] == str(state) and config["run"]["resume"].startswith("exact")
    assert config["experiment"]["nb_steps"] == 600
    steps = [step for step, _ in list_states(resumed)]
    assert steps and steps[0] >= 300 and [s // 100 for s in steps] == sorted(set(s // 100 for s in steps))
    metrics, parents = _json(resumed / "metrics.json"), _json(parent / "metrics.json")
    # The parent's episodes up to the checkpoint come first, numbered as they were.
    kept = sum(1 for end in parents["nb_steps"] if end <= start)
    assert metrics["episode"][:kept] == parents["episode"][:kept] == list(range(kept))
    assert metrics["episode"] == list(range(len(metrics["episode"])))
    assert metrics["nb_steps"] == sorted(metrics["nb_steps"]) and metrics["nb_steps"][-1] <= 600
    assert min(s for values in _scalars(resumed).values() for s, _ in values) > start


def _epsilon(step: int) -> float:
    return max(EPS["eps_min"], EPS["eps_max"] - (EPS["eps_max"] - EPS["eps_min"]) * step / EPS["eps_anneal_steps"])


def test_resume_continues_the_epsilon_schedule(parent, resumed):
    for run_dir in (parent, resumed):
        metrics = _json(run_dir / "metrics.json")
        checked = 0
        for eps, end, length in zip(metrics["mean_eps"], metrics["nb_steps"], metrics["nb_episode_steps"]):
            if eps is None or math.isnan(eps):
                continue  # warm-up: no training step, no metric
            # The episode acted at global steps end - length .. end - 1; its mean epsilon lies between.
            assert _epsilon(end - 1) - 1e-6 <= eps <= _epsilon(end - length) + 1e-6, (run_dir.name, end)
            checked += 1
        assert checked >= 5
    start, _ = _newest_state(parent)
    metrics = _json(resumed / "metrics.json")
    first_new = next(e for e, end in zip(metrics["mean_eps"], metrics["nb_steps"]) if end > start)
    # Where the parent's checkpoint was (about 0.75), not back near eps_max.
    assert _epsilon(start + 200) < first_new <= _epsilon(start)


def test_resume_from_a_crashed_run_starts_at_its_newest_checkpoint(runs, crashed):
    assert not (crashed / "summary.json").exists() and not (crashed / "weights.h5").exists()
    (state,) = (crashed / "checkpoints").iterdir()
    start = int(state.name.split("-")[1])
    assert 100 <= start < 150  # the first episode end after step 100, before the crash at 150
    again = run(_exp(seed=5), runs / "again", command=["test"], log=io.StringIO(), resume_from=crashed)
    summary = _json(again / "summary.json")
    assert summary["resumed_at_step"] == start and summary["steps"] == 300 and summary["steps_this_run"] == 300 - start
    assert _json(again / "config.json")["run"]["resumed_from_weights"] == str(state / "weights.h5")


# ---------------------------------------------------------------------------------------------
# runs table


def test_runs_table_lists_finished_resumed_and_crashed_runs(runs, parent, resumed, crashed):
    from harness.report.runs_table import NO_SUMMARY, find_runs, format_table

    rows = {row.path: row for row in find_runs(runs)}
    assert rows[str(parent)].status == "finished" and rows[str(parent)].steps == "300"
    own = _json(parent / "summary.json")["eval"]
    assert rows[str(parent)].score == f"{own['score']:.3f} catch_rate"
    assert rows[str(parent)].seed == "3" and rows[str(parent)].experiment == "catch_dense"
    start = list_states(parent)[-1][0]
    assert rows[str(resumed)].status == f"finished, resumed at step {start}" and rows[str(resumed)].steps == "600"
    crash_checkpoint = list_states(crashed)[-1][0]
    assert rows[str(crashed)].status == NO_SUMMARY and rows[str(crashed)].steps == f"{crash_checkpoint} (checkpoint)"
    assert rows[str(crashed)].score == "-"
    lines = format_table(list(rows.values())).splitlines()
    assert lines[0].split() == ["experiment", "seed", "steps", "score", "date", "status", "path"]
    assert len(lines) == 1 + len(rows)

    result = cli("runs", "--runs-dir", str(runs))
    assert result.returncode == 0, result.stderr
    assert str(crashed) in result.stdout and "crashed or running" in result.stdout
    assert str(parent) in result.stdout


def test_runs_table_is_newest_first_and_shows_unreadable_runs(tmp_path, parent):
    from harness.report.runs_table import find_runs

    config = _json(parent / "config.json")
    for index, created in enumerate(
        ["2026-01-02T10:00:00+00:00", "2026-03-01T09:00:00+00:00", "2026-02-15T23:59:59+00:00"]
    ):
        run_dir = tmp_path / "catch_dense" / f"run{index}"
        run_dir.mkdir(parents=True)
        config["run"]["created"] = created
        (run_dir / "config.json").write_text(json.dumps(config))
    shutil.copy(parent / "summary.json", tmp_path / "catch_dense" / "run0" / "summary.json")
    interrupted = {**_json(parent / "summary.json"), "interrupted": True, "eval": None}
    (tmp_path / "catch_dense" / "run1" / "summary.json").write_text(json.dumps(interrupted))
    (tmp_path / "catch_dense" / "run2" / "summary.json").write_text("{ truncated")
    rows = find_runs(tmp_path)
    assert [Path(r.path).name for r in rows] == ["run1", "run2", "run0"]
    assert [r.status for r in rows] == ["interrupted", "unreadable summary.json", "finished"]
    assert [r.date for r in rows] == ["2026-03-01 09:00", "2026-02-15 23:59", "2026-01-02 10:00"]


# ---------------------------------------------------------------------------------------------
# Bad run directories: one line, exit 2, nothing written


def _broken_copy(parent: Path, where: Path, break_it) -> Path:
    copy = where / "catch_dense" / "broken"
    shutil.copytree(parent, copy)
    break_it(copy)
    return copy


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _other_architecture(copy: Path) -> None:
    from harness.kerasrl.compat import backend
    from harness.kerasrl.models import dense

    (copy / "model.json").write_text(dense((1, 8, 8), 3, hidden=[16]).to_json())
    backend.clear_session()


def _code_in_model_json(copy: Path) -> None:
    """A model.json carrying Python bytecode (a Lambda layer): Keras refuses it, and so must play."""
    from harness.kerasrl.compat import backend, keras

    model = keras.Sequential([keras.layers.InputLayer(input_shape=(1, 8, 8)), keras.layers.Lambda(lambda x: x * 2)])
    (copy / "model.json").write_text(model.to_json())
    backend.clear_session()


BROKEN = {
    "code in model.json": (_code_in_model_json, "is not a Keras model architecture"),
    "no config.json": (lambda d: (d / "config.json").unlink(), "has no config.json"),
    "malformed config.json": (lambda d: (d / "config.json").write_text('{"experiment": '), "not valid JSON"),
    "truncated weights.h5": (lambda d: _truncate(d / "weights.h5"), "can't be read as HDF5 weights"),
    "no weights.h5": (lambda d: (d / "weights.h5").unlink(), "has no weights.h5"),
    "other architecture": (_other_architecture, "does not fit the network in model.json"),
}


def _one_line_error(code: int, stderr: str, fragment: str, tensorflow_noise: bool = False) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    if tensorflow_noise:  # a new process: TensorFlow's C++ start-up lines (CUDA probes) come first
        lines = [line for line in lines if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], stderr


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_play_of_a_broken_run_is_one_line_and_writes_nothing(case, parent, tmp_path, capsys):
    from harness.cli import main

    break_it, fragment = BROKEN[case]
    broken = _broken_copy(parent, tmp_path, break_it)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(["play", str(broken), "--gif", str(tmp_path / "out.gif")])
    _one_line_error(code, capsys.readouterr().err, fragment)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["play", "{missing}"], "is not a directory"),
        (["play", "{parent}", "--gif", "{tmp}/weights.h5"], "expected a file name ending in .gif"),
        (["play", "{parent}", "--episodes", "0"], "EPISODES='0'"),
        (["play", ""], "no run directory given"),
        (["runs", "--runs-dir", "{missing}"], "is not a directory"),
    ],
)
def test_play_and_runs_bad_arguments(args, fragment, parent, tmp_path, capsys):
    from harness.cli import main

    args = [a.format(missing=tmp_path / "nope", parent=parent, tmp=tmp_path) for a in args]
    before = _snapshot(parent)
    code = main(args)
    _one_line_error(code, capsys.readouterr().err, fragment)
    assert _snapshot(parent) == before and not list(tmp_path.iterdir())


def _rename_experiment(copy: Path) -> None:
    config = _json(copy / "config.json")
    config["experiment"]["name"] = "catch_graves"
    (copy / "config.json").write_text(json.dumps(config))


def _truncate_every_weights_file(copy: Path) -> None:
    for path in [copy / "weights.h5", *(copy / "checkpoints").glob("state-*/weights.h5")]:
        _truncate(path)


RESUME_BROKEN = {
    "no config.json": (lambda d: (d / "config.json").unlink(), [], "has no config.json"),
    "malformed config.json": (lambda d: (d / "config.json").write_text("[1, 2"), [], "not valid JSON"),
    "truncated weights": (_truncate_every_weights_file, ["--steps", "600"], "can't be read as HDF5 weights"),
    "another experiment": (_rename_experiment, [], "is a run of experiment 'catch_graves', not 'catch_dense'"),
    "other architecture": (
        lambda d: None,
        ["--steps", "600", "--set", 'network_kwargs={"hidden":[16]}'],
        "does not fit the network of experiment 'catch_dense'",
    ),
    "nothing left to train": (lambda d: None, [], "already reached step 300 of nb_steps=300"),
    "nothing saved": (
        lambda d: [(d / "weights.h5").unlink(), shutil.rmtree(d / "checkpoints")],
        ["--steps", "600"],
        "nothing to resume from",
    ),
}


@pytest.mark.parametrize("case", sorted(RESUME_BROKEN))
def test_resume_of_a_broken_run_is_one_line_and_writes_nothing(case, parent, tmp_path, capsys):
    from harness.cli import main

    break_it, extra, fragment = RESUME_BROKEN[case]
    broken = _broken_copy(parent, tmp_path / "source", break_it)
    new_runs = tmp_path / "new"
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(["run", "catch_dense", "--resume", str(broken), "--runs-dir", str(new_runs), *extra])
    _one_line_error(code, capsys.readouterr().err, fragment)
    assert _snapshot(tmp_path) == before and not new_runs.exists()


def test_cli_errors_for_play_and_resume_have_no_traceback(parent, tmp_path):
    broken = _broken_copy(parent, tmp_path, lambda d: _truncate(d / "weights.h5"))
    result = cli("play", str(broken))
    _one_line_error(result.returncode, result.stderr, "can't be read as HDF5 weights", tensorflow_noise=True)
    result = cli("run", "catch_dense", "--resume", str(tmp_path / "nope"), "--runs-dir", str(tmp_path / "new"))
    _one_line_error(result.returncode, result.stderr, "RESUME=", tensorflow_noise=True)
    assert not (tmp_path / "new").exists()


def test_make_runs_and_tensorboard_targets(runs, parent, tmp_path):
    import subprocess

    from tests.helpers import ROOT

    result = subprocess.run(
        ["make", "-s", "runs", f"RUNS={runs}"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert str(parent) in result.stdout and result.stdout.startswith("experiment")
    result = subprocess.run(
        ["make", "-s", "tensorboard", f"RUNS={tmp_path / 'nope'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "is not a directory" in result.stderr
