"""Benchmark: how much a cave_conv replay memory of 100,000 transitions adds to the process.

`python -m bench.memory [--transitions N] [--repeats R] [--json PATH]` (`make bench-memory`)
fills the replay memory cave_conv trains with, exactly as training does: CAVE frames from the env
(a random player), through the experiment's `frames` processor (96x96 -> 48x48 uint8), appended
with their action, reward and terminal flag. It does so for both memories the harness can use:
the fast path's `RingMemory` (preallocated uint8 arrays), its `PrioritizedRingMemory` (the same
plus a sum tree and a priority per slot, prioritized_replay=true) and keras-rl's
`SequentialMemory` (a ring of per-step array objects). Each measurement runs in a fresh Python
process (freed memory is not reliably returned to the OS, so one process cannot measure two
memories) and reports the resident
set size (psutil RSS) added by filling the memory, after TensorFlow, keras-rl and the env are
loaded. It then appends 10% more transitions: a full memory must not grow any further.

The target: at most 400 MB added. The payload alone is 100,000 x 48 x 48 bytes = 230.4 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.cli import OneLineParser, positive_int, run_main

# fast_path=True; fast_path=True with prioritized_replay=True; fast_path=False.
MEMORIES = ("ring", "prioritized", "sequential")
TARGET_MB = 400.0
_MB = 1e6


def _rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def filler(exp: Any, memory: Any, seed: int = 0) -> Callable[[int], None]:
    """A function that appends `count` more transitions of `exp`'s game to `memory`, exactly as
    training does: frames from the env (a random player), through the experiment's processor,
    with their action, reward and terminal flag (bench.checkpoint fills its memory with it too)."""
    import gymnasium
    import numpy as np

    from harness.kerasrl.agents import make_processor

    processor = make_processor(exp)
    assert processor is not None  # cave_conv downsamples its frames
    env = gymnasium.make(exp.env_id, **exp.env_kwargs)
    rng = np.random.default_rng(seed)
    frame, _ = env.reset(seed=seed)
    observation = processor.process_observation(frame)

    def fill(count: int) -> None:
        nonlocal observation
        for _ in range(count):
            action = int(rng.integers(2))
            frame, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            # What keras-rl's fit appends: the observation the action was taken in, the action,
            # the (float32) reward that followed and whether it ended the episode.
            memory.append(observation, action, np.float32(reward), done)
            observation = processor.process_observation(env.reset()[0] if done else frame)

    return fill


def measure(kind: str, transitions: int, seed: int = 0) -> dict[str, Any]:
    """Fill the `kind` memory of cave_conv with `transitions` transitions (in this process)."""
    import dataclasses

    from harness.core.registry import load_experiment
    from harness.kerasrl.agents import make_memory

    exp = load_experiment("cave_conv")
    exp = dataclasses.replace(
        exp, fast_path=(kind != "sequential"), prioritized_replay=(kind == "prioritized"), memory_limit=transitions
    )
    memory = make_memory(exp)
    fill = filler(exp, memory, seed)
    before = _rss()
    fill(transitions)
    full = _rss()
    fill(transitions // 10)
    later = _rss()
    stored = memory.sample(32)[0].state0[-1]
    return {
        "memory": type(memory).__name__,
        "transitions": transitions,
        "entries": int(memory.nb_entries),  # a full memory holds exactly `transitions`
        "stored_frame": f"{stored.shape[0]}x{stored.shape[1]} {stored.dtype}",
        "added_mb": (full - before) / _MB,
        "growth_after_full_mb": (later - full) / _MB,
        "payload_mb": transitions * stored.nbytes / _MB,
    }


def _measure_in_subprocess(kind: str, transitions: int, seed: int) -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--one", kind, "--transitions", str(transitions), "--seed", str(seed)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"measuring {kind} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--transitions", type=positive_int("--transitions"), default=100_000, help="memory size (100,000)"
    )
    parser.add_argument(
        "--repeats",
        type=positive_int("--repeats"),
        default=3,
        help="fresh processes per memory; the median is reported (3)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--one", choices=MEMORIES, help=argparse.SUPPRESS)  # a single in-process measurement
    return run_main(parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    if args.one:
        print(json.dumps(measure(args.one, args.transitions, args.seed)))
        return 0

    print(
        f"cave_conv replay memory, {args.transitions:,} transitions, {args.repeats} fresh processes each "
        f"(target: at most {TARGET_MB:.0f} MB added)",
        flush=True,
    )
    results: dict[str, Any] = {"transitions": args.transitions, "target_mb": TARGET_MB, "memories": {}}
    ok = True
    for kind in MEMORIES:
        runs = [_measure_in_subprocess(kind, args.transitions, args.seed + r) for r in range(args.repeats)]
        added = statistics.median(r["added_mb"] for r in runs)
        growth = statistics.median(r["growth_after_full_mb"] for r in runs)
        first = runs[0]
        # A memory that dropped or duplicated transitions would make the RSS figure meaningless.
        wrong = [r["entries"] for r in runs if r["entries"] != args.transitions]
        if wrong:
            print(f"{first['memory']}: holds {wrong[0]} transitions after filling {args.transitions}", flush=True)
        ok = ok and added <= TARGET_MB and not wrong
        results["memories"][first["memory"]] = {
            "stored_frame": first["stored_frame"],
            "payload_mb": first["payload_mb"],
            "added_mb_median": added,
            "added_mb_runs": [r["added_mb"] for r in runs],
            "growth_after_full_mb_median": growth,
            "within_target": added <= TARGET_MB,
        }
        each = ", ".join(f"{r['added_mb']:.1f}" for r in runs)
        print(
            f"{first['memory']:<17} stores {first['stored_frame']}: +{added:6.1f} MB RSS "
            f"(runs: {each}; payload {first['payload_mb']:.1f} MB); "
            f"+{growth:.1f} MB for 10% more once full -> {'OK' if added <= TARGET_MB else 'OVER TARGET'}",
            flush=True,
        )
    if args.json:
        from harness.core import files

        files.write_json(args.json, results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
