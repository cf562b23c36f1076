"""Benchmark: the size and write time of a cave_conv checkpoint with its full replay memory.

`python -m bench.checkpoint [--transitions N] [--repeats R] [--dir DIR] [--json PATH]`
(`make bench-checkpoint`) builds cave_conv's agent (its network, Adam, a RingMemory of N
transitions, 100,000 by default), fills the memory as training does (bench.memory's filler: CAVE
frames through the `frames` processor, 48x48 uint8), then writes R checkpoints with
`harness.kerasrl.checkpoint.save`, what a run writes at each checkpoint, into DIR (the system's
temporary folder by default; put it on the disk runs are saved to), and loads one back. It
reports each file's size, the median write and load times, and the same without the memory
(`checkpoint_memory=false`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cli import OneLineParser, positive_int, run_main
from harness.core.errors import UserError

_MB = 1e6


def measure(transitions: int, repeats: int, base: Path, seed: int = 0) -> dict[str, Any]:
    """Fill cave_conv's memory with `transitions` transitions and time its checkpoints under `base`."""
    from bench.memory import filler
    from harness.core.registry import load_experiment
    from harness.kerasrl import checkpoint
    from harness.kerasrl.agents import build_agent, make_env
    from harness.run.runner import seed_everything

    exp = dataclasses.replace(load_experiment("cave_conv"), memory_limit=transitions)
    seed_everything(seed)
    env = make_env(exp, seed=seed)
    env.reset()
    agent = build_agent(exp, env)
    filler(exp, agent.memory, seed)(transitions)
    agent.step = transitions
    results: dict[str, Any] = {"transitions": transitions, "entries": int(agent.memory.nb_entries)}
    for with_memory in (True, False):
        seconds, folder = [], base / "none"
        for repeat in range(repeats):
            folder = base / f"state-{int(with_memory)}-{repeat}"
            started = time.perf_counter()
            checkpoint.save(folder, agent, env, {"metrics": {}, "validation": None}, with_memory=with_memory)
            seconds.append(time.perf_counter() - started)
        sizes = {path.name: path.stat().st_size for path in sorted(folder.iterdir())}
        started = time.perf_counter()
        checkpoint.load(folder, agent, "cave_conv's network")
        load_seconds = time.perf_counter() - started
        results["with_memory" if with_memory else "without_memory"] = {
            "files_mb": {name: size / _MB for name, size in sizes.items()},
            "total_mb": sum(sizes.values()) / _MB,
            "write_seconds_median": statistics.median(seconds),
            "write_seconds_runs": seconds,
            "load_seconds": load_seconds,
        }
        for path in base.iterdir():
            shutil.rmtree(path)
    env.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.checkpoint", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--transitions", type=positive_int("--transitions"), default=100_000, help="memory size (100,000)"
    )
    parser.add_argument("--repeats", type=positive_int("--repeats"), default=3, help="checkpoints written (3)")
    parser.add_argument("--dir", help="where the checkpoints are written (a temporary folder)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    return run_main(parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    if args.dir is not None and not Path(args.dir).is_dir():
        raise UserError(f"DIR={args.dir!r} is not a directory; expected an existing folder to write the checkpoints in")
    print(f"cave_conv checkpoint, {args.transitions:,}-transition replay memory, {args.repeats} writes", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-", dir=args.dir) as base:
        results = measure(args.transitions, args.repeats, Path(base))
    for key, label in (("with_memory", "with the memory"), ("without_memory", "checkpoint_memory=false")):
        row = results[key]
        files = ", ".join(f"{name} {size:.1f} MB" for name, size in row["files_mb"].items())
        print(
            f"{label:<24} {row['total_mb']:7.1f} MB ({files}); write {row['write_seconds_median']:.2f} s "
            f"(median of {len(row['write_seconds_runs'])}), load {row['load_seconds']:.2f} s",
            flush=True,
        )
    if args.json:
        from harness.core import files as harness_files

        harness_files.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
