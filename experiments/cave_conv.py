"""The article's CAVE agent: the last 4 frames, downsampled 96 -> 48, through three Conv2D layers,
a dense relu layer and a linear Q head for the 2 actions (release, press).

Each action is held for 2 frames (frame skip): the scripted pilot loses nothing at that rate, and
half as many decisions per frame halve the cost of a frame and shorten the credit chain from a
choice of side to the block it dodges; the 4 stacked frames then span 8 frames of motion.
Every 25,000 steps the greedy agent plays 10 validation episodes (their own seed), and the
weights that validated best are the ones evaluated. Budget: 400,000 decisions (800,000 frames),
about 43 minutes alone on 2 cores. Tuning notes: docs/tuning.md."""

from harness import Experiment

EXPERIMENT = Experiment(
    env_id="Cave-v0",
    processor="frames",
    processor_kwargs={"size": 48},
    network="conv",
    # 48x48x4 -> 24x24x32 -> 12x12x64 -> 6x6x64 -> Dense 512 -> 2 Q values.
    network_kwargs={"filters": [32, 64, 64], "kernel_sizes": [4, 4, 3], "strides": [2, 2, 2], "hidden": 512},
    memory_limit=100_000,
    window_length=4,
    action_repetition=2,
    eps_max=1.0,
    eps_min=0.02,
    eps_anneal_steps=90_000,
    gamma=0.98,
    batch_size=32,
    nb_steps_warmup=10_000,
    train_interval=4,
    target_model_update=2_000,
    delta_clip=1.0,
    enable_double_dqn=True,
    optimizer="adam",
    learning_rate=2.5e-4,
    nb_steps=400_000,
    validation_interval=25_000,
    validation_episodes=10,
    eval_episodes=20,
    checkpoint_interval=50_000,
)
