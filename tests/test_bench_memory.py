"""The replay-memory benchmark (`make bench-memory`) measures what it says: a full cave_conv memory of
48x48 uint8 frames. The 400 MB figure itself is a benchmark result, not asserted here."""

import subprocess
import sys

import pytest

from bench import memory as bench_memory
from tests.helpers import ROOT


@pytest.mark.parametrize(
    "kind, memory",
    [("ring", "RingMemory"), ("prioritized", "PrioritizedRingMemory"), ("sequential", "SequentialMemory")],
)
def test_measure_fills_the_cave_conv_memory_exactly(kind, memory):
    result = bench_memory.measure(kind, transitions=1_500, seed=3)
    assert result["memory"] == memory and result["entries"] == 1_500
    assert result["stored_frame"] == "48x48 uint8"
    assert result["payload_mb"] == pytest.approx(1_500 * 48 * 48 / 1e6)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--transitions", "0"], "--transitions='0' is not allowed; expected a positive integer"),
        (["--repeats", "-2"], "--repeats='-2' is not allowed; expected a positive integer"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, fragment):
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert fragment in result.stderr.strip().splitlines()[-1]
