"""A real training subprocess stopped by a real signal keeps what it had and exits 128 + signal."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.core import files
from harness.core.registry import resolve_experiment
from harness.core.rundir import STATE_MARKER, STATE_WEIGHTS
from harness.core.signals import SignalCatcher
from harness.kerasrl import checkpoint
from harness.kerasrl.agents import build_agent, make_env
from tests.helpers import ROOT, tiny


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


# --- a signal during a file write waits for the write --------------------------------------------


def _signal_self():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)  # Python runs the handler at the next bytecode: inside the write, here


def test_a_signal_during_an_atomic_write_interrupts_after_the_file_is_in_place(tmp_path):
    target = tmp_path / "data.txt"
    reached = []
    with SignalCatcher() as catcher, catcher.interruptible():
        with files.atomic_path(target) as tmp:
            _signal_self()
            tmp.write_text("whole")
            reached.append("end of write")
        reached.append("after the write")  # not reached: the interrupt comes as the write ends
    assert catcher.signal_number == signal.SIGTERM
    assert reached == ["end of write"] and target.read_text() == "whole"


def test_without_a_write_the_signal_interrupts_at_once():
    reached = []
    with SignalCatcher() as catcher, catcher.interruptible():
        _signal_self()
        reached.append("after the signal")
    assert catcher.signal_number == signal.SIGTERM and reached == []


def test_a_write_that_fails_raises_its_own_error_and_leaves_no_interrupt_behind(tmp_path):
    with SignalCatcher() as catcher, catcher.interruptible():
        with pytest.raises(ValueError), files.atomic_path(tmp_path / "x.txt"):
            _signal_self()
            raise ValueError("the write's own error")
        with files.atomic_path(tmp_path / "y.txt") as tmp:  # a later write ends normally
            tmp.write_text("y")
    assert catcher.signal_number == signal.SIGTERM and (tmp_path / "y.txt").read_text() == "y"


def test_a_checkpoint_cut_by_a_signal_is_written_whole_then_the_run_stops(tmp_path):
    exp = tiny(resolve_experiment("catch_dense"))
    env = make_env(exp, seed=0)
    agent = build_agent(exp, env)
    save_weights = agent.save_weights

    def signalled_save(*args, **kwargs):  # the signal lands inside the checkpoint's HDF5 write
        _signal_self()
        return save_weights(*args, **kwargs)

    agent.save_weights = signalled_save
    directory = tmp_path / "state-0"
    with SignalCatcher() as catcher, catcher.interruptible():
        checkpoint.save(directory, agent, env, {})
        pytest.fail("the signal did not stop the run after the checkpoint")
    env.close()
    assert catcher.signal_number == signal.SIGTERM
    assert (directory / STATE_MARKER).is_file() and (directory / STATE_WEIGHTS).stat().st_size > 0
