"""Project environments; importing this package registers their Gymnasium ids.

One `register(...)` call per env. The `not in gymnasium.registry` guard lets the package be
imported (or reloaded) more than once without Gymnasium's re-registration warning.
"""

import gymnasium
from gymnasium.envs.registration import register

if "Catch-v0" not in gymnasium.registry:
    # The 500-step cap is what ends a perfect player's episode (truncated): it never misses.
    register(
        id="Catch-v0",
        entry_point="envs.catch:CatchEnv",
        kwargs={"size": 8, "interval": 4},
        max_episode_steps=500,
    )

if "Cave-v0" not in gymnasium.registry:
    # The 10,000-step cap (over 5 minutes of play at 30 fps) ends an episode that never crashes.
    register(
        id="Cave-v0",
        entry_point="envs.cave:CaveEnv",
        kwargs={"screen": 96},
        max_episode_steps=10_000,
    )
