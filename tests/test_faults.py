"""Faults from outside the harness: no room on the disk, and runs or sweeps that start in the
same second into the same RUNS. Each is one error line or a clean recovery, and keeps every file
written before it (the README's fault table lists these beside the other tests' cases)."""

from __future__ import annotations

import errno
import json
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.core import files, rundir
from harness.core.errors import DiskFull

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_no_room_is_a_disk_full_error_that_keeps_the_old_file(tmp_path, code):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1}')

    def full(tmp: str) -> None:
        Path(tmp).write_text('{"new": 1')  # half written, then the disk is full
        raise OSError(code, "no room")

    with pytest.raises(DiskFull, match=r"can't write '.*metrics.json': .*a full disk, a quota or a file-size limit"):
        files.write_with(target, full)
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_other_write_errors_are_not_called_disk_full(tmp_path):
    def broken(tmp: str) -> None:
        raise OSError(errno.EIO, "input/output error")

    with pytest.raises(OSError) as raised:
        files.write_with(tmp_path / "x.json", broken)
    assert not isinstance(raised.value, DiskFull)


def _with_file_size_limit(limit: int):
    def limit_files() -> None:
        # Without SIGXFSZ ignored the kernel kills the process; ignored, the write fails with EFBIG,
        # as a full disk fails with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


def _one_line_no_room_error(runs: Path, limit: int, names: str, *args: str) -> None:
    """A catch_dense run under a file-size limit of `limit` bytes ends with one `error:` line that
    names `names` and the limit, exit 2, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "catch_dense", "--set", "nb_steps_warmup=100", *args]
        + ["--runs-dir", str(runs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=_with_file_size_limit(limit),
        timeout=240,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(errors) == 1 and names in errors[0] and "file-size limit" in errors[0], result.stderr


def test_a_file_size_limit_during_a_real_run_is_one_line_and_keeps_the_other_files(tmp_path):
    runs = tmp_path / "runs"
    finished = runs / "catch_dense" / "20200101-000000-seed0"  # an earlier run in the same RUNS
    finished.mkdir(parents=True)
    (finished / "summary.json").write_text('{"mean_return": 1.0}')
    # 16 KB: config.json, model.json, metrics.json and the TensorBoard file fit; weights.h5 does not.
    _one_line_no_room_error(runs, 16_000, "weights.h5", "--steps", "400")
    (run_dir,) = [d for d in (runs / "catch_dense").iterdir() if d != finished]
    kept = sorted(p.name for p in run_dir.iterdir())
    assert {"config.json", "metrics.json", "model.json"} <= set(kept), kept
    assert not [name for name in kept if name.startswith(".")], kept  # no half-written temporary file
    json.loads((run_dir / "metrics.json").read_text())
    assert (finished / "summary.json").read_text() == '{"mean_return": 1.0}'


class _FrozenClock:
    """datetime stand-in whose now() is always the same second."""

    class datetime:
        @staticmethod
        def now():
            import datetime as real

            return real.datetime(2026, 12, 2, 5, 0, 0)


def test_runs_of_one_experiment_and_seed_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "dt", _FrozenClock)
    made: list[Path] = []
    threads = [
        threading.Thread(target=lambda: made.append(rundir.new_run_dir(tmp_path, "catch_dense", 0))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = sorted(p.name for p in made)
    assert len(set(names)) == 8
    assert names[0] == "20261202-050000-seed0" and names[1:] == sorted(
        f"20261202-050000-seed0-{k}" for k in range(1, 8)
    )


def test_two_sweeps_into_one_runs_folder_in_the_same_second_log_apart(tmp_path, monkeypatch):
    from harness.launch import sweep

    monkeypatch.setattr(rundir, "dt", _FrozenClock)
    first, second = sweep.new_sweep_dir(tmp_path), sweep.new_sweep_dir(tmp_path)
    assert first != second and first.parent == second.parent == tmp_path / "sweeps"


def test_no_room_for_a_checkpoint_is_one_line_and_leaves_no_half_written_folder(tmp_path):
    runs = tmp_path / "runs"
    # 200 KB: the run's small files fit, the checkpoint's state.npz (the replay memory) does not.
    _one_line_no_room_error(
        runs,
        200_000,
        "checkpoints/state-",
        "--steps",
        "600",
        "--set",
        "checkpoint_interval=200",
        "--set",
        "memory_limit=20000",
    )
    (run_dir,) = (runs / "catch_dense").iterdir()
    assert (run_dir / "config.json").is_file()
    assert not list(run_dir.rglob(".*"))  # no temporary file or folder left behind
