"""The article's 8x8 Catch agent: Flatten -> Dense 32 relu -> Dense 3, target network, Double DQN,
Huber loss clipped at 1."""

from harness import Experiment

EXPERIMENT = Experiment(
    env_id="Catch-v0",
    env_kwargs={"size": 8, "interval": 4},
    network="dense",
    network_kwargs={"hidden": [32]},
    memory_limit=50_000,
    window_length=1,
    eps_max=1.0,
    eps_min=0.05,
    eps_anneal_steps=10_000,
    gamma=0.95,
    batch_size=32,
    nb_steps_warmup=1_000,
    train_interval=1,
    target_model_update=1_000,
    delta_clip=1.0,
    enable_double_dqn=True,
    optimizer="rmsprop",
    learning_rate=1e-3,
    nb_steps=30_000,
    eval_episodes=10,
    checkpoint_interval=10_000,
)
