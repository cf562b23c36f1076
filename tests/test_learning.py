"""Learning checks at the experiments' real budgets: minutes each, so marked slow (`make test-all`)."""

import json

import pytest

from harness.core.registry import load_experiment
from harness.run.runner import run


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_catch_dense_learns(tmp_path, seed):
    exp = load_experiment("catch_dense")
    import dataclasses

    run_dir = run(dataclasses.replace(exp, seed=seed), tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["eval"]["score"] >= 0.95
    assert summary["wall_seconds"] < 180
