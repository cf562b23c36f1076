"""cave_conv with 3-step returns: each target sums three stored transitions' rewards (three
decisions, six frames) before it bootstraps from the target network, so the news that a block
was passed reaches the choice of side three times faster than with keras-rl's one-step target.
Every other setting is cave_conv's, so `make compare NAMES="cave_conv cave_nstep cave_per"`
compares the replay targets alone. n = 3 is Rainbow's (Hessel et al. 2018) and Dopamine's."""

import dataclasses

from experiments.cave_conv import EXPERIMENT as CAVE_CONV

EXPERIMENT = dataclasses.replace(CAVE_CONV, n_step=3)
