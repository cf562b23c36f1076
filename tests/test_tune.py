"""`tune`: search spaces as data, checked before anything runs; Optuna studies whose trials are
ordinary runs that report their validation rounds, are pruned, fail, and continue.

The studies run the real command on a tiny Catch budget (300 steps, a validation round every 100
steps over 2 episodes) from experiment modules written into a folder of their own, as a user's
are. Pruning is forced with `--pruner threshold:2` (no catch rate reaches 2); the failing trial is
a real run whose env cannot be built; the grid sampler makes the trials of a categorical space
deterministic as a set. The PostgreSQL test runs when DQN_HARNESS_TEST_POSTGRES names a server
(`.ci/run` starts one with `.ci/postgres`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import UserError
from harness.core.registry import ENV_VAR, available_experiments, load_experiment
from harness.core.space import DEFAULT_SEARCH_SPACE, parse_space
from harness.launch import sweep
from tests.helpers import cli, make_dry_run

POSTGRES_ENV = "DQN_HARNESS_TEST_POSTGRES"

TINY_MODULE = """\
import dataclasses

from experiments.catch_dense import EXPERIMENT as CATCH_DENSE

EXPERIMENT = dataclasses.replace(
    CATCH_DENSE,
    nb_steps=300,
    nb_steps_warmup=100,
    memory_limit=1_000,
    eps_anneal_steps=200,
    checkpoint_interval=100,
    eval_episodes=2,
    validation_interval=100,
    validation_episodes=2,
)
SEARCH_SPACE = {space!r}
"""
LEARNING_RATE = {"learning_rate": {"log_uniform": [1e-4, 1e-2]}}


def write_experiment(folder: Path, name: str, space: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(TINY_MODULE.format(space=space))
    return folder


def tune(exps: Path, *args: str) -> subprocess.CompletedProcess:
    return cli("--experiments", str(exps), "tune", *args, timeout=600)


def load_study(runs: Path, name: str, storage: str | None = None):
    import optuna

    return optuna.load_study(study_name=name, storage=storage or f"sqlite:///{runs / 'tune' / name / 'study.db'}")


def json_of(path: Path) -> dict:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------
# Search spaces (harness.core.space, no TensorFlow)


def test_the_default_space_fits_every_project_experiment():
    for name in available_experiments():
        params = parse_space(DEFAULT_SEARCH_SPACE, load_experiment(name), "the default search space")
        assert [p.name for p in params] == list(DEFAULT_SEARCH_SPACE)


def test_a_space_of_every_kind_parses_and_its_choices_round_trip():
    space = {
        "learning_rate": {"categorical": [None, 1e-3]},
        "target_model_update": {"int_log_uniform": [100, 10_000]},  # integers for a float field
        "network_kwargs": {"categorical": [{"hidden": [32]}, {"hidden": [64, 64]}]},
        "gamma": {"uniform": [0.9, 0.99]},
    }
    params = {p.name: p for p in parse_space(space, load_experiment("catch_dense"), "test")}
    assert params["target_model_update"].log and params["target_model_update"].low == 100
    kwargs = params["network_kwargs"]
    assert kwargs.encoded_choices() == ['{"hidden":[32]}', '{"hidden":[64,64]}']  # what Optuna can store
    assert [kwargs.decode(text) for text in kwargs.encoded_choices()] == [{"hidden": [32]}, {"hidden": [64, 64]}]
    assert params["learning_rate"].decode(None) is None
    with pytest.raises(UserError, match="not one of its choices"):
        kwargs.decode('{"hidden":[8]}')


@pytest.mark.parametrize(
    "space, fragment",
    [
        ({}, "must be a non-empty dict"),
        ({"learning_rat": {"log_uniform": [1e-4, 1e-2]}}, "unknown field 'learning_rat' (did you mean learning_rate?)"),
        ({"nb_steps": {"int_uniform": [100, 200]}}, "nb_steps is not tunable"),
        ({"gamma": [0.9, 0.99]}, "gamma: [0.9, 0.99] is not allowed; expected one distribution"),
        ({"gamma": {"normal": [0.9, 0.99]}}, "unknown distribution 'normal'"),
        ({"gamma": {"uniform": [0.99, 0.9]}}, "is an empty range"),
        ({"gamma": {"uniform": [0.9, 1.5]}}, "gamma: high 1.5: experiment 'catch_dense': gamma=1.5 is not allowed"),
        ({"learning_rate": {"log_uniform": [0, 1e-2]}}, "a log scale needs low > 0"),
        ({"gamma": {"uniform": [0.9]}}, "expected [low, high] of numbers"),
        ({"batch_size": {"uniform": [16, 64]}}, "uniform draws floats, but batch_size is an int field"),
        ({"batch_size": {"int_uniform": [16.5, 64]}}, "expected [low, high] of integers"),
        ({"enable_double_dqn": {"int_uniform": [0, 1]}}, "enable_double_dqn is a bool field; use categorical"),
        ({"enable_double_dqn": {"categorical": [1, 0]}}, "choice 1 does not have the field's type; expected bool"),
        ({"optimizer": {"categorical": ["adam", "sgd"]}}, "choice 'sgd': experiment 'catch_dense': optimizer='sgd'"),
        ({"batch_size": {"categorical": [32, 32]}}, "choice 32 is listed twice"),
        ({"batch_size": {"categorical": [32, 100_000]}}, "batch_size=100000 is larger than memory_limit=50000"),
        ({"gamma": {"categorical": []}}, "expected a non-empty list of choices"),
        ({"env_id": {"categorical": ["Catch v0"]}}, "which a SET override cannot carry"),
    ],
)
def test_bad_spaces_are_one_line_errors_naming_the_entry(space, fragment):
    with pytest.raises(UserError) as caught:
        parse_space(space, load_experiment("catch_dense"), "SEARCH_SPACE in mine.py")
    message = str(caught.value)
    assert message.startswith("SEARCH_SPACE in mine.py") and "\n" not in message
    assert fragment in message, message


# ---------------------------------------------------------------------------------------------
# Mistakes on the command line: one `error:` line, exit 2, nothing written


@pytest.mark.parametrize(
    "space, args, fragment",
    [
        (
            {"gama": {"uniform": [0.9, 0.99]}},
            [],
            "SEARCH_SPACE in {name}.py: unknown field 'gama' (did you mean gamma?)",
        ),
        ({"batch_size": {"log_uniform": [16, 64]}}, [], "log_uniform draws floats, but batch_size is an int field"),
        (LEARNING_RATE, ["--storage", "mysql://me@localhost/studies"], "mysql is not supported"),
        (LEARNING_RATE, ["--storage", "no url at all"], "is not a database URL"),
        (LEARNING_RATE, ["--storage", "postgresql://me:secret@127.0.0.1/"], "names no database"),
        (LEARNING_RATE, ["--storage", "postgresql://me:secret@127.0.0.1:1/db"], "can't be opened: connection to"),
        (LEARNING_RATE, ["--pruner", "median:3"], "PRUNER='median:3' is not allowed"),
        (LEARNING_RATE, ["--sampler", "grid"], "SAMPLER=grid needs a search space of categorical entries"),
        (LEARNING_RATE, ["--set", "learning_rate=0.1"], "SET fixes learning_rate, which the search space tunes"),
        (LEARNING_RATE, ["--set", "validation_interval=0"], "validation_interval=0 turns validation off"),
        (LEARNING_RATE, ["--study", "../elsewhere"], "STUDY='../elsewhere' is not allowed"),
    ],
)
def test_tune_mistakes_are_one_line_errors_before_anything_runs(tmp_path, monkeypatch, capsys, space, args, fragment):
    name = f"mistake_{uuid.uuid4().hex[:8]}"  # a fresh module name: user modules are imported once
    exps = write_experiment(tmp_path / "exps", name, space)
    monkeypatch.setenv(ENV_VAR, str(exps))
    runs = tmp_path / "runs"
    assert main(["tune", name, *args, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ") and fragment.format(name=name) in line, err
    assert "secret" not in err  # a password never shows
    assert not runs.exists()


def test_make_tune_passes_every_option():
    command = make_dry_run(
        "tune",
        "NAME=a",
        "TRIALS=3",
        "WORKERS=2",
        "STEPS=10",
        "STORAGE=postgresql://u@h/d",
        "STUDY=s",
        "PRUNER=none",
        "SAMPLER=random",
        "SET=gamma=0.9 eval_episodes=2",
        "RUNS=/somewhere",
    )
    assert (
        '-m harness tune "a" --trials "3" --workers "2" --steps "10" --storage "postgresql://u@h/d" --study "s" '
        '--pruner "none" --sampler "random" --set \'gamma=0.9\' --set \'eval_episodes=2\' --runs-dir "/somewhere"'
    ) in command


# ---------------------------------------------------------------------------------------------
# Studies, end to end


def _check_trial_run(run_dir: Path, study: str, number: int) -> tuple[dict, dict]:
    config, summary = json_of(run_dir / "config.json"), json_of(run_dir / "summary.json")
    assert config["run"]["trial"]["study"] == study and config["run"]["trial"]["number"] == number
    assert config["run"]["command"][-2:] == ["--trial", f"{study}:{number}"]
    return config, summary


def test_a_study_prunes_reports_and_continues(tmp_path, capsys):
    exps = write_experiment(tmp_path / "exps", "tune_tiny", LEARNING_RATE)
    runs = (tmp_path / "runs").resolve()
    folder = runs / "tune" / "tune_tiny"

    # A trial stopped by the pruner at its first validation round.
    first = tune(exps, "tune_tiny", "--trials", "1", "--pruner", "threshold:2", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stdout + first.stderr
    threads = sweep.threads_per_run(sweep.machine_cores(), 1)
    assert f"1 new trials, 1 at a time, {threads} TensorFlow thread" in first.stdout
    trials = load_study(runs, "tune_tiny").trials
    assert [t.state.name for t in trials] == ["PRUNED"]
    for trial in trials:
        # The run process reported its round to the study; Optuna keeps it as the pruned value.
        assert list(trial.intermediate_values) == [100] and trial.value == trial.intermediate_values[100]
        assert trial.user_attrs["reason"].startswith("pruned at step 100: the threshold:2 pruner stopped it")
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir.parent == folder / "runs" / "tune_tiny"
        config, summary = _check_trial_run(run_dir, "tune_tiny", trial.number)
        assert config["experiment"]["learning_rate"] == trial.params["learning_rate"]
        # Saved like an interrupted run: final weights and metrics, no evaluation, marked pruned.
        assert summary["pruned"]["step"] == 100 and summary["pruned"]["score"] == trial.value
        assert summary["interrupted"] is True and summary["signal"] is None and summary["eval"] is None
        assert summary["steps"] == 100 and (run_dir / "weights.h5").is_file()
        assert (folder / "logs" / f"trial-{trial.number:04d}.log").is_file()
    assert "no complete trial yet: no best settings" in first.stdout

    # The same command again continues the study: one more trial, which runs to the end.
    second = tune(exps, "tune_tiny", "--trials", "1", "--pruner", "none", "--runs-dir", str(runs))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "study 'tune_tiny' (1 trials so far)" in second.stdout
    trials = load_study(runs, "tune_tiny").trials
    assert [t.state.name for t in trials] == ["PRUNED", "COMPLETE"]
    done = trials[1]
    _, summary = _check_trial_run(Path(done.user_attrs["run_dir"]), "tune_tiny", 1)
    history = summary["validation"]["history"]
    assert done.intermediate_values == {row["step"]: row["score"] for row in history}
    assert done.value == summary["validation"]["best_score"]
    assert done.user_attrs["eval_score"] == summary["eval"]["score"] and summary["pruned"] is None
    setting = f"learning_rate={done.params['learning_rate']!r}"
    best = (folder / "best.txt").read_text()
    assert f'SET="{setting}"' in best and f'make experiment NAME=tune_tiny STEPS=300 SET="{setting}"' in best
    assert (folder / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "importances.png: not drawn, it needs 2 complete trials" in second.stdout
    table = (folder / "trials.md").read_text().splitlines()
    assert len(table) == 2 + 2 and "| 1 | complete |" in table[-1] and setting in table[-1]

    # The study records what it tunes: another budget is another study (in this process: no
    # TensorFlow is needed to refuse it, nor to report).
    os.environ[ENV_VAR] = str(exps)
    try:
        assert main(["tune", "tune_tiny", "--steps", "400", "--runs-dir", str(runs)]) == 2
        assert "error: study 'tune_tiny' tunes nb_steps 300, not 400" in capsys.readouterr().err
        assert len(load_study(runs, "tune_tiny").trials) == 2
        # The report, any time, from the storage alone.
        assert main(["tune-report", "tune_tiny", "--runs-dir", str(runs)]) == 0
    finally:
        del os.environ[ENV_VAR]
    out = capsys.readouterr().out
    assert "study 'tune_tiny': 2 trials" in out and "best: trial 1, validation catch_rate" in out


@pytest.mark.slow  # make test's time: two trial processes; the pruning study test covers the loop
def test_a_failing_trial_does_not_stop_the_study(tmp_path):
    # Catch refuses boards smaller than 5: those runs fail when they build their env.
    space = {"env_kwargs": {"categorical": [{"size": 2}, {"size": 8, "interval": 4}, {"size": 3}]}}
    exps = write_experiment(tmp_path / "exps", "tune_broken", space)
    runs = (tmp_path / "runs").resolve()
    result = tune(
        exps, "tune_broken", "--trials", "3", "--workers", "2", "--sampler", "grid", "--pruner", "threshold:2",
        "--runs-dir", str(runs),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    trials = load_study(runs, "tune_broken").trials
    by_state: dict[str, list] = {}
    for trial in trials:
        by_state.setdefault(trial.state.name, []).append(trial)
    # The grid gives every choice one trial: the good board is pruned, both small ones fail.
    assert sorted(by_state) == ["FAIL", "PRUNED"] and len(by_state["FAIL"]) == 2, by_state
    threads = sweep.threads_per_run(sweep.machine_cores(), 2)
    assert f"3 new trials, 2 at a time, {threads} TensorFlow thread" in result.stdout
    for failed in by_state["FAIL"]:
        assert json.loads(failed.params["env_kwargs"])["size"] in (2, 3)
        assert failed.user_attrs["reason"].startswith("exit 2: env Catch-v0 with env_kwargs=")
        assert "size must be an int >= 5" in failed.user_attrs["reason"]
        assert f"trial {failed.number}    FAILED  exit 2" in result.stdout
    # Two workers, three trials: the third started only when an earlier one had ended, and one
    # that had ended by then had failed. The study went on after it.
    third = max(trials, key=lambda t: t.datetime_start)
    ended_before = [t for t in trials if t is not third and t.datetime_complete <= third.datetime_start]
    assert any(t.state.name == "FAIL" for t in ended_before), [(t.number, t.state.name) for t in trials]
    (good,) = by_state["PRUNED"]
    assert json.loads(good.params["env_kwargs"]) == {"size": 8, "interval": 4} and 100 in good.intermediate_values
    rows = (runs / "tune" / "tune_broken" / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and sum(",failed," in row and "size must be" in row for row in rows) == 2


def test_a_study_on_postgresql_shared_by_two_workers(tmp_path):
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV}=postgresql://user:password@host:port/db (.ci/run does)")
    import optuna

    from harness.launch.study import hide_password, storage_url

    exps = write_experiment(tmp_path / "exps", "tune_shared", LEARNING_RATE)
    runs = (tmp_path / "runs").resolve()
    name = f"test-{uuid.uuid4().hex[:10]}"
    storage = storage_url(url, tmp_path)
    try:
        result = tune(
            exps, "tune_shared", "--study", name, "--storage", url, "--trials", "2", "--workers", "2",
            "--pruner", "none", "--runs-dir", str(runs),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        trials = optuna.load_study(study_name=name, storage=storage).trials
        assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
        for trial in trials:
            # Each run process reported its three rounds to the server itself.
            assert sorted(trial.intermediate_values) == [100, 200, 300]
            config, summary = _check_trial_run(Path(trial.user_attrs["run_dir"]), name, trial.number)
            assert trial.value == summary["validation"]["best_score"]
            assert config["run"]["trial"]["storage"] == hide_password(storage)
        password = url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        if password:  # shown nowhere: not in the output, the trials' records or their runs' configs
            secret = f":{password}@"
            records = [json.dumps(t.user_attrs) for t in trials]
            configs = [(Path(t.user_attrs["run_dir"]) / "config.json").read_text() for t in trials]
            assert all(secret not in text for text in [result.stdout, result.stderr, *records, *configs])
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=storage)
