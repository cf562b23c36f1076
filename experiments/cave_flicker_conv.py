"""cave_conv on flickering CAVE: each observation is blanked (all zeros) with probability 0.5, as
in Hausknecht & Stone's (2015) flickering Pong, the game going on unseen. The agent is cave_conv's
unchanged (the last 4 frames through the conv network), so on average 2 of its 4 frames show the
game, and none do one state in 16. The comparison is `make compare NAMES="cave_flicker_conv
cave_flicker_drqn"`: the same budget and settings, a 4-frame window against an LSTM.
"""

import dataclasses

from experiments.cave_conv import EXPERIMENT as CAVE_CONV

EXPERIMENT = dataclasses.replace(CAVE_CONV, env_kwargs={**CAVE_CONV.env_kwargs, "flicker": 0.5})
