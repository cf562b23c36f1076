"""The command line as a user meets it: one-line errors, non-zero exits, no tracebacks."""

import subprocess

import pytest

from tests.helpers import ROOT, cli


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_shows_experiments():
    result = cli("list", "--fields")
    assert result.returncode == 0, result.stderr
    assert "catch_dense" in result.stdout and "Catch-v0" in result.stdout
    assert "gamma" in result.stdout and "discount factor" in result.stdout


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["run", "catch_dens"], ["unknown experiment 'catch_dens'", "did you mean catch_dense?", "available:"]),
        (["run", "../x"], ["not a plain module name", "available:"]),
        (["run", "a/b"], ["not a plain module name"]),
        (["run", ""], ["no experiment given", "available:"]),
        (["run", "catch_dense", "--set", "gama=0.9"], ["unknown key 'gama'", "valid keys:", "gamma"]),
        (["run", "catch_dense", "--set", "gamma=high"], ["gamma", "expected float"]),
        (["run", "catch_dense", "--set", "gamma=1.5"], ["gamma=1.5", "[0, 1]"]),
        (
            ["run", "catch_dense", "--set", "batch_size=64", "--set", "memory_limit=32"],
            ["batch_size=64", "memory_limit=32"],
        ),
        (["run", "catch_dense", "--steps", "0"], ["STEPS='0'", "positive integer"]),
        (["run", "catch_dense", "--steps", "ten"], ["STEPS='ten'", "positive integer"]),
        (["run", "catch_dense", "--steps", "-5"], ["STEPS='-5'", "positive integer"]),
        (["run", "catch_dense", "--seed", "x"], ["SEED='x'"]),
        (["bogus"], ["invalid choice"]),
    ],
)
def test_bad_input_is_one_line(args, fragments):
    assert_one_line_error(cli(*args), *fragments)


def test_make_passes_errors_through():
    result = subprocess.run(
        ["make", "-s", "experiment", "NAME=nope"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    assert "error: unknown experiment 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_runs_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("run", "catch_dense", "--steps", "10", "--runs-dir", str(blocker / "runs"))
    assert_one_line_error(result, "RUNS folder", "can't be written")


@pytest.mark.parametrize(
    "setting, fragments",
    [
        ("env_id=Catch-v9", ["env_id 'Catch-v9' is not a registered gymnasium env", "did you mean Catch-v0?"]),
        ('env_kwargs={"size":3}', ["size must be an int >= 5"]),
        ('network_kwargs={"depth":3}', ["network 'dense'", "does not build"]),
        ("network=resnet", ["network='resnet' is unknown", "dense"]),
    ],
)
def test_experiment_that_does_not_build_leaves_no_run(tmp_path, setting, fragments):
    result = cli("run", "catch_dense", "--set", setting, "--runs-dir", str(tmp_path))
    assert_one_line_error(result, *fragments)
    assert not list(tmp_path.rglob("*.json")), "nothing is written for an experiment that cannot run"
