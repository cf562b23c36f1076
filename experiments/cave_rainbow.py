"""Rainbow (Hessel et al. 2018) on CAVE: cave_conv's network, game and budget with all six of
Rainbow's components on the fast path:

- Double DQN targets (as cave_conv);
- dueling head, built per atom (DuelingAtoms: value and advantage streams on the dense 512 layer);
- 3-step returns;
- proportional prioritized replay, alpha 0.5, beta 0.4 -> 1 (Rainbow's values);
- noisy networks (the dense 512 layer and both head streams, sigma0 0.5), so training acts
  greedily: no epsilon schedule;
- distributional C51: 51 atoms on [-1, 1]. CAVE's rewards are +0.01 a frame and -1 for the
  crash; each decision holds its action for 2 frames and keras-rl sums their rewards, so a
  decision earns 0.02 and, with gamma 0.98 per decision, a return lies in [-1, 0.02 / (1 - 0.98)]
  = [-1, 1] (the atoms 0.04 apart). A state T decisions before a crash is worth about
  1 - 2 * 0.98**T: 0.6 at T = 80, 0.96 at T = 200, so a good player's values sit near 1. (The
  support was [-1, 0.6] until 2026-12-04, from a bound that forgot the frame skip: every state
  more than 80 decisions from a crash fell on the top atom, and the agent could not tell 100
  safe decisions from 1,000.) Rainbow's Atari support [-10, 10] would put all of it on a handful
  of atoms.

Everything else is cave_conv's (Adam 2.5e-4, target copy every 2,000 steps, batch 32, train every
4 decisions, validation every 25,000 steps), so `make compare NAMES="cave_conv cave_rainbow"`
compares the agents at one budget, and the cave_rainbow_no_* experiments take one component out
each. The default budget is 250,000 steps, not cave_conv's 400,000: a train step here costs about
1/0.7 of cave_conv's (`make bench`: 0.69x its train steps/s on 2026-12-02, 0.73x on 2026-12-04), so
250,000 steps take about as long as cave_conv's 400,000 (0.625 of the steps, the rest left for the
longer validation episodes of a better player): the default runs compare the agents at the same
wall time.
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
    v_max=1.0,
    nb_steps=250_000,
)
