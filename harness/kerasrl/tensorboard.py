"""TensorBoard scalars for every run: `TensorBoardLogger`, a keras-rl Callback.

Writes under `<run_dir>/tensorboard/`, tags grouped by prefix as CleanRL does:
  charts/episode_reward, charts/episode_length     per episode (at its last step; written in batches)
  losses/loss, losses/mae, charts/mean_q,          the mean over each `interval` steps
  charts/epsilon, charts/steps_per_second          (NaN before training starts: skipped)
Steps are global: a resumed run passes `step_offset`, so its curves continue its parent's.

Writer: `tf.compat.v1.summary.FileWriter` with `tf.compat.v1.Summary` protos. keras-rl trains in
graph mode (eager execution is disabled in harness.kerasrl.compat), where TF2's `tf.summary.scalar` only
adds ops to a graph that nobody runs; the v1 FileWriter writes protos directly, needs no session
and is what TensorBoard itself reads. Event files are append-only streams that TensorBoard reads
while they grow, so they are the one kind of file the harness does not write through
harness/core/files.py (a rename would hide the live file from TensorBoard).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.kerasrl.compat import Callback, tf

# keras-rl metric name -> TensorBoard tag. Metrics not listed go under "metrics/<name>".
METRIC_TAGS = {
    "loss": "losses/loss",
    "mae": "losses/mae",
    "mean_q": "charts/mean_q",
    "mean_eps": "charts/epsilon",
}
EPISODE_TAGS = {"episode_reward": "charts/episode_reward", "nb_episode_steps": "charts/episode_length"}
SPEED_TAG = "charts/steps_per_second"


class TensorBoardLogger(Callback):
    """Episode rewards and interval means of keras-rl's metrics as TensorBoard scalars.

    `interval` steps between metric points (CleanRL logs its losses every 100 steps);
    `flush_seconds` bounds how stale a live TensorBoard view can be.
    """

    def __init__(
        self, logdir: str | Path, step_offset: int = 0, interval: int = 100, flush_seconds: float = 10.0
    ) -> None:
        super().__init__()
        self.logdir = Path(logdir)
        self.step_offset = int(step_offset)
        self.interval = max(1, int(interval))
        self.flush_seconds = flush_seconds
        self.writer: Any = None
        self.steps = 0
        self._rows: list[Any] = []
        self._episodes: list[tuple[int, dict[str, Any]]] = []
        self._interval_start = 0.0

    # keras-rl hooks ---------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.writer = tf.compat.v1.summary.FileWriter(str(self.logdir), flush_secs=self.flush_seconds)
        self.metrics_names = list(self.model.metrics_names)
        self._interval_start = time.monotonic()

    def on_step_end(self, step: int, logs: dict) -> None:
        self.steps += 1
        self._rows.append(logs.get("metrics"))
        if self.steps % self.interval == 0:
            self._write_interval()

    def on_episode_end(self, episode: int, logs: dict) -> None:
        # Kept until the interval's write: one summary per episode cost 10-15% of catch_dense's
        # steps/s on the fast path (short episodes, each a protobuf and an event-file record).
        values = {tag: logs[key] for key, tag in EPISODE_TAGS.items() if key in logs}
        self._episodes.append((self.step_offset + self.steps, values))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._rows or self._episodes:
            self._write_interval()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # ------------------------------------------------------------------------------------------
    def _write_interval(self) -> None:
        now = time.monotonic()
        values: dict[str, float] = {SPEED_TAG: len(self._rows) / max(now - self._interval_start, 1e-9)}
        rows = [r for r in self._rows if r is not None and len(r) == len(self.metrics_names)]
        if rows:
            with np.errstate(all="ignore"):
                table = np.array(rows, dtype=float)
            for index, name in enumerate(self.metrics_names):
                column = table[:, index]
                if np.isfinite(column).any():
                    values[METRIC_TAGS.get(name, f"metrics/{name}")] = float(np.nanmean(column))
        for step, episode_values in self._episodes:
            self._write(episode_values, step)
        self._write(values, self.step_offset + self.steps)
        self._rows = []
        self._episodes = []
        self._interval_start = now

    def _write(self, values: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        summary = tf.compat.v1.Summary(
            value=[
                tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value))
                for tag, value in values.items()
                if math.isfinite(float(value))
            ]
        )
        self.writer.add_summary(summary, global_step=int(step))
