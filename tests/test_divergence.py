"""A diverged run says so, and every JSON file the harness writes is strict JSON."""

import json
import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from harness.core import files
from harness.core.registry import load_experiment
from harness.core.schema import Experiment, apply_overrides
from tests.helpers import ROOT, TINY

TINY_SET = [f"{k}={v}" for k, v in TINY.items()]


def _reject(constant):
    raise ValueError(f"non-strict JSON constant {constant}")


def strict_load(path):
    """json.loads as a strict parser would: NaN, Infinity and -Infinity literals are errors."""
    return json.loads(path.read_text(), parse_constant=_reject)


def _all_json(run_dir):
    found = sorted(run_dir.rglob("*.json"))
    assert found
    return {p.name: strict_load(p) for p in found}


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    runs = tmp_path_factory.mktemp("diverged")
    # Checkpoints wait for an episode end; a warm-up of 300 steps has a few before the first train step.
    settings = [*TINY_SET, "nb_steps=2000", "nb_steps_warmup=300", "checkpoint_interval=100"]
    settings += ["optimizer=adam", "learning_rate=1e30"]
    command = [sys.executable, "-m", "harness", "run", "catch_dense", "--runs-dir", str(runs)]
    result = subprocess.run(
        command + [a for kv in settings for a in ("--set", kv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    (run_dir,) = (runs / "catch_dense").iterdir()
    return result, run_dir


def test_a_diverged_run_stops_with_a_one_line_error(diverged):
    result, run_dir = diverged
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error")]
    summary = strict_load(run_dir / "summary.json")
    step, metric = summary["diverged"]["step"], summary["diverged"]["metric"]
    assert line.startswith(f"error: training diverged at step {step}: {metric} is ")
    assert metric in ("loss", "mean_q") and step < 2000 and summary["steps"] == step
    assert summary["eval"] is None and summary["interrupted"] is False
    assert not (run_dir / "weights.h5").exists()  # no NaN weights saved as final weights
    # Training stopped at that step: the metrics end there.
    metrics = strict_load(run_dir / "metrics.json")
    assert metrics["nb_steps"] and max(metrics["nb_steps"]) <= step


def test_the_checkpoints_from_before_it_are_finite_and_resumable(diverged):
    _, run_dir = diverged
    summary = strict_load(run_dir / "summary.json")
    from harness.core.rundir import list_states

    checkpoints = [folder / "weights.h5" for _, folder in list_states(run_dir)]
    assert checkpoints, "a checkpoint every 100 steps is due before the divergence"
    for path in checkpoints:
        assert int(path.parent.name.split("-")[1]) < summary["diverged"]["step"]
        with h5py.File(path) as stored:
            arrays = []
            stored.visititems(lambda n, o, out=arrays: out.append(o[()]) if isinstance(o, h5py.Dataset) else None)
        assert arrays and all(np.isfinite(a).all() for a in arrays if a.dtype.kind == "f")
    from harness.core.rundir import find_resume_point

    point = find_resume_point(run_dir)
    assert point.source == "checkpoint" and point.weights == checkpoints[-1] and point.state == checkpoints[-1].parent


def test_every_json_file_of_a_run_is_strict(diverged):
    _, run_dir = diverged
    parsed = _all_json(run_dir)
    assert {"config.json", "metrics.json", "summary.json"} <= set(parsed)
    # The loss before training starts is NaN: written as null.
    assert None in parsed["metrics.json"]["loss"]


def test_strict_json_replaces_non_finite_numbers(tmp_path):
    data = {
        "nan": float("nan"),
        "inf": math.inf,
        "ninf": -math.inf,
        "np": np.float32("nan"),
        "list": [1.0, np.float64(math.inf)],
        "n": np.int64(3),
    }
    files.write_json(tmp_path / "x.json", data)
    assert strict_load(tmp_path / "x.json") == {
        "nan": None,
        "inf": "Infinity",
        "ninf": "-Infinity",
        "np": None,
        "list": [1.0, "Infinity"],
        "n": 3,
    }


def test_an_infinite_setting_survives_config_json(tmp_path):
    exp = apply_overrides(load_experiment("catch_dense"), ["delta_clip=inf"])
    files.write_json(tmp_path / "config.json", {"experiment": exp.to_dict()})
    stored = strict_load(tmp_path / "config.json")["experiment"]
    assert stored["delta_clip"] == "Infinity"
    assert Experiment.from_dict(stored).delta_clip == math.inf
    # Runs written before strict JSON hold the Infinity literal; they still read back.
    assert Experiment.from_dict({**stored, "delta_clip": math.inf}).delta_clip == math.inf
