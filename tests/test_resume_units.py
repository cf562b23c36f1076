"""The pieces of resume without training: the offset epsilon schedule and which saved weights a
resumed run starts from."""

from __future__ import annotations

import json
import types

import pytest

from harness.core.errors import UserError
from harness.core.rundir import find_resume_point


def _policies(step_offset):
    from harness.kerasrl.compat import EpsGreedyQPolicy, LinearAnnealedPolicy
    from harness.kerasrl.policies import ResumableLinearAnnealedPolicy

    options = dict(attr="eps", value_max=1.0, value_min=0.1, value_test=0.0, nb_steps=1_000)
    stock = LinearAnnealedPolicy(EpsGreedyQPolicy(), **options)
    ours = ResumableLinearAnnealedPolicy(EpsGreedyQPolicy(), step_offset=step_offset, **options)
    agent = types.SimpleNamespace(training=True, step=0)
    stock._set_agent(agent)
    ours._set_agent(agent)
    return stock, ours, agent


@pytest.mark.parametrize("step", [0, 1, 250, 999, 1_000, 5_000])
def test_offset_zero_is_keras_rls_schedule(step):
    stock, ours, agent = _policies(0)
    agent.step = step
    assert ours.get_current_value() == stock.get_current_value()


def test_offset_reads_the_schedule_at_the_global_step():
    stock, ours, agent = _policies(400)
    for local in (0, 100, 600, 2_000):
        agent.step = local + 400
        expected = stock.get_current_value()
        agent.step = local
        assert ours.get_current_value() == pytest.approx(expected, abs=1e-12)
    agent.step = 0
    assert ours.get_current_value() == pytest.approx(1.0 - 0.9 * 0.4)
    agent.training = False
    assert ours.get_current_value() == 0.0  # value_test when not training, as keras-rl


def _run_dir(tmp_path, checkpoints=(), final_steps=None, weights=True):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    for step in checkpoints:
        (run_dir / "checkpoints" / f"weights-{step:09d}.h5").write_bytes(b"")
    (run_dir / "checkpoints" / ".weights-000009999.h5.tmp.h5").write_bytes(b"")  # a half-written file
    if weights:
        (run_dir / "weights.h5").write_bytes(b"")
    if final_steps is not None:
        (run_dir / "summary.json").write_text(json.dumps({"steps": final_steps}))
    return run_dir


def test_final_weights_win_when_newer_than_the_last_checkpoint(tmp_path):
    point = find_resume_point(_run_dir(tmp_path, checkpoints=(100, 200), final_steps=250))
    assert (point.weights.name, point.step, point.source) == ("weights.h5", 250, "final weights")


def test_final_weights_win_a_tie(tmp_path):
    point = find_resume_point(_run_dir(tmp_path, checkpoints=(100, 200), final_steps=200))
    assert (point.weights.name, point.step) == ("weights.h5", 200)


def test_without_a_summary_the_newest_checkpoint(tmp_path):
    # weights.h5 without summary.json: its step is unknown (a crash during evaluation), so unused.
    point = find_resume_point(_run_dir(tmp_path, checkpoints=(900, 1_000, 200)))
    assert (point.weights.name, point.step, point.source) == ("weights-000001000.h5", 1_000, "checkpoint")


def test_nothing_to_resume_from(tmp_path):
    with pytest.raises(UserError, match="nothing to resume from"):
        find_resume_point(_run_dir(tmp_path, weights=False))


def test_malformed_summary_is_a_user_error(tmp_path):
    run_dir = _run_dir(tmp_path, checkpoints=(100,))
    (run_dir / "summary.json").write_text('{"steps": ')
    with pytest.raises(UserError, match="not valid JSON"):
        find_resume_point(run_dir)
