"""catch_dense with Graves' RMSProp (centred, epsilon inside the root, momentum 0.9) in place of
Keras' RMSprop: the article's optimizer comparison. Every other setting is catch_dense's, so
`make compare NAMES="catch_dense catch_graves"` compares the optimizers alone.

Learning rate 1e-4, Graves' own. A short sweep (3 seeds each, 30,000 steps) reached a 1.000 catch
rate at every rate tried (1e-4, 2.5e-4, 5e-4, 1e-3), but 1e-4 learned fastest: mean training
episode reward over the run 34 against 18-23 for the larger rates. With momentum 0.9 a step is
about ten times the rate, and the centred denominator shrinks as gradients agree, so larger rates
overshoot.
"""

import dataclasses

from experiments.catch_dense import EXPERIMENT as CATCH_DENSE

EXPERIMENT = dataclasses.replace(
    CATCH_DENSE,
    optimizer="graves",  # harness.kerasrl.optimizers.RMSPropGraves: rho 0.95, momentum 0.9, epsilon 1e-4
    learning_rate=1e-4,
)
