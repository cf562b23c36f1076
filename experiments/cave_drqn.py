"""Recurrent DQN on CAVE (DRQN, Hausknecht & Stone 2015, with R2D2's burn-in, Kapturowski et al.
2019): one 48x48 frame per decision instead of cave_conv's last 4, through cave_conv's three
Conv2D layers, an LSTM in place of its dense 512 layer (DRQN's architecture: the LSTM replaces
the first fully connected layer), and the linear Q head for the 2 actions.

Replay draws sequences of 10 loss steps (DRQN's 10-step unroll) after a burn-in of 5 steps that
run the online and target networks from a zero state without loss (R2D2's burn-in, scaled down
from its 40 + 80 to CAVE's short credit chain: 5 decisions are 10 frames, more than the 8 frames
cave_conv's window spans). The state starts at zero at every episode start, for acting and in
replay (a sequence never crosses an episode start). Double DQN targets come from the target
network along the sequence.

Two settings are smaller than the paper's, for the CPU: 8 sequences per train step (batch_size
counts sequences: 80 loss steps, cave_conv trains on 32 transitions) and 256 LSTM units (DRQN:
512). A train step runs both networks over 8 x 16 frames and the online one backwards over 8 x
11; the conv layers dominate its cost, which grows with batch_size x (burn_in + sequence_length
+ 1). Measured on a loaded 2-core machine: a train step took 0.6 s against cave_conv's 0.1 s,
and 2.3 s with the paper's 32 sequences and 512 units.

Every other setting is cave_conv's (game, frame skip 2, Adam 2.5e-4, gamma 0.98, epsilon 1 ->
0.02 over 90,000 steps, target copy every 2,000 steps, train every 4 decisions, validation every
25,000 steps, 400,000 decisions), so `make compare NAMES="cave_conv cave_drqn"` compares the
memories: a 4-frame window against an LSTM.
"""

import dataclasses

from experiments.cave_conv import EXPERIMENT as CAVE_CONV

EXPERIMENT = dataclasses.replace(
    CAVE_CONV,
    # 48x48x1 -> 24x24x32 -> 12x12x64 -> 6x6x64 -> LSTM 256 -> 2 Q values.
    network_kwargs={"filters": [32, 64, 64], "kernel_sizes": [4, 4, 3], "strides": [2, 2, 2]},
    window_length=1,
    recurrent=True,
    lstm_units=256,
    batch_size=8,
    sequence_length=10,
    burn_in=5,
)
