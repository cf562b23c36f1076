"""Benchmark: what one fast-path train step of an experiment costs, piece by piece.

`python -m bench.train_step cave_conv [--set key=value ...] [--repeats 200]` builds the experiment's
agent, fills its replay memory with random-player transitions, then times session calls of the
train graph (harness.kerasrl.fast) on the same sampled batch, each alone:

  act          the online network on one state (what every env step pays)
  target(s1)   the target network's forward pass on the batch's next states
  online(s1)   the online network's forward pass on them (Double DQN's argmax)
  loss         targets and the TD loss: target(s1), online(s1) and online(s0) forward
  train        the whole train step: the loss, its gradient and the optimizer's update

and prints the median milliseconds of each. Environment variables that change the arithmetic
(TF_ENABLE_ONEDNN_OPTS, DQN_HARNESS_THREADS) apply as they do to a run; compare settings by running
this command once per setting, alternating.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.cli import OneLineParser, positive_int, run_main


def _median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # the first call of a callable pays for its set-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def measure(name: str, overrides: Sequence[str], repeats: int) -> dict[str, Any]:
    import numpy as np

    from harness.core.registry import resolve_experiment
    from harness.kerasrl.agents import build_agent, make_env
    from harness.kerasrl.fast import FastDQNAgent, _make_callable
    from harness.run.runner import seed_everything
    from harness.run.scripted import random_player

    exp = resolve_experiment(name, overrides=overrides)
    seed_everything(exp.seed)
    env = make_env(exp, seed=exp.seed)
    agent = build_agent(exp, env)
    if not isinstance(agent, FastDQNAgent):
        raise SystemExit("error: bench.train_step times the fast path; expected fast_path=true")
    rng = np.random.default_rng(0)
    processor = agent.processor
    observation = env.reset()
    for _ in range(max(4 * exp.batch_size, 2_000)):
        if processor is not None:
            observation = processor.process_observation(observation)
        action = random_player(env.unwrapped, rng)
        next_observation, reward, done, _ = env.step(action)
        agent.memory.append(observation, action, reward, done)
        observation = env.reset() if done else next_observation
    feeds = agent.train_feeds()
    graph = agent.train_graph
    session = agent._session
    # One state as acting sees it: a window of stored observations (processed as keras-rl's fit
    # processes each observation before `forward`), before the processor's state batch step.
    if processor is not None:
        observation = processor.process_observation(observation)
    window = agent.memory.get_recent_state(observation)
    parts: dict[str, Callable[[], Any]] = {"act": lambda: agent.compute_q_values(window)}
    for label, fetch in (("target(s1)", "target_q1"), ("online(s1)", "online_q1"), ("loss", "loss")):
        if graph[fetch] is not None:
            parts[label] = functools.partial(_make_callable(session, graph["feeds"], [graph[fetch]]), *feeds)
    parts["train"] = lambda: agent._train_fn(*feeds)
    env.close()
    return {
        "experiment": name,
        "overrides": list(overrides),
        "batch_size": exp.batch_size,
        "median_ms": {label: round(_median_ms(call, repeats), 3) for label, call in parts.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.train_step", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="experiment")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeats", type=positive_int("--repeats"), default=200, help="timed calls per piece (200)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    return run_main(parser, _main, argv)


def report(result: dict[str, Any], as_json: bool, title: str) -> int:
    """Print a measurement: one JSON line, or `title` and a row per timed piece (its median_ms)."""
    if as_json:
        print(json.dumps(result))
        return 0
    print(title)
    width = max(len(label) for label in result["median_ms"])
    for label, ms in result["median_ms"].items():
        print(f"  {label:<{width}} {ms:8.3f} ms")
    return 0


def _main(args: argparse.Namespace) -> int:
    result = measure(args.name, args.overrides, args.repeats)
    title = f"{args.name} {' '.join(args.overrides)} (batch {result['batch_size']}), median of {args.repeats} calls:"
    return report(result, args.json, title)


if __name__ == "__main__":
    sys.exit(main())
