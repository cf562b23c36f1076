"""A 150,000-step catch_dense run completes with the right step count and flat memory (slow)."""

import dataclasses
import json

import numpy as np
import psutil
import pytest

from harness.core.registry import load_experiment
from harness.run.runner import run


class _RssSampler:
    """A run callback factory: records (step, RSS in MB) every `every` steps."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.samples: list[tuple[int, float]] = []

    def __call__(self, run_dir):
        from harness.kerasrl.compat import Callback

        sampler = self

        class Sample(Callback):
            def __init__(self):
                super().__init__()
                self.steps = 0

            def on_step_end(self, step, logs):
                self.steps += 1
                if self.steps % sampler.every == 0:
                    sampler.samples.append((self.steps, psutil.Process().memory_info().rss / 2**20))

        return Sample()


@pytest.mark.slow
def test_150k_steps_complete_with_flat_memory(tmp_path, capsys):
    sampler = _RssSampler(every=5_000)
    exp = dataclasses.replace(
        load_experiment("catch_dense"),
        nb_steps=150_000,
        eval_episodes=2,
        checkpoint_interval=50_000,
        callbacks=[sampler],
    )
    run_dir = run(exp, tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 150_000 and summary["interrupted"] is False
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["nb_steps"][-1] <= 150_000 and sum(metrics["nb_episode_steps"]) <= 150_000
    # The replay memory (50,000 transitions) is full from step 50,000 on: RSS must stay flat after.
    after_full = [rss for step, rss in sampler.samples if step > exp.memory_limit + 5_000]
    thirds = len(after_full) // 3
    drift = np.median(after_full[-thirds:]) - np.median(after_full[:thirds])
    with capsys.disabled():
        print(
            f"\nRSS MB by step: {[(s, round(r, 1)) for s, r in sampler.samples]}; "
            f"drift after full: {drift:+.1f} MB; steps/s {summary['steps_per_second']}"
        )
    assert drift < 10.0
