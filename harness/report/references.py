"""Published DQN results on the classic-control games, as data, with where each number comes from.

The one place the benchmark's reference columns are read from (harness.report.benchmark). Each
source measures something a little different, so each says what its ± is; neither is the same
measurement as this harness's (the mean greedy return of each seed's best-validated weights, ±
over seeds), and the table prints them side by side, not as a test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Where a set of reference numbers was published and what they measure."""

    key: str
    name: str
    url: str
    revision: str  # the commit the numbers were read at
    measures: str  # what the mean and the ± are


@dataclass(frozen=True)
class Reference:
    """One published result: mean ± spread of the return on `env_id` after `steps` env steps."""

    source: Source
    env_id: str  # as published (it may be an older version of the game than the one run here)
    mean: float
    spread: float
    steps: int
    count: int  # what the spread is over: evaluation episodes (the zoo) or seeds (CleanRL)
    digits: int  # the decimals it is shown with

    def text(self) -> str:
        """'mean ± spread'."""
        return f"{self.mean:,.{self.digits}f} ± {self.spread:,.{self.digits}f}"


ZOO = Source(
    key="zoo",
    # benchmark.md's DQN rows: mean_reward, std_reward, n_timesteps, eval_episodes.
    name="rl-baselines3-zoo benchmark.md",
    url="https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md",
    revision="22e3ff2 (the DQN rows date from its v1.0 release, a930f20, March 2021)",
    measures=(
        "one trained agent per game (the published one, trained with hyperparams/dqn.yml), its final "
        "weights played greedily for about 150,000 steps; ± is the standard deviation over those "
        "evaluation episodes, not over seeds ('not a quantitative benchmark as it corresponds to "
        "only one run')"
    ),
)

CLEANRL = Source(
    key="cleanrl",
    # docs/rl-algorithms/dqn.md, "Experiment results": the `dqn.py` column.
    name="CleanRL dqn.py",
    url="https://docs.cleanrl.dev/rl-algorithms/dqn/#experiment-results",
    revision="fe8d8a0 (docs/rl-algorithms/dqn.md; benchmark/dqn.sh ran 3 seeds)",
    measures=(
        "cleanrl/dqn.py with its defaults (500,000 steps, epsilon ending at 0.05), the average "
        "episodic return during training; ± over 3 seeds; no LunarLander row"
    ),
)

SOURCES: tuple[Source, ...] = (ZOO, CLEANRL)

# Per game (the env id run here), the published rows. LunarLander-v3 is compared with the zoo's
# LunarLander-v2 row: gymnasium 1.x has only v3.
REFERENCES: dict[str, tuple[Reference, ...]] = {
    "CartPole-v1": (
        Reference(ZOO, "CartPole-v1", 500.000, 0.000, 50_000, 300, 1),
        Reference(CLEANRL, "CartPole-v1", 488.69, 16.11, 500_000, 3, 2),
    ),
    "Acrobot-v1": (
        Reference(ZOO, "Acrobot-v1", -76.639, 11.752, 100_000, 1932, 1),
        Reference(CLEANRL, "Acrobot-v1", -91.54, 7.20, 500_000, 3, 2),
    ),
    "MountainCar-v0": (
        Reference(ZOO, "MountainCar-v0", -100.849, 9.925, 120_000, 1487, 1),
        Reference(CLEANRL, "MountainCar-v0", -194.95, 8.48, 500_000, 3, 2),
    ),
    "LunarLander-v3": (Reference(ZOO, "LunarLander-v2", 154.382, 79.241, 100_000, 200, 1),),
}


def reference(env_id: str, source: Source) -> Reference | None:
    """The row `source` published for the game `env_id`, or None."""
    return next((ref for ref in REFERENCES.get(env_id, ()) if ref.source is source), None)
