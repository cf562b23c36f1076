"""cave_drqn on flickering CAVE (`flicker=0.5`: each observation is blanked with probability 0.5,
Hausknecht & Stone's (2015) flickering Pong). One frame per decision through the LSTM, which has
to carry what the blanked frames hide; sequences of 10 loss steps after a burn-in of 5, as
cave_drqn. Every other setting is cave_conv's, so `make compare NAMES="cave_flicker_conv
cave_flicker_drqn"` compares a 4-frame window against an LSTM on the same game and budget.
"""

import dataclasses

from experiments.cave_drqn import EXPERIMENT as CAVE_DRQN

EXPERIMENT = dataclasses.replace(CAVE_DRQN, env_kwargs={**CAVE_DRQN.env_kwargs, "flicker": 0.5})
