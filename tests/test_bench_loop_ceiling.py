"""bench.loop_ceiling: its bare loop trains on what keras-rl's `fit` trains on, and its CLI."""

import json
import subprocess
import sys

import numpy as np

from bench import loop_ceiling
from tests.helpers import ROOT


def test_bare_loop_stores_and_learns_what_fit_does():
    fit, fit_agent = loop_ceiling.measure("catch_dense", "fit", steps=300, warmup=100)
    # Building the next agent clears the graph, so read this one's weights first.
    fit_weights, fit_memory = fit_agent.model.get_weights(), fit_agent.memory
    bare, bare_agent = loop_ceiling.measure("catch_dense", "bare", steps=300, warmup=100)
    assert fit["steps"] == bare["steps"] == 300
    bare_memory = bare_agent.memory
    assert fit_memory.nb_entries == bare_memory.nb_entries > 300  # episode ends add a transition each
    for field in ("observations", "actions", "rewards", "terminals"):
        np.testing.assert_array_equal(getattr(fit_memory, field), getattr(bare_memory, field))
    # Same transitions, same batches drawn: the trained weights agree.
    for fit_w, bare_w in zip(fit_weights, bare_agent.model.get_weights(), strict=True):
        np.testing.assert_allclose(fit_w, bare_w, rtol=0, atol=1e-6)


def test_cli_prints_json_and_rejects_an_unknown_loop():
    run = [sys.executable, "-m", "bench.loop_ceiling", "catch_dense", "--steps", "50", "--warmup", "20"]
    ok = subprocess.run([*run, "--loop", "bare", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout.strip().splitlines()[-1])
    assert result["loop"] == "bare" and result["steps"] == 50 and result["env_steps_per_second"] > 0
    bad = subprocess.run([*run, "--loop", "own"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--loop" in bad.stderr and "Traceback" not in bad.stderr
