"""The keras-rl layer: the only code that imports keras-rl, TensorFlow or Keras.

  compat       keras-rl2 1.0.5 on TensorFlow 2.21 / tf-keras (the only module that patches libraries)
  adapters     gymnasium env -> keras-rl's old-gym fit/test loop
  agents       env, processor, memory, policy and compiled agent from an Experiment; weights loading
  fast         FastDQNAgent: one session call per train step
  memory       RingMemory: the fast path's replay memory, its batches and n-step returns
  prioritized  PrioritizedRingMemory: proportional prioritized replay
  sum_tree     SumTree: the sum tree it samples from
  sum_tree_kernels  the tree's walks, compiled with Numba (imported with the first SumTree)
  noisy        NoisyDense: noisy networks, and the switch that turns the noise off for greedy play
  distributional  C51: the categorical Q head, its dueling form, the projected target
  recurrent    RecurrentDQNAgent and its network: DRQN (per-frame encoder -> LSTM -> Q head), burn-in
  sequence_memory  SequenceMemory: sequence replay for the recurrent agent, never across an episode start
  models       network builders named by experiments
  optimizers   RMSPropGraves, optimizers and losses by name
  policies     the epsilon schedule read at an offset step (keras-rl's at offset 0)
  processors   keras-rl processors (frame downsampling)
  checkpoint   the whole training state in a checkpoint folder and back, for exact resume
  callbacks    metrics file, global step, checkpoints, progress, validation (keras-rl callbacks)
  tensorboard  TensorBoard scalars of a run (a keras-rl callback)

May import: harness.core, `envs`. Every TensorFlow import goes through `compat` first.
"""
