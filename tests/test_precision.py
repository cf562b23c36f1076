"""Arithmetic settings: oneDNN chosen per experiment, bfloat16 mixed precision, both reproducible."""

import json
import subprocess
import sys

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.core.registry import load_experiment
from harness.core.schema import apply_overrides, onednn_wanted
from tests.helpers import ROOT, TINY

TINY_SET = [f"{k}={v}" for k, v in TINY.items()]


def _cli_run(name, runs, *extra, env=None):
    import os

    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    command = [sys.executable, "-m", "harness", "run", name, "--runs-dir", str(runs)]
    command += [a for kv in [*TINY_SET, *extra] for a in ("--set", kv)]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**environment, **(env or {})}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (runs / name).iterdir()
    return run_dir


def test_onednn_is_on_for_conv_networks_and_off_for_dense():
    assert onednn_wanted(load_experiment("cave_conv")) and onednn_wanted(load_experiment("catch_conv"))
    assert not onednn_wanted(load_experiment("catch_dense"))
    assert onednn_wanted(apply_overrides(load_experiment("catch_dense"), ["onednn=true"]))
    assert not onednn_wanted(apply_overrides(load_experiment("cave_conv"), ["onednn=false"]))


@pytest.mark.slow  # make test's time: bfloat16 is off by default; cave_conv's same-seed test covers oneDNN
def test_same_seed_same_numbers_with_onednn_and_bfloat16(tmp_path):
    """Two same-seed catch_conv runs through the CLI (oneDNN on: a conv network; bfloat16 layers)
    log identical metrics and save identical weights; the run records that oneDNN was on."""
    import h5py

    first = _cli_run("catch_conv", tmp_path / "a", "precision=bfloat16")
    second = _cli_run("catch_conv", tmp_path / "b", "precision=bfloat16")
    config = json.loads((first / "config.json").read_text())
    assert config["run"]["onednn"] is True and config["experiment"]["precision"] == "bfloat16"
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (first, second)]
    for key in metrics[0]:
        if key != "duration":
            assert json.dumps(metrics[0][key]) == json.dumps(metrics[1][key]), key

    def weights(run_dir):
        out = []
        with h5py.File(run_dir / "weights.h5") as f:
            f.visititems(lambda n, o: out.append(o[()]) if isinstance(o, h5py.Dataset) else None)
        return out

    for a, b in zip(weights(first), weights(second), strict=True):
        assert a.dtype == np.float32  # mixed precision keeps the variables in float32
        np.testing.assert_array_equal(a, b)
    # play rebuilds the bfloat16 network from model.json and reproduces the evaluation.
    played = subprocess.run(
        [sys.executable, "-m", "harness", "play", str(first)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert played.returncode == 0 and "(identical)" in played.stdout, played.stdout + played.stderr


def test_bfloat16_layers_compute_in_bfloat16_with_a_float32_head():
    from harness.kerasrl.models import build_network

    model = build_network(
        "conv",
        (16, 16, 1),
        3,
        {"filters": [8], "kernel_sizes": [3], "strides": [2], "hidden": 16},
        precision="bfloat16",
    )
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers}
    assert policies["q_values"] == "float32" and list(policies.values())[0] == "mixed_bfloat16"
    assert model.output.dtype.name == "float32"
    plain = build_network("conv", (16, 16, 1), 3, {"filters": [8], "kernel_sizes": [3], "strides": [2], "hidden": 16})
    assert {layer.dtype_policy.name for layer in plain.layers} == {"float32"}


def test_precision_is_checked():
    with pytest.raises(UserError, match="precision='float16' is not allowed; expected one of float32, bfloat16"):
        apply_overrides(load_experiment("catch_dense"), ["precision=float16"])


def test_train_step_benchmark_times_every_piece():
    result = subprocess.run(
        [sys.executable, "-m", "bench.train_step", "catch_dense", "--repeats", "3", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    timed = json.loads(result.stdout.strip().splitlines()[-1])["median_ms"]
    assert set(timed) == {"act", "target(s1)", "online(s1)", "loss", "train"}
    assert all(ms > 0 for ms in timed.values())
