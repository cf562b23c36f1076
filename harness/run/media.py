"""Pictures of an agent playing: frames from the env's `rgb_array` render, written as a GIF.

- `FrameRecorder`: a keras-rl Callback that grabs the board after each reset and each env step
  (up to `max_frames`), so any `agent.test` call can be filmed.
- `write_gif`: frames -> an animated GIF, atomically (harness/core/files.py).
- `write_demo`: the runner's `demo.gif`: the greedy agent's first evaluation episodes (same seed,
  so the same games the evaluation scored), capped at `MAX_FRAMES`.

Why Pillow rather than matplotlib.animation: the env already renders RGB images at its own size,
and Pillow writes them as GIF frames pixel for pixel. matplotlib would draw each frame into a
figure (resampled, with margins, at the figure's size, not the env's) and hand it to Pillow anyway
(its GIF writer, `PillowWriter`, is Pillow).

A GIF frame holds at most 256 colours. Left to itself, Pillow computes an adaptive palette for
every RGB frame, which is most of the cost of a GIF: 300 frames of CartPole's 600x400 screen took
23 s on this 2-core machine (under load). `write_gif` computes one palette from a few frames spread
over the clip and maps every frame onto it without dithering: 4-5 s for the same frames. Pillow's
nearest-colour lookup may move a colour by a few levels out of 255 (CartPole's: at most 6), and a
colour seen only in frames outside the sample is drawn as the nearest one in the palette.

Rendering needs no display or sound card: `record_episodes` points SDL (pygame, which gymnasium's
classic-control and Box2D games draw with) at its dummy video and audio drivers unless the
environment already chooses, so a headless run neither fails nor prints SDL's warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.core import files
from harness.core.errors import UserError
from harness.core.schema import Experiment
from harness.kerasrl.compat import Callback

MAX_FRAMES = 300  # about 40 s of Catch at its 8 fps: enough to watch, small enough to commit
DEMO_EPISODES = 3  # a trained Catch agent fills MAX_FRAMES in one episode; an untrained one needs more
PALETTE_FRAMES = 16  # frames, spread over the clip, that the GIF's one palette is computed from
_DEFAULT_FPS = 10.0
# SDL's drivers for drawing off-screen (set unless the environment already chooses), and pygame's
# start-up banner off: the run's log is for the run.
_HEADLESS_SDL = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
_FINAL_FRAME_MS = 1000  # hold the last frame for a second so the loop's restart is visible


class FrameRecorder(Callback):
    """The env's rgb_array frames during `agent.test`: the board after each reset and each step.

    Needs an env made with `render_mode="rgb_array"`. Stops rendering once it holds `max_frames`.
    """

    def __init__(self, max_frames: int = MAX_FRAMES) -> None:
        super().__init__()
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return len(self.frames) >= self.max_frames

    def on_step_begin(self, step: int, logs: dict | None = None) -> None:
        if step == 0:  # the first step of an episode: the board as reset left it
            self._grab()

    def on_action_end(self, action: Any, logs: dict | None = None) -> None:
        self._grab()

    def _grab(self) -> None:
        if self.full:
            return
        frame = np.asarray(self.env.render(mode="rgb_array"))
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"rgb_array render gave {frame.dtype} {frame.shape}; expected uint8 (H, W, 3)")
        self.frames.append(frame.copy())


def env_metadata(exp: Experiment) -> dict[str, Any]:
    """The `metadata` of the experiment's env class (render modes, fps), without making an env."""
    import importlib

    import gymnasium

    import envs  # noqa: F401  (importing the package registers the project's env ids)

    # gymnasium's "pkg.module:Name-v0": the module registers the id when it is imported.
    module, _, env_id = exp.env_id.rpartition(":")
    if module:
        importlib.import_module(module)
    spec = gymnasium.spec(env_id)
    env_class: object = spec.entry_point if callable(spec.entry_point) else None
    if env_class is None:
        from gymnasium.envs.registration import load_env_creator

        # Not callable: the "module:attr" string the env was registered with (mypy does not carry
        # the callable() test over to this branch, hence the cast).
        env_class = load_env_creator(cast(str, spec.entry_point))
    return dict(getattr(env_class, "metadata", {}) or {})


def rgb_array_supported(exp: Experiment) -> bool:
    """Whether the experiment's env lists `rgb_array` among its render modes."""
    return "rgb_array" in env_metadata(exp).get("render_modes", [])


def frames_per_second(exp: Experiment) -> float:
    """The env's own playback speed (`metadata["render_fps"]`)."""
    return float(env_metadata(exp).get("render_fps") or _DEFAULT_FPS)


def check_gif_path(path: str | Path) -> Path:
    """`path` if it names a .gif file (so GIF=... cannot overwrite weights or a config by mistake)."""
    target = Path(path)
    if target.suffix.lower() != ".gif" or not target.name or target.is_dir():
        raise UserError(f"GIF={str(path)!r} is not allowed; expected a file name ending in .gif")
    return target


def write_gif(path: str | Path, frames: list[np.ndarray], fps: float) -> None:
    """Write `frames` (uint8 H x W x 3) as a looping GIF at `fps`, atomically, every frame mapped
    onto one palette (see the module docstring)."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to write")
    palette = _shared_palette([Image.fromarray(frame) for frame in frames[:: max(1, len(frames) // PALETTE_FRAMES)]])
    images = [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    # GIF stores durations in hundredths of a second; Pillow rounds the milliseconds we give it.
    frame_ms = max(20, int(round(1000.0 / fps)))
    durations = [frame_ms] * (len(images) - 1) + [max(frame_ms, _FINAL_FRAME_MS)]
    files.write_with(
        path,
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        ),
    )


def _shared_palette(samples: list[Any]) -> Any:
    """A 256-colour palette image (median cut) for the sample frames stacked into one picture."""
    from PIL import Image

    strip = Image.new("RGB", (max(im.width for im in samples), sum(im.height for im in samples)))
    top = 0
    for image in samples:
        strip.paste(image, (0, top))
        top += image.height
    return strip.quantize(colors=256, method=Image.Quantize.MEDIANCUT)


def record_episodes(
    exp: Experiment, agent: Any, seed: int, episodes: int = DEMO_EPISODES, max_frames: int = MAX_FRAMES
) -> tuple[list[np.ndarray], float]:
    """Frames of the greedy agent's first `episodes` episodes on an env seeded with `seed`, stopping
    once `max_frames` are held; returns (frames, the env's fps)."""
    import os

    from harness.kerasrl.agents import make_env

    for name, value in _HEADLESS_SDL.items():
        os.environ.setdefault(name, value)
    env = make_env(exp, seed=seed, render_mode="rgb_array")
    recorder = FrameRecorder(max_frames)
    try:
        # One episode per `test` call on the same env: the env seeds its first reset only, so the
        # episodes are the same as one `test(nb_episodes=episodes)` call plays, and the loop can
        # stop as soon as the frames are full. Episodes are cut at the frame budget, not played on.
        for _ in range(episodes):
            agent.test(
                env, nb_episodes=1, visualize=False, verbose=0, nb_max_episode_steps=max_frames, callbacks=[recorder]
            )
            if recorder.full:
                break
    finally:
        env.close()
    return recorder.frames, frames_per_second(exp)


def write_demo(
    exp: Experiment,
    agent: Any,
    path: str | Path,
    seed: int,
    episodes: int = DEMO_EPISODES,
    max_frames: int = MAX_FRAMES,
) -> int:
    """Film the greedy agent and write the GIF to `path`; return the number of frames."""
    if not rgb_array_supported(exp):
        raise UserError(f"env {exp.env_id} has no rgb_array render mode; a GIF needs one")
    frames, fps = record_episodes(exp, agent, seed, episodes, max_frames)
    write_gif(path, frames, fps)
    return len(frames)
