"""The pieces of resume without training: the offset epsilon schedule and which saved weights a
resumed run starts from."""

from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
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


# ---------------------------------------------------------------------------------------------
# Checkpoint folders: the newest complete one, a truncated or half-written newer one skipped


def _state_dir(run_dir, step, complete=True, truncate=False):
    folder = run_dir / "checkpoints" / f"state-{step:09d}"
    folder.mkdir(parents=True)
    (folder / "state.npz").write_bytes(b"x" * 100)
    (folder / "weights.h5").write_bytes(b"w" * 10)
    if complete:
        (folder / "complete.json").write_text(json.dumps({"files": {"state.npz": 100, "weights.h5": 10}}))
    if truncate:
        (folder / "state.npz").write_bytes(b"x" * 40)
    return folder


@pytest.mark.parametrize("newest", ["truncated", "half-written"])
def test_an_incomplete_newest_checkpoint_is_skipped_with_a_warning(tmp_path, newest):
    run_dir = _run_dir(tmp_path, checkpoints=(100,), final_steps=900)
    older = _state_dir(run_dir, 300)
    _state_dir(run_dir, 600, complete=newest != "half-written", truncate=newest == "truncated")
    point = find_resume_point(run_dir)
    # A complete state wins over newer weights-only files: it resumes exactly.
    assert (point.state, point.step, point.weights) == (older, 300, older / "weights.h5")
    (warning,) = point.skipped
    reason = "state.npz has 40 of its 100 bytes" if newest == "truncated" else "no complete.json"
    assert warning.startswith("warning: checkpoint ") and reason in warning and "\n" not in warning


def test_the_temporary_folder_a_kill_during_a_checkpoint_write_leaves_is_ignored(tmp_path):
    """A SIGKILL while a checkpoint is written leaves its temporary `.state-<step>.*` folder (the
    rename into `state-<step>/` comes last): resume takes the newest complete checkpoint, silently."""
    run_dir = _run_dir(tmp_path, final_steps=None, weights=False)
    older = _state_dir(run_dir, 300)
    partial = run_dir / "checkpoints" / ".state-000000600.k3j2"
    partial.mkdir()
    (partial / "weights.h5").write_bytes(b"w" * 10)
    point = find_resume_point(run_dir)
    assert (point.state, point.step) == (older, 300) and not point.skipped


# ---------------------------------------------------------------------------------------------
# Memories and random generators through a checkpoint's formats (npz without pickle, strict JSON)


def _through_files(tmp_path, memory):
    import numpy as np

    arrays, meta = memory.get_state()
    np.savez(tmp_path / "m.npz", **arrays)
    (tmp_path / "m.json").write_text(json.dumps(meta, allow_nan=False))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}, json.loads((tmp_path / "m.json").read_text())


def _filled(memory, rng, steps=300):
    for t in range(steps):
        frame = rng.integers(0, 256, size=(6, 6), dtype=np.uint8)
        memory.append(frame, int(rng.integers(2)), float(rng.random()), bool(t % 37 == 36))
    return memory


@pytest.mark.parametrize("prioritized", [False, True])
def test_a_memory_restored_from_its_state_samples_as_the_original(tmp_path, prioritized):
    import random

    from harness.kerasrl.memory import RingMemory
    from harness.kerasrl.prioritized import PrioritizedRingMemory

    def make():
        if prioritized:
            return PrioritizedRingMemory(limit=200, window_length=4, seed=5, beta_steps=1000)
        return RingMemory(limit=200, window_length=4)

    original = _filled(make(), np.random.default_rng(0))
    if prioritized:
        original.sample_batch(8, 0.9, 3, step=10)  # flushes the tree; then some pending priorities again
        original.update_priorities(np.arange(8) * 3, np.linspace(0.1, 2.0, 8))
        assert original._pending
    arrays, meta = _through_files(tmp_path, original)
    assert arrays["observations"].dtype == np.uint8
    restored = make()
    restored.set_state(arrays, meta)
    probe = np.full((6, 6), 7, dtype=np.uint8)
    assert all(np.array_equal(a, b) for a, b in zip(original.get_recent_state(probe), restored.get_recent_state(probe)))
    for memory in (original, restored):
        random.seed(3)
        np.random.seed(3)
        memory.batch = memory.sample_batch(16, 0.9, 3, **({"step": 50} if prioritized else {}))
    for a, b in zip(original.batch, restored.batch):
        assert (a is None and b is None) or np.array_equal(a, b)


def test_random_states_round_trip_through_json_with_cave_flicker():
    import random

    from harness.core.registry import load_experiment
    from harness.kerasrl.agents import make_env
    from harness.kerasrl.checkpoint import random_states, restore_random_states

    exp = dataclasses.replace(load_experiment("cave_conv"), env_kwargs={"flicker": 0.5})
    env, again = make_env(exp, seed=1), make_env(exp, seed=99)
    env.reset()
    saved = json.loads(json.dumps(random_states(env), allow_nan=False))

    def draws(which):
        frames = [which.reset().tobytes()] + [which.step(t % 2)[0].tobytes() for t in range(30)]
        return random.random(), np.random.random(), int(which.action_space.sample()), frames

    first = draws(env)  # the streams go on from the saved states
    restore_random_states(again, saved)  # another seed's env, and the global generators, put back
    assert draws(again) == first
