"""Benchmark: how fast an experiment could train if keras-rl's `fit` loop and every callback were gone.

`python -m bench.loop_ceiling catch_dense --loop fit|bare [--steps 10000] [--warmup 200] [--json]`
builds the experiment's agent as a run does (seed 0, the fast path, the experiment's processor,
policy and memory) and trains `--steps` steps in this process:

- `fit`: keras-rl's `Agent.fit` with no callbacks (no metrics file, progress, checkpoints,
  TensorBoard or divergence guard) and `verbose=0`;
- `bare`: the least a training loop can do: `forward`, the env step, the processor, `backward`,
  and the extra `forward`/`backward` keras-rl makes at an episode's end, with nothing else (no
  `info` accumulation, no deep copies, no logs, no callbacks).

Both train on the same transitions (tests/test_bench_loop_ceiling.py checks the replay memories
match), so the ratio of their env steps/s bounds what replacing keras-rl's loop could gain while
the agent's own step (session calls, sampling, the policy) and the env stay as they are. Run the
two alternating on an idle machine; the speed issue's catch_dense target is 1.5x `make bench`'s
`base` row (docs/results.md, Speed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from harness.cli import OneLineParser, positive_int, run_main

LOOPS = ("fit", "bare")


def build(name: str, steps: int, warmup: int) -> tuple[Any, Any]:
    """The experiment's env and compiled agent, seeded as a run seeds them (seed 0)."""
    from harness.core.registry import load_experiment
    from harness.core.schema import choose_onednn

    exp = load_experiment(name)
    choose_onednn(exp)  # before TensorFlow loads, as `python -m harness run` does
    from harness.kerasrl.agents import build_agent, make_env
    from harness.run.runner import seed_everything

    exp = dataclasses.replace(exp, nb_steps=steps, nb_steps_warmup=warmup, seed=0)
    seed_everything(exp.seed)
    env = make_env(exp, seed=exp.seed)
    return env, build_agent(exp, env)


def bare_fit(agent: Any, env: Any, steps: int) -> None:
    """keras-rl's `fit` reduced to the agent's and env's calls, in the same order (no action
    repetition, no random starts, no episode step limit, none of which the experiments use here)."""
    import numpy as np

    processor = agent.processor
    agent.training = True
    agent._on_train_begin()
    agent.step = 0

    def new_episode() -> Any:
        agent.reset_states()
        observation = env.reset()
        return observation if processor is None else processor.process_observation(observation)

    observation = new_episode()
    while agent.step < steps:
        action = agent.forward(observation)
        if processor is not None:
            action = processor.process_action(action)
        observation, reward, done, info = env.step(action)
        if processor is not None:
            observation, reward, done, info = processor.process_step(observation, reward, done, info)
        agent.backward(np.float32(reward), terminal=done)  # fit sums rewards into a float32
        agent.step += 1
        if done:
            # keras-rl's episode end: one more forward and a non-terminal backward, then a reset.
            agent.forward(observation)
            agent.backward(0.0, terminal=False)
            observation = new_episode()


def measure(name: str, loop: str, steps: int, warmup: int) -> tuple[dict[str, Any], Any]:
    """Train `steps` steps with `loop`; the figures and the trained agent."""
    env, agent = build(name, steps, warmup)
    started = time.perf_counter()
    if loop == "fit":
        agent.fit(env, nb_steps=steps, verbose=0)
    else:
        bare_fit(agent, env, steps)
    seconds = time.perf_counter() - started
    env.close()
    result = {"experiment": name, "loop": loop, "steps": steps, "warmup": warmup, "seconds": seconds}
    result["env_steps_per_second"] = steps / seconds
    return result, agent


def _main(args: argparse.Namespace) -> int:
    result, _ = measure(args.name, args.loop, args.steps, args.warmup)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.name} {args.loop}: {result['env_steps_per_second']:,.1f} env steps/s ({result['seconds']:.2f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m bench.loop_ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="catch_dense", help="an experiment (catch_dense)")
    parser.add_argument("--loop", choices=LOOPS, default="bare", help="keras-rl's fit or the bare loop (bare)")
    parser.add_argument("--steps", type=positive_int("--steps"), default=10_000, help="steps trained (10000)")
    parser.add_argument("--warmup", type=positive_int("--warmup"), default=200, help="nb_steps_warmup (200)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return run_main(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
