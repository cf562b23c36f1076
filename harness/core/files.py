"""Atomic file writing: every file the harness writes goes to a temporary name and is renamed into
place, so a crash mid-write never leaves a half-written file where a good one was."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# mkstemp creates files readable by the owner only; results are meant to be shared like any file
# the user writes, so renamed files get the usual mode under the process umask.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the real suffix: Keras and matplotlib pick the format from it.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


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


def write_with(path: str | os.PathLike, writer: Callable[[str], Any]) -> None:
    """Atomically write a file produced by `writer(tmp_path)` (Keras weights, matplotlib figures)."""
    with atomic_path(path) as tmp:
        writer(str(tmp))
