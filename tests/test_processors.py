"""The `frames` processor: downsampling, uint8 storage, float32 [0, 1] channels-last batches, reward
clipping, its errors, and what the replay memories keep when an agent uses it."""

import numpy as np
import pytest

from harness.core.errors import UserError
from harness.kerasrl.processors import PROCESSORS, FrameProcessor, build_processor


def test_downsampling_averages_blocks_rounding_half_up():
    frame = np.zeros((4, 6), dtype=np.uint8)
    frame[0:2, 0:2] = [[10, 20], [30, 40]]  # mean 25
    frame[0:2, 2:4] = [[0, 1], [0, 0]]  # 0.25 -> 0
    frame[0:2, 4:6] = [[1, 1], [0, 0]]  # 0.5 -> 1 (half up)
    frame[2:4, 0:2] = [[255, 255], [255, 254]]  # 254.75 -> 255
    frame[2:4, 2:4] = [[3, 4], [4, 4]]  # 3.75 -> 4
    frame[2:4, 4:6] = 7  # 7
    out = FrameProcessor(size=[2, 3]).process_observation(frame)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[25, 0, 1], [255, 4, 7]])


def test_cave_frame_is_stored_as_a_fresh_48x48_uint8_array():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(96, 96), dtype=np.uint8)
    out = FrameProcessor(size=48).process_observation(frame)
    assert out.shape == (48, 48) and out.dtype == np.uint8
    # Nothing in the replay memory may keep the env's 96x96 frame alive.
    assert out.base is None and not np.shares_memory(out, frame)
    expected = np.floor(frame.reshape(48, 2, 48, 2).astype(np.float64).mean(axis=(1, 3)) + 0.5)
    np.testing.assert_array_equal(out, expected)


def test_float_board_maps_to_uint8_and_back_exactly():
    board = np.zeros((16, 16), dtype=np.float32)
    board[3, 5] = board[15, 7:10] = 1.0
    processor = build_processor("frames", {"size": None, "obs_low": 0.0, "obs_high": 1.0})
    stored = processor.process_observation(board)
    assert stored.dtype == np.uint8 and set(np.unique(stored)) == {0, 255}
    batch = processor.process_state_batch(np.array([[stored]]))
    assert batch.shape == (1, 16, 16, 1) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0, :, :, 0], board)
    assert processor.network_input_shape(1, (16, 16)) == (16, 16, 1)


def test_state_batch_is_float32_in_unit_range_with_frame_k_in_channel_k():
    processor = FrameProcessor(size=48)
    window = 4
    # Frame k of sample b is filled with the level 10 * (b + 1) + k.
    batch = np.empty((3, window, 48, 48), dtype=np.uint8)
    for b in range(3):
        for k in range(window):
            batch[b, k] = 10 * (b + 1) + k
    batch[2, 3, 0, 0] = 255
    out = processor.process_state_batch(batch)
    assert out.shape == (3, 48, 48, window) and out.dtype == np.float32 and out.flags.c_contiguous
    for b in range(3):
        for k in range(window):
            channel = out[b, :, :, k]
            assert channel[1, 1] == pytest.approx((10 * (b + 1) + k) / 255, abs=1e-7)
    assert out[2, 0, 0, 3] == 1.0 and out.min() >= 0.0 and out.max() <= 1.0
    assert processor.network_input_shape(window, (96, 96)) == (48, 48, window)


def test_state_batch_accepts_keras_rl_float64_zero_padding():
    # keras-rl pads a window reaching back past an episode start with np.zeros (float64).
    processor = FrameProcessor(size=48)
    frame = np.full((48, 48), 51, dtype=np.uint8)
    state = [np.zeros((48, 48)), np.zeros((48, 48)), frame, frame]
    out = processor.process_state_batch([state])
    assert out.dtype == np.float32 and out.shape == (1, 48, 48, 4)
    np.testing.assert_array_equal(out[0, :, :, :2], 0.0)
    np.testing.assert_allclose(out[0, :, :, 2:], 0.2)


def test_channels_first_keeps_keras_rl_order():
    processor = FrameProcessor(size=48, channels_last=False)
    batch = np.arange(2 * 4, dtype=np.uint8).reshape(2, 4, 1, 1).repeat(48, axis=2).repeat(48, axis=3)
    out = processor.process_state_batch(batch)
    assert out.shape == (2, 4, 48, 48)
    np.testing.assert_allclose(out[1, 2], 6 / 255)
    assert processor.network_input_shape(4, (96, 96)) == (4, 48, 48)


def test_reward_clipping():
    clipped = FrameProcessor(clip_rewards=True)
    assert [clipped.process_reward(r) for r in (5.0, -3.0, 0.01, -1.0)] == [1.0, -1.0, 0.01, -1.0]
    plain = FrameProcessor()
    assert plain.process_reward(5.0) == 5.0
    obs, reward, done, info = clipped.process_step(np.zeros((4, 4), np.uint8), 2.5, False, {"frames": 3})
    assert reward == 1.0 and obs.dtype == np.uint8 and info == {"frames": 3}


@pytest.mark.parametrize(
    "name, kwargs, fragments",
    [
        ("pixels", {}, ["processor='pixels' is unknown", "frames"]),
        ("frames", {"siz": 48}, ["unknown processor_kwargs ['siz']", "size"]),
        ("frames", {"size": 0}, ["size=0", "positive int"]),
        ("frames", {"size": "48"}, ["size='48'"]),
        ("frames", {"obs_low": 1.0, "obs_high": 1.0}, ["obs_high=1.0", "greater than"]),
        ("frames", {"clip_rewards": "yes"}, ["clip_rewards='yes'", "true or false"]),
    ],
)
def test_bad_processor_settings_are_user_errors(name, kwargs, fragments):
    with pytest.raises(UserError) as err:
        build_processor(name, kwargs)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_size_that_does_not_divide_the_frame_is_a_user_error():
    processor = build_processor("frames", {"size": 40})
    with pytest.raises(UserError, match=r"size=\[40, 40\] does not divide the env's 96x96 frames"):
        processor.network_input_shape(4, (96, 96))
    with pytest.raises(UserError, match="2-D"):
        processor.network_input_shape(1, (96, 96, 3))


def test_registry_names_the_processor():
    assert PROCESSORS["frames"] is FrameProcessor
    assert isinstance(build_processor("frames", {}), FrameProcessor)


@pytest.mark.parametrize("fast_path", [True, False])
def test_agent_memory_keeps_uint8_frames_and_the_network_gets_floats(fast_path):
    """A few hundred steps of a tiny cave_conv agent: the replay memory (the fast path's RingMemory
    or keras-rl's SequentialMemory) holds 48x48 uint8 frames, and the processor turns a sampled
    batch into the network's float32 (batch, 48, 48, 4) input."""
    import dataclasses

    from harness.core.registry import load_experiment
    from harness.kerasrl.agents import build_agent, make_env
    from harness.run.runner import seed_everything

    exp = dataclasses.replace(
        load_experiment("cave_conv"),
        memory_limit=500,
        nb_steps_warmup=50,
        batch_size=8,
        fast_path=fast_path,
        network_kwargs={"filters": [4, 4, 4], "kernel_sizes": [4, 4, 3], "strides": [2, 2, 2], "hidden": 8},
    )
    seed_everything(0)
    env = make_env(exp, seed=0)
    agent = build_agent(exp, env)
    assert agent.model.input_shape == (None, 48, 48, 4)
    agent.fit(env, nb_steps=120, action_repetition=exp.action_repetition, verbose=0)
    memory = agent.memory
    # One transition per step, plus keras-rl's extra entry for each episode's last observation.
    assert memory.nb_entries >= 120
    if fast_path:
        assert memory.observations.dtype == np.uint8 and memory.observations.shape[1:] == (48, 48)
    else:
        stored = [memory.observations[i] for i in range(memory.nb_entries)]
        assert all(o.dtype == np.uint8 and o.shape == (48, 48) for o in stored)
    experiences = memory.sample(8)
    batch = agent.processor.process_state_batch(np.array([e.state0 for e in experiences]))
    assert batch.shape == (8, 48, 48, 4) and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0 and batch.max() > 0.0
    env.close()
