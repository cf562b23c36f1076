"""Acrobot-v1 with rl-baselines3-zoo's tuned DQN settings, translated to keras-rl's names.

Source: hyperparams/dqn.yml of DLR-RM/rl-baselines3-zoo, entry `Acrobot-v1` (the same settings
since its v1.0 release, whose benchmark.md row, -76.6 ± 11.8 at 100k steps, they made; read at
commit 22e3ff2). Stable-Baselines3's DQN is vanilla DQN with a hard-copied target network, a Huber
loss (smooth_l1, beta 1) and Adam.

    zoo (SB3 DQN)                        here
    n_timesteps: 1e5                     nb_steps=100_000
    policy_kwargs: net_arch=[256, 256]   network="dense", hidden [256, 256] (ReLU, SB3's default)
    learning_rate: 6.3e-4 (Adam)         optimizer="adam", learning_rate=6.3e-4
    batch_size: 128                      batch_size=128
    buffer_size: 50000                   memory_limit=50_000
    learning_starts: 0                   nb_steps_warmup=128 (see below)
    gamma: 0.99                          gamma=0.99
    train_freq: 4, gradient_steps: -1    train_interval=4, gradient_steps=4 (-1: one per step collected)
    target_update_interval: 250          target_model_update=250 (env steps, as in SB3)
    exploration_fraction: 0.12           eps_anneal_steps=12_000 (0.12 x 100,000), eps_max=1.0
    exploration_final_eps: 0.1           eps_min=0.1
    (smooth_l1_loss, the mean over a batch)  delta_clip=1.0 (keras-rl's Huber, the same loss)
    (target: max over the target net)    enable_double_dqn=False
    max_grad_norm: 10 (SB3's default)    max_grad_norm=10.0
    (handle_timeout_termination)         bootstrap_truncation=True: the 500-step cap is bootstrapped

learning_starts 0 becomes a warm-up of one batch: keras-rl cannot sample from a memory that holds
fewer than window_length + 2 transitions, and below batch_size + 2 it samples with replacement
(with a warning per batch); SB3 samples with replacement from the first transitions on.

Not translated:
- the epsilon schedule is fixed in steps, where SB3's is a fraction of the budget (a STEPS
  override does not stretch it);
- Adam's epsilon (PyTorch 1e-8, Keras 1e-7) and the weight initialisation (PyTorch's
  Kaiming-uniform Linear layers, Keras' Glorot-uniform with zero biases).

Every 10,000 steps the greedy agent plays 10 validation episodes (their own seed), and the
best-validated weights are evaluated on 20 more.
"""

from harness import Experiment

EXPERIMENT = Experiment(
    env_id="Acrobot-v1",
    network="dense",
    network_kwargs={"hidden": [256, 256]},
    memory_limit=50_000,
    window_length=1,
    eps_max=1.0,
    eps_min=0.1,
    eps_anneal_steps=12_000,
    gamma=0.99,
    batch_size=128,
    nb_steps_warmup=128,
    train_interval=4,
    gradient_steps=4,
    target_model_update=250,
    delta_clip=1.0,
    enable_double_dqn=False,
    max_grad_norm=10.0,
    bootstrap_truncation=True,
    optimizer="adam",
    learning_rate=6.3e-4,
    nb_steps=100_000,
    validation_interval=10_000,
    validation_episodes=10,
    eval_episodes=20,
    checkpoint_interval=20_000,
)
