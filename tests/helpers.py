"""Shared test helpers: tiny budgets and running the CLI as a user would."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TINY = {
    "nb_steps": 300,
    "nb_steps_warmup": 100,
    "memory_limit": 1_000,
    "eval_episodes": 2,
    "checkpoint_interval": 100,
    "eps_anneal_steps": 200,
}


def tiny(exp, **changes):
    """`exp` shrunk to a smoke-test budget (a few seconds)."""
    return dataclasses.replace(exp, **{**TINY, **changes})


def cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m harness ...` from the project root."""
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def make_dry_run(target: str, *assignments: str) -> str:
    """The commands `make -n target VAR=value ...` would run, as one line (continuations joined)."""
    result = subprocess.run(["make", "-n", target, *assignments], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.replace("\\\n", " ").split())
