"""cave_rainbow without noisy networks (cave_conv's epsilon schedule instead).

One row of the Rainbow ablation, as in Hessel et al. (2018), Figure 3:
`make compare NAMES="cave_rainbow cave_rainbow_no_per cave_rainbow_no_nstep cave_rainbow_no_c51
cave_rainbow_no_noisy cave_rainbow_no_dueling"`."""

import dataclasses

from experiments.cave_rainbow import EXPERIMENT as CAVE_RAINBOW

EXPERIMENT = dataclasses.replace(CAVE_RAINBOW, noisy=False, policy="linear_eps")
