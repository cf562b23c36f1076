"""keras-rl processors named by experiments (`processor="frames"`), and `build_processor`.

A keras-rl `Processor` sits between the env and the agent at two points:
- `process_observation(obs)`, on every env step: its return value is what the replay memory keeps.
  `FrameProcessor` downsamples the frame here and stores it as uint8 (1 byte a pixel: a 48 x 48
  frame is 2,304 bytes, a quarter of float32), as a fresh array that holds no reference to the
  env's full-size frame.
- `process_state_batch(batch)`, on every batch the network sees (acting and training): a
  (batch, window, height, width) stack of stored frames becomes float32 in [0, 1], arranged
  channels-last (batch, height, width, window) for Conv2D; frame k of the window is channel k.

The contract is plain keras-rl: nothing here knows which memory or loop calls it, so keras-rl's
`SequentialMemory` and any other memory that stores `process_observation`'s output in its own
dtype and hands sampled stacks to `process_state_batch` work the same.

Processors also say what shape the network gets (`network_input_shape`), which
`harness.kerasrl.agents.network_input_shape` asks for when it builds the network.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, cast

import numpy as np

from harness.core.errors import UserError
from harness.kerasrl.compat import Processor

_LEVELS = 255  # stored frames use the full uint8 range: 0 is the lowest input value, 255 the highest


def _side_pair(name: str, value: Any) -> tuple[int, int] | None:
    """None, an int side or a [height, width] pair -> (height, width) or None."""
    if value is None:
        return None
    pair = (value, value) if isinstance(value, Integral) and not isinstance(value, bool) else value
    # The cast: numbers.Integral declares no `>=` (the ABC has only `<` and `<=`), though every
    # concrete Integral (int, NumPy's ints) compares with an int.
    if (
        isinstance(pair, (list, tuple))
        and len(pair) == 2
        and all(isinstance(v, Integral) and not isinstance(v, bool) and cast(int, v) >= 1 for v in pair)
    ):
        return int(pair[0]), int(pair[1])
    raise UserError(
        f"frames processor: {name}={value!r} is not allowed; expected a positive int side "
        f"(e.g. 48), a [height, width] pair, or null to keep the env's size"
    )


class FrameProcessor(Processor):
    """Downsample each frame, store it as uint8, and feed the network float32 frames in [0, 1].

    Args:
        size: the frame side (int) or [height, width] the network sees; None keeps the env's size.
            Each env side must be a whole multiple of it: a frame is downsampled by averaging
            blocks of `factor x factor` pixels (e.g. 96 -> 48 averages 2 x 2 blocks).
        obs_low, obs_high: the range of the env's observation values (0 and 255 for 8-bit frames,
            0 and 1 for Catch's board); it is mapped onto the stored 0..255, rounded to nearest.
        channels_last: arrange state batches as (batch, height, width, window) for Conv2D; False
            keeps keras-rl's (batch, window, height, width) (e.g. for a dense network over
            uint8-stored frames).
        clip_rewards: clip each reward to [-1, 1] (the DQN papers' reward clipping).
    """

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        obs_low: float = 0.0,
        obs_high: float = 255.0,
        channels_last: bool = True,
        clip_rewards: bool = False,
    ) -> None:
        self.size = _side_pair("size", size)
        for name, value in (("obs_low", obs_low), ("obs_high", obs_high)):
            if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
                raise UserError(f"frames processor: {name}={value!r} is not allowed; expected a finite number")
        if not obs_high > obs_low:
            raise UserError(
                f"frames processor: obs_high={obs_high!r} must be greater than "
                f"obs_low={obs_low!r} (the env's observation range)"
            )
        for name, value in (("channels_last", channels_last), ("clip_rewards", clip_rewards)):
            if not isinstance(value, bool):
                raise UserError(f"frames processor: {name}={value!r} is not allowed; expected true or false")
        self.obs_low = float(obs_low)
        self.obs_high = float(obs_high)
        self.channels_last = channels_last
        self.clip_rewards = clip_rewards
        # Stored value = (obs - obs_low) * _to_levels, rounded; the batch scale undoes the 255.
        self._to_levels = np.float32(_LEVELS / (self.obs_high - self.obs_low))
        self._factors: dict[tuple[int, ...], tuple[int, int]] = {}  # frame shape -> factors

    # --- shapes -------------------------------------------------------------------------------
    def factors(self, frame_shape: Sequence[int]) -> tuple[int, int]:
        """The (vertical, horizontal) downsampling factors for env frames of `frame_shape`."""
        frame_shape = tuple(int(s) for s in frame_shape)
        cached = self._factors.get(frame_shape)
        if cached is not None:
            return cached
        if len(frame_shape) != 2:
            raise UserError(
                f"frames processor needs 2-D (height, width) frames; the env's observations have shape {frame_shape}"
            )
        if self.size is None:
            factors = (1, 1)
        else:
            if any(side % target for side, target in zip(frame_shape, self.size, strict=True)):
                raise UserError(
                    f"frames processor: size={list(self.size)} does not divide the env's "
                    f"{frame_shape[0]}x{frame_shape[1]} frames; expected a size whose sides "
                    f"divide them (e.g. {frame_shape[0] // 2} for 2x2 averaging)"
                )
            factors = (frame_shape[0] // self.size[0], frame_shape[1] // self.size[1])
        self._factors[frame_shape] = factors
        return factors

    def frame_shape(self, observation_shape: Sequence[int]) -> tuple[int, int]:
        """The stored frame's (height, width) for env observations of `observation_shape`."""
        fy, fx = self.factors(observation_shape)
        return int(observation_shape[0]) // fy, int(observation_shape[1]) // fx

    def network_input_shape(self, window_length: int, observation_shape: Sequence[int]) -> tuple[int, ...]:
        """What the network is fed: (height, width, window) channels-last, else (window, height, width)."""
        height, width = self.frame_shape(observation_shape)
        if self.channels_last:
            return (height, width, int(window_length))
        return (int(window_length), height, width)

    # --- keras-rl Processor -------------------------------------------------------------------
    def process_observation(self, observation: Any) -> np.ndarray:
        """One env frame -> the downsampled uint8 frame the replay memory keeps (a new array)."""
        frame = np.asarray(observation)
        fy, fx = self.factors(frame.shape)
        height, width = frame.shape[0] // fy, frame.shape[1] // fx
        if frame.dtype == np.uint8 and self.obs_low == 0.0 and self.obs_high == _LEVELS:
            if fy == fx == 1:
                return frame.copy()
            # Integer block sums, rounded half up: exact, and no float rounding to reason about.
            sums = frame.reshape(height, fy, width, fx).sum(axis=(1, 3), dtype=np.uint32)
            count = fy * fx
            return ((sums + count // 2) // count).astype(np.uint8)
        values = frame.astype(np.float32)
        if fy > 1 or fx > 1:
            values = values.reshape(height, fy, width, fx).mean(axis=(1, 3), dtype=np.float32)
        levels = np.rint((values - np.float32(self.obs_low)) * self._to_levels)
        return np.clip(levels, 0, _LEVELS).astype(np.uint8)

    def process_state_batch(self, batch: Any) -> np.ndarray:
        """(batch, window, height, width) stored frames -> float32 in [0, 1], channels-last if set.

        keras-rl pads a window that reaches back past an episode's start with float64 zeros, so
        the batch may arrive as float64 holding whole numbers; the scaling is the same."""
        states = np.asarray(batch)
        if states.ndim != 4:
            raise ValueError(
                f"frames processor expects (batch, window, height, width) states; got shape {states.shape}"
            )
        out = states.astype(np.float32)
        out *= np.float32(1.0 / _LEVELS)
        if self.channels_last:
            # A contiguous copy: Conv2D would otherwise copy the strided view on every call anyway.
            out = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
        return out

    def process_reward(self, reward: float) -> float:
        if self.clip_rewards:
            return float(np.clip(reward, -1.0, 1.0))
        return reward


PROCESSORS: dict[str, Callable[..., Processor]] = {"frames": FrameProcessor}


def build_processor(name: str, kwargs: dict) -> Processor:
    """The named processor with `kwargs`; a name or argument that does not fit is a UserError."""
    if name not in PROCESSORS:
        raise UserError(f"processor={name!r} is unknown; expected one of {', '.join(PROCESSORS)} or none")
    factory = PROCESSORS[name]
    allowed = [p for p in inspect.signature(factory).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise UserError(f"processor {name!r}: unknown processor_kwargs {unknown}; allowed: {', '.join(allowed)}")
    return factory(**dict(kwargs))
