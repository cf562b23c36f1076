"""Atomic file writing: every file the harness writes goes to a temporary name and is renamed into
place, so a crash mid-write never leaves a half-written file where a good one was."""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import DiskFull
from harness.core.signals import deferred

# mkstemp creates files readable by the owner only; results are meant to be shared like any file
# the user writes, so renamed files get the usual mode under the process umask.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


# The errors that mean "no room": the disk is full, a quota is reached, a file-size limit (ulimit -f).
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_HOOK_LOCK = threading.RLock()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename. A signal
    during the write stops the run after it (signals.deferred), never half-way through."""
    with deferred(), _atomic_path(path) as tmp:
        yield tmp


@contextlib.contextmanager
def _atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the real suffix: Keras and matplotlib pick the format from it.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    no_room: int | None = None
    try:
        with _held_unraisable() as held:
            try:
                yield tmp
                os.chmod(tmp, _FILE_MODE)
                os.replace(tmp, target)
            except OSError as err:
                if err.errno not in _NO_ROOM:
                    raise
                no_room = err.errno
            if no_room is not None:
                # h5py reports the same failed write again while freeing its file objects, as
                # "Exception ignored in ... __dealloc__" with a traceback; the error line below says it.
                gc.collect()
                held.clear()
    finally:
        if tmp.exists():
            tmp.unlink()
    if no_room is not None:
        raise _disk_full(target, no_room)


@contextlib.contextmanager
def _held_unraisable() -> Iterator[list[Any]]:
    """Hold the exceptions Python could not raise (sys.unraisablehook) while the block runs, and
    pass the ones still held to the usual hook at its end."""
    held: list[Any] = []
    with _HOOK_LOCK:  # the hook is process-wide; writes from several threads (tune's workers) take turns
        usual = sys.unraisablehook
        sys.unraisablehook = held.append
        try:
            yield held
        finally:
            sys.unraisablehook = usual
            for unraisable in held:
                usual(unraisable)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# Strict JSON has no NaN or infinity: NaN (a metric before training starts) is written as null,
# an infinity (delta_clip=inf) as the string "Infinity" or "-Infinity", which float() reads back.
NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf}


def strict_json(data: Any) -> Any:
    """`data` with every non-finite float (NumPy's included) replaced as above."""
    if isinstance(data, dict):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value) for value in data]
    if isinstance(data, (float, np.floating)):
        value = float(data)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(data, np.integer):
        return int(data)
    return data


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write `data` as strict JSON (RFC 8259: parsers other than Python's reject NaN literals)."""
    write_text(path, json.dumps(strict_json(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_with(path: str | os.PathLike, writer: Callable[[str], Any], needs_bytes: int = 0) -> None:
    """Atomically write a file produced by `writer(tmp_path)` (Keras weights, matplotlib figures).

    `needs_bytes`: about how large the file will be; when the disk or the file-size limit has less
    room, DiskFull is raised before anything is written. Why for weights: HDF5 does not fail
    cleanly when a write is refused half-way (h5py reports it again while freeing its objects and
    can crash the process), so a weights file must not start unless it fits.
    """
    target = Path(path)
    if needs_bytes:
        target.parent.mkdir(parents=True, exist_ok=True)
        check_room(target, needs_bytes)
    with atomic_path(target) as tmp:
        writer(str(tmp))


def check_room(target: Path, total_bytes: int, largest_file_bytes: int | None = None) -> None:
    """DiskFull if `target` (a file, or a folder of files whose largest has `largest_file_bytes`)
    would not fit: in the free space of its disk, or under the file-size limit (ulimit -f)."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    largest = total_bytes if largest_file_bytes is None else largest_file_bytes
    if limit != resource.RLIM_INFINITY and largest > limit:
        raise _disk_full(target, errno.EFBIG)
    if total_bytes > shutil.disk_usage(target.parent).free:
        raise _disk_full(target, errno.ENOSPC)


def no_room(err: OSError) -> bool:
    """Whether `err` says there is no room (a full disk, a quota, a file-size limit)."""
    return err.errno in _NO_ROOM


def disk_full(target: Path, err: OSError) -> DiskFull:
    """The one-line DiskFull for a write of `target` that failed with `err` (no_room(err))."""
    return _disk_full(target, err.errno or errno.ENOSPC)


def _disk_full(target: Path, code: int) -> DiskFull:
    return DiskFull(
        f"can't write {str(target)!r}: {os.strerror(code)} (a full disk, a quota or a file-size "
        "limit); the files written before it are kept, and the older version of this one if it had one"
    )
