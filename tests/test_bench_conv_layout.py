"""The layout, thread and fusion benchmark (`python -m bench.conv_layout`) times the experiment's own
conv network in either layout; its fused next-state passes compute what the two separate passes do.
The timings themselves are benchmark results, not asserted here."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.conv_layout import _network, next_state_q
from harness.kerasrl.agents import new_session
from harness.kerasrl.compat import keras, tf
from tests.helpers import ROOT


def run(*args: str, onednn: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if onednn is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    return subprocess.run(
        [sys.executable, "-m", "bench.conv_layout", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_both_layouts_train_the_experiments_network():
    # catch_conv's network (16x16 frames): small enough for the test budget, a conv network all the same.
    result = run("catch_conv", "--layout", "nchw", "--intra", "1", "--inter", "2", "--repeats", "3", "--json")
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["layout"] == "nchw" and (measured["intra"], measured["inter"]) == (1, 2)
    assert measured["onednn"] is True  # the experiment's choice for a conv network
    assert set(measured["median_ms"]) == {"train", "act"}
    assert all(ms > 0 for ms in measured["median_ms"].values())


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["catch_dense"], "bench.conv_layout times conv networks; catch_dense has network='dense'"),
        (["--layout", "nwhc"], "invalid choice: 'nwhc'"),
        (["--intra", "0"], "--intra='0' is not allowed; expected a positive integer"),
        (["--next-states", "fused"], "invalid choice: 'fused'"),
    ],
)
def test_bad_input_is_a_one_line_error(args, fragment):
    result = run(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert fragment in result.stderr.strip().splitlines()[-1]


def test_fused_next_states_train_the_experiments_network():
    result = run("catch_conv", "--next-states", "grouped", "--repeats", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["next_states"] == "grouped"


def test_fused_next_states_in_channels_first_is_a_one_line_error():
    result = run("catch_conv", "--layout", "nchw", "--next-states", "shared-first", "--repeats", "1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--next-states shared-first is built for --layout nhwc" in result.stderr.strip().splitlines()[-1]


def test_channels_first_without_onednn_is_a_one_line_error():
    result = run("catch_conv", "--layout", "nchw", "--repeats", "1", onednn="0")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--layout nchw needs oneDNN" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("mode", ["grouped", "shared-first"])
def test_fused_next_state_passes_match_the_separate_ones(mode):
    new_session(0)
    sizes = {"filters": [4, 8], "kernel_sizes": [3, 3], "strides": [2, 2], "hidden": 16}
    online = _network(keras, sizes, (12, 12, 3), 5, "nhwc")
    target = _network(keras, sizes, (12, 12, 3), 5, "nhwc")
    state1 = tf.compat.v1.placeholder(tf.float32, (None, 12, 12, 3))
    separate = next_state_q(tf, online, target, state1, "separate")
    fused = next_state_q(tf, online, target, state1, mode)
    frames = np.random.default_rng(1).random((6, 12, 12, 3), dtype=np.float32)
    session = tf.compat.v1.keras.backend.get_session()
    (online_q, target_q), (fused_online, fused_target) = session.run([separate, fused], {state1: frames})
    assert not np.allclose(online_q, target_q)  # two networks: a swap of the halves would show
    np.testing.assert_allclose(fused_online, online_q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused_target, target_q, rtol=1e-5, atol=1e-6)
