"""The layout and thread benchmark (`python -m bench.conv_layout`) times the experiment's own conv
network in either layout; the timings themselves are benchmark results, not asserted here."""

import json
import os
import subprocess
import sys

import pytest

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
    ],
)
def test_bad_input_is_a_one_line_error(args, fragment):
    result = run(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert fragment in result.stderr.strip().splitlines()[-1]


def test_channels_first_without_onednn_is_a_one_line_error():
    result = run("catch_conv", "--layout", "nchw", "--repeats", "1", onednn="0")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--layout nchw needs oneDNN" in result.stderr.strip().splitlines()[-1]
