"""Exploration policies the harness adds to keras-rl's: a linear epsilon schedule that can resume.

keras-rl's `LinearAnnealedPolicy` computes its value from `self.agent.step`, which `Agent.fit` resets
to 0 on every call. A run resumed from a checkpoint at step N would therefore restart exploration at
`eps_max`. `ResumableLinearAnnealedPolicy` is the same schedule read at `step_offset + agent.step`,
so a resumed run goes on where its parent stopped. With `step_offset=0` it is keras-rl's policy,
value for value.

Why a subclass rather than shifting `value_max` / `nb_steps` to start the line at the checkpoint's
epsilon: the shifted line is only equal to the original while both are still annealing, the
config would no longer show the experiment's own schedule, and the metric `mean_eps` would not say
where on the original schedule the run is. One offset keeps the schedule as written.
"""

from __future__ import annotations

from typing import Any

from harness.kerasrl.compat import LinearAnnealedPolicy


class ResumableLinearAnnealedPolicy(LinearAnnealedPolicy):
    """keras-rl's `LinearAnnealedPolicy` evaluated at the global step `step_offset + agent.step`."""

    def __init__(
        self,
        inner_policy: Any,
        attr: str,
        value_max: float,
        value_min: float,
        value_test: float,
        nb_steps: int,
        step_offset: int = 0,
    ) -> None:
        super().__init__(
            inner_policy, attr=attr, value_max=value_max, value_min=value_min, value_test=value_test, nb_steps=nb_steps
        )
        if step_offset < 0:
            raise ValueError(f"step_offset must be >= 0; got {step_offset}")
        self.step_offset = int(step_offset)

    def get_current_value(self) -> float:
        if not self.agent.training:
            return self.value_test
        # The same line as keras-rl's (f(x) = a x + b, floored at value_min), at the global step.
        a = -float(self.value_max - self.value_min) / float(self.nb_steps)
        b = float(self.value_max)
        return max(self.value_min, a * float(self.step_offset + self.agent.step) + b)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["step_offset"] = self.step_offset
        return config
