"""A real training subprocess stopped by a real signal keeps what it had and exits 128 + signal."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT


def _start(runs_dir, steps):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "catch_dense",
        "--steps",
        str(steps),
        "--runs-dir",
        str(runs_dir),
        "--set",
        "nb_steps_warmup=200",
        "--set",
        "log_interval=100",
        "--set",
        "checkpoint_interval=500",
    ]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(process, fragment, timeout=300):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if fragment in line:
            return seen
    process.kill()
    _, err = process.communicate()
    pytest.fail(f"never saw {fragment!r}; output: {''.join(seen)} stderr: {err[-2000:]}")


@pytest.mark.parametrize(
    "sig, code, wait_for",
    [
        (signal.SIGINT, 130, "step      700/"),  # mid-training, with episodes and a checkpoint behind it
        (signal.SIGTERM, 143, "step      700/"),
        (signal.SIGINT, 130, "training for"),  # before the first episode ends
    ],
)
def test_signal_stops_run_and_keeps_files(tmp_path, sig, code, wait_for):
    process = _start(tmp_path, steps=1_000_000)
    _wait_for_line(process, wait_for)
    sent = time.monotonic()
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the run did not stop after the signal")
    stopped_in = time.monotonic() - sent
    assert process.returncode == code, err
    assert stopped_in < 15
    assert "Traceback" not in err
    (run_dir,) = (tmp_path / "catch_dense").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["signal"] == sig.name
    assert 0 <= summary["steps"] < 1_000_000 and summary["eval"] is None
    assert (run_dir / "weights.h5").stat().st_size > 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "episode_reward" in metrics
    if wait_for != "training for":
        # The signal lands right after the progress line of step 700 (before keras-rl counts it).
        assert summary["steps"] >= 699 and summary["episodes"] == len(metrics["episode_reward"]) > 0
        assert list((run_dir / "checkpoints").glob("state-*/complete.json"))
