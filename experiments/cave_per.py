"""cave_conv with proportional prioritized replay (Schaul et al. 2016): transitions are drawn in
proportion to |TD error|**0.6, the loss is weighted by importance-sampling weights whose exponent
anneals from 0.4 to 1 over the run. alpha 0.6 and beta0 0.4 are the paper's proportional
variant's. The paper also cut the learning rate by 4; here it stays cave_conv's, so that
`make compare NAMES="cave_conv cave_nstep cave_per"` changes one thing per experiment (the
weights, divided by their batch maximum, are at most 1, which already shrinks the steps)."""

import dataclasses

from experiments.cave_conv import EXPERIMENT as CAVE_CONV

EXPERIMENT = dataclasses.replace(CAVE_CONV, prioritized_replay=True, per_alpha=0.6, per_beta0=0.4)
