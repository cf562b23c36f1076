"""Exact resume: a run resumed from its newest complete checkpoint gives the uninterrupted run's
episodes, metrics.json and final weights, bit for bit.

The real thing: `python -m harness run ...` in a subprocess, killed with SIGKILL once a given number
of checkpoints is complete (so at some step after it, mid-episode or mid-write), then resumed. The
cheaper in-process checks resume a finished run from its newest checkpoint (before its last step)
to the same budget, which must end where the run ended.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.core.registry import load_experiment, with_overrides
from harness.core.rundir import list_states
from harness.run.runner import run
from tests.helpers import ROOT

CATCH = {
    "nb_steps_warmup": 100,
    "memory_limit": 1_000,
    "eps_anneal_steps": 500,
    "checkpoint_interval": 150,
    "keep_checkpoints": 2,
    "eval_episodes": 1,
    "log_interval": 100,
}
CAVE = {**CATCH, "nb_steps_warmup": 60, "checkpoint_interval": 40, "train_interval": 2, "eps_anneal_steps": 200}


def _sets(settings: dict) -> list[str]:
    return [f"{key}={json.dumps(value)}" for key, value in settings.items()]


def _exp(name: str, steps: int, settings: dict):
    return with_overrides(load_experiment(name), 0, steps, _sets(settings))


def _only_run(runs: Path, name: str) -> Path:
    (run_dir,) = (runs / name).iterdir()
    return run_dir


def _metrics(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("duration")  # wall-clock seconds per episode
    return metrics


def _weights(path: Path) -> list[np.ndarray]:
    import h5py

    arrays: list[np.ndarray] = []
    with h5py.File(path, "r") as stored:
        stored.visititems(lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def _same_weights(ours: Path, theirs: Path) -> bool:
    mine, other = _weights(ours), _weights(theirs)
    return len(mine) == len(other) > 0 and all(np.array_equal(a, b) for a, b in zip(mine, other))


def assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    assert _metrics(resumed) == _metrics(uninterrupted)
    assert _same_weights(resumed / "weights.h5", uninterrupted / "weights.h5")
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (resumed, uninterrupted))
    assert summary["steps"] == expected["steps"] and summary["episodes"] == expected["episodes"]
    assert summary["eval"]["returns"] == expected["eval"]["returns"]
    if expected["validation"] is not None:
        for key in ("history", "best_step", "best_score"):  # not "seconds": wall-clock
            assert summary["validation"][key] == expected["validation"][key], key
        assert _same_weights(resumed / "best_weights.h5", uninterrupted / "best_weights.h5")


def _resume_in_process(name: str, steps: int, settings: dict, parent: Path, runs: Path) -> Path:
    log = io.StringIO()
    resumed = run(_exp(name, steps, settings), runs, command=["test"], log=log, resume_from=parent)
    assert "exact: networks, optimizer, replay memory" in log.getvalue(), log.getvalue()
    return resumed


# ---------------------------------------------------------------------------------------------
# SIGKILL of a real run


def _kill_after_checkpoints(name: str, steps: int, settings: dict, runs: Path, checkpoints: int) -> Path:
    from harness.kerasrl import compat

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_ENABLE_ONEDNN_OPTS": "1" if compat.ONEDNN else "0"}
    args = [sys.executable, "-m", "harness", "run", name, "--steps", str(steps), "--seed", "0", "--runs-dir", str(runs)]
    for assignment in _sets(settings):
        args += ["--set", assignment]
    errors = runs.parent / f"{runs.name}-stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            folders = list((runs / name).glob("*/checkpoints/state-*/complete.json"))
            # keep_checkpoints prunes old folders: count the newest's step instead of the folders.
            if (
                folders
                and max(int(f.parent.name.split("-")[1]) for f in folders)
                >= checkpoints * settings["checkpoint_interval"]
            ):
                break
            time.sleep(0.02)
        assert process.poll() is None, f"the run ended before it was killed: {errors.read_text()[-2000:]}"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    run_dir = _only_run(runs, name)
    assert not (run_dir / "summary.json").exists()
    return run_dir


@pytest.mark.parametrize(
    "checkpoints, truncate",
    [
        (2, False),
        pytest.param(1, False, marks=pytest.mark.slow),
        pytest.param(5, True, marks=pytest.mark.slow),
    ],
)
def test_catch_killed_with_sigkill_resumes_exactly(tmp_path, checkpoints, truncate):
    steps, settings = 900, {**CATCH, "validation_interval": 300, "validation_episodes": 1}
    uninterrupted = run(_exp("catch_dense", steps, settings), tmp_path / "full", command=["test"], log=io.StringIO())
    killed = _kill_after_checkpoints("catch_dense", steps, settings, tmp_path / "killed", checkpoints)
    if truncate:
        # The newest complete checkpoint cut short afterwards: skipped with a warning, the one
        # before it used, and the run still comes out the same.
        newest = list_states(killed)[-1][1] / "state.npz"
        newest.write_bytes(newest.read_bytes()[:1000])
    log = io.StringIO()
    resumed = run(
        _exp("catch_dense", steps, settings), tmp_path / "resumed", command=["t"], log=log, resume_from=killed
    )
    if truncate:
        assert "is incomplete (state.npz has 1000 of its" in log.getvalue()
    assert_same_run(resumed, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("checkpoints", [2, 6])
def test_cave_killed_with_sigkill_resumes_exactly(tmp_path, checkpoints):
    steps = 400
    uninterrupted = run(_exp("cave_conv", steps, CAVE), tmp_path / "full", command=["test"], log=io.StringIO())
    killed = _kill_after_checkpoints("cave_conv", steps, CAVE, tmp_path / "killed", checkpoints)
    resumed = _resume_in_process("cave_conv", steps, CAVE, killed, tmp_path / "resumed")
    assert_same_run(resumed, uninterrupted)


# ---------------------------------------------------------------------------------------------
# In-process: a run that crashed after its last checkpoint (a finished run without its summary),
# resumed to the same budget


@pytest.mark.parametrize(
    "name, steps, settings",
    [
        ("catch_dense", 700, {**CATCH, "prioritized_replay": True, "n_step": 3}),
        pytest.param("cave_conv", 300, {**CAVE, "prioritized_replay": True}, marks=pytest.mark.slow),
        ("catch_dense", 450, {**CATCH, "noisy": True}),
        pytest.param("catch_dense", 700, {**CATCH, "target_model_update": 0.01}, marks=pytest.mark.slow),
        ("catch_dense", 500, {**CATCH, "recurrent": True, "lstm_units": 16, "sequence_length": 4, "burn_in": 2}),
    ],
    ids=["catch-per-nstep", "cave-per", "catch-noisy", "catch-soft-target", "catch-recurrent"],
)
def test_resume_from_a_finished_runs_checkpoint_ends_where_it_ended(tmp_path, name, steps, settings):
    parent = run(_exp(name, steps, settings), tmp_path / "parent", command=["test"], log=io.StringIO())
    assert list_states(parent), "no checkpoint was taken"
    crashed = _without_summary(parent, tmp_path / "crashed")
    resumed = _resume_in_process(name, steps, settings, crashed, tmp_path / "resumed")
    assert_same_run(resumed, parent)


def _without_summary(run_dir: Path, copy: Path) -> Path:
    """A copy of `run_dir` as a crash after its newest checkpoint leaves it (no summary.json)."""
    shutil.copytree(run_dir, copy)
    (copy / "summary.json").unlink()
    return copy


def test_checkpoint_memory_false_resumes_with_a_new_warm_up(tmp_path):
    settings = {**CATCH, "checkpoint_memory": False}
    parent = run(_exp("catch_dense", 500, settings), tmp_path / "parent", command=["test"], log=io.StringIO())
    step, newest = list_states(parent)[-1]
    with np.load(newest / "state.npz", allow_pickle=False) as stored:
        assert not [name for name in stored.files if name.startswith("memory_")]
        assert [name for name in stored.files if name.startswith("optimizer_")]
    log = io.StringIO()
    resumed = run(_exp("catch_dense", 800, settings), tmp_path / "r", command=["t"], log=log, resume_from=parent)
    assert "not exact: the checkpoint has no replay memory" in log.getvalue()
    metrics = _metrics(resumed)
    # The parent's episodes come first; the resumed run's train again only after a new warm-up.
    parent_episodes = [n for n in _metrics(parent)["nb_steps"] if n <= step]
    assert metrics["nb_steps"][: len(parent_episodes)] == parent_episodes
    new = list(zip(metrics["nb_steps"][len(parent_episodes) :], metrics["loss"][len(parent_episodes) :]))
    assert new and all(loss is None for end, loss in new if end <= step + CATCH["nb_steps_warmup"])
    assert json.loads((resumed / "summary.json").read_text())["steps"] == 800


def test_a_copied_checkpoint_folder_without_its_marker_is_skipped(tmp_path):
    parent = run(_exp("catch_dense", 500, CATCH), tmp_path / "parent", command=["test"], log=io.StringIO())
    (older_step, older), (newest_step, newest) = list_states(parent)[-2:]
    (newest / "complete.json").unlink()
    log = io.StringIO()
    crashed = _without_summary(parent, tmp_path / "crashed")
    newest = crashed / newest.relative_to(parent)
    resumed = run(_exp("catch_dense", 500, CATCH), tmp_path / "r", command=["t"], log=log, resume_from=crashed)
    assert f"checkpoint {newest} is incomplete (no complete.json" in log.getvalue()
    assert json.loads((resumed / "summary.json").read_text())["resumed_at_step"] == older_step < newest_step
    assert_same_run(resumed, parent)
