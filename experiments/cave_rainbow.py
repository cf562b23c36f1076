"""Rainbow (Hessel et al. 2018) on CAVE: cave_conv's network, game and budget with all six of
Rainbow's components on the fast path:

- Double DQN targets (as cave_conv);
- dueling head, built per atom (DuelingAtoms: value and advantage streams on the dense 512 layer);
- 3-step returns;
- proportional prioritized replay, alpha 0.5, beta 0.4 -> 1 (Rainbow's values);
- noisy networks (the dense 512 layer and both head streams, sigma0 0.5), so training acts
  greedily: no epsilon schedule;
- distributional C51: 51 atoms on [-1, 0.6]. CAVE's rewards are +0.01 a frame and -1 for the
  crash, so with gamma 0.98 a return lies in [-1, 0.5] (the atoms 0.032 apart); Rainbow's Atari
  support [-10, 10] would put all of it on a handful of atoms.

Everything else is cave_conv's (Adam 2.5e-4, target copy every 2,000 steps, batch 32, train every
4 decisions, validation every 25,000 steps), so `make compare NAMES="cave_conv cave_rainbow"`
compares the agents at one budget, and the cave_rainbow_no_* experiments take one component out
each. The default budget is 250,000 steps, not cave_conv's 400,000: a train step here costs about
1/0.69 of cave_conv's (`make bench`, 0.69x its train steps/s), so 250,000 steps take about as long
as cave_conv's 400,000 (0.625 of the steps, the rest left for the longer validation episodes of a
better player): the default runs compare the agents at the same wall time.
"""

import dataclasses

from experiments.cave_conv import EXPERIMENT as CAVE_CONV

EXPERIMENT = dataclasses.replace(
    CAVE_CONV,
    enable_dueling_network=True,
    dueling_type="avg",
    n_step=3,
    prioritized_replay=True,
    per_alpha=0.5,
    per_beta0=0.4,
    noisy=True,
    noisy_sigma0=0.5,
    policy="greedy",
    distributional=True,
    atoms=51,
    v_min=-1.0,
    v_max=0.6,
    nb_steps=250_000,
)
