"""The article's 16x16 Catch agent: three Conv2D layers, a dense relu layer and a linear Q head,
target network, Double DQN, Huber loss clipped at 1. One board is one state (the balls only fall,
so a single frame is Markov); the `frames` processor stores it as uint8 and feeds it channels-last."""

from harness import Experiment

EXPERIMENT = Experiment(
    env_id="Catch-v0",
    env_kwargs={"size": 16, "interval": 4},
    processor="frames",
    processor_kwargs={"size": None, "obs_low": 0.0, "obs_high": 1.0},
    network="conv",
    # 16x16 -> 16x16x16 -> 8x8x32 -> 8x8x32 -> Dense 128 -> 3 Q values.
    network_kwargs={"filters": [16, 32, 32], "kernel_sizes": [3, 3, 3], "strides": [1, 2, 1], "hidden": 128},
    memory_limit=50_000,
    window_length=1,
    eps_max=1.0,
    eps_min=0.05,
    eps_anneal_steps=20_000,
    gamma=0.95,
    batch_size=32,
    nb_steps_warmup=1_000,
    train_interval=1,
    target_model_update=1_000,
    delta_clip=1.0,
    enable_double_dqn=True,
    optimizer="adam",
    learning_rate=2.5e-4,
    nb_steps=60_000,
    eval_episodes=10,
    checkpoint_interval=10_000,
)
