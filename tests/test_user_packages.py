"""A user's own game and experiments, outside this project: gymnasium's "pkg.module:Name-v0" env
ids and an EXPERIMENTS folder, trained through the CLI, a sweep, and `make`."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GAME = '''
"""A corridor of 5 cells: step right (1) or left (0); the right end pays 1 and ends the episode."""
import gymnasium
import numpy as np
from gymnasium import spaces


class Corridor(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, length=5, render_mode=None):
        self.length = length
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, shape=(length,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.position = 0

    def _obs(self):
        obs = np.zeros(self.length, dtype=np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = int(self.np_random.integers(self.length - 1))
        return self._obs(), {}

    def step(self, action):
        self.position = max(0, min(self.length - 1, self.position + (1 if action == 1 else -1)))
        done = self.position == self.length - 1
        return self._obs(), float(done), done, False, {}

    def render(self):
        frame = np.zeros((8, 8 * self.length, 3), dtype=np.uint8)
        frame[:, 8 * self.position : 8 * self.position + 8] = 255
        return frame


if "Corridor-v0" not in gymnasium.registry:
    gymnasium.register(id="Corridor-v0", entry_point="my_games.corridor:Corridor", max_episode_steps=20)
'''

EXPERIMENT = '''
"""My corridor agent: a small dense network."""
from harness import Experiment

EXPERIMENT = Experiment(
    env_id="my_games.corridor:Corridor-v0",
    network="dense",
    network_kwargs={"hidden": [16]},
    memory_limit=1_000,
    nb_steps_warmup=50,
    eps_anneal_steps=200,
    gamma=0.9,
    optimizer="adam",
    learning_rate=1e-3,
    nb_steps=300,
    eval_episodes=2,
    checkpoint_interval=100,
)
'''


@pytest.fixture
def user_repo(tmp_path):
    """A user's repository: a package with their game and a folder of their experiments."""
    (tmp_path / "my_games").mkdir()
    (tmp_path / "my_games" / "__init__.py").write_text("")
    (tmp_path / "my_games" / "corridor.py").write_text(textwrap.dedent(GAME))
    (tmp_path / "my_experiments").mkdir()
    (tmp_path / "my_experiments" / "corridor_dqn.py").write_text(textwrap.dedent(EXPERIMENT))
    return tmp_path


def _harness(cwd, *args, env=None, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_a_users_game_and_experiment_train_through_the_cli(user_repo):
    listed = _harness(user_repo, "--experiments", "my_experiments", "list")
    assert listed.returncode == 0 and re.search(r"^corridor_dqn +my_games\.corridor:Corridor-v0", listed.stdout, re.M)
    assert "catch_dense" in listed.stdout  # the project's own stay available

    result = _harness(user_repo, "--experiments", "my_experiments", "run", "corridor_dqn", "--runs-dir", "runs")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (run_dir,) = (user_repo / "runs" / "corridor_dqn").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 300 and summary["eval"]["episodes"] == 2 and not summary["interrupted"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["experiment"]["env_id"] == "my_games.corridor:Corridor-v0"
    assert (run_dir / "demo.gif").is_file()  # the env's rgb_array render, found through its module


@pytest.mark.slow  # make test's time: the CLI test trains the same user folder in one run
def test_a_sweep_passes_the_users_folder_to_its_runs(user_repo):
    result = _harness(
        user_repo,
        "sweep",
        "corridor_dqn",
        "--seeds",
        "2",
        "--workers",
        "2",
        "--runs-dir",
        "runs",
        env={"DQN_HARNESS_EXPERIMENTS": str(user_repo / "my_experiments")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2/2 runs finished" in result.stdout
    assert len(list((user_repo / "runs" / "corridor_dqn").iterdir())) == 2


def test_make_takes_an_experiments_folder(user_repo, tmp_path):
    """`make list EXPERIMENTS=dir` from the project root (the stamp exists: no reinstall)."""
    result = subprocess.run(
        ["make", "-s", "list", f"EXPERIMENTS={user_repo / 'my_experiments'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "corridor_dqn" in result.stdout, result.stderr


def test_mistakes_in_a_users_setup_are_one_line_errors(user_repo):
    (user_repo / "more").mkdir()
    (user_repo / "more" / "catch_dense.py").write_text(textwrap.dedent(EXPERIMENT))
    cases = {
        ("--experiments", "more", "list"): "experiment 'catch_dense' is defined twice",
        ("--experiments", "nowhere", "list"): "EXPERIMENTS='",
        ("run", "catch_dense", "--set", "env_id=no_such_pkg.games:Game-v0", "--runs-dir", "runs"): (
            "module 'no_such_pkg.games' can't be imported"
        ),
        ("run", "catch_dense", "--set", "env_id=my_games.corridor:Corridr-v0", "--runs-dir", "runs"): (
            "is not a registered gymnasium env"
        ),
    }
    for args, message in cases.items():
        result = _harness(user_repo, *args)
        assert result.returncode == 2, (args, result.stderr)
        # TensorFlow's own start-up notices may come first; ours is the one error line, no traceback.
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("error")]
        assert message in line and "Traceback" not in result.stderr, (args, result.stderr)
    assert not (user_repo / "runs").exists()  # nothing was written for a bad env id
