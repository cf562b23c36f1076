"""dqn-harness: DQN experiments on gymnasium games with keras-rl2, one command per experiment.

Modules, one concern each:
  compat      keras-rl2 1.0.5 on TensorFlow 2.21 / tf-keras (the only module that patches libraries)
  adapters    gymnasium env -> keras-rl's old-gym fit/test loop
  experiment  the Experiment schema, SET overrides, loading experiments/<name>.py (no TensorFlow)
  models      network builders named by experiments
  optimizers  RMSPropGraves and optimizers/losses by name
  runner      builds, trains, evaluates and saves one run (owns the run directory and logging)
  policies    the epsilon schedule that continues across a resume
  tensorboard TensorBoard scalars of a run (a keras-rl callback)
  media       frames of the greedy agent and demo GIFs
  rundirs     reading run directories back: config, summary, weights, where a run resumes
  play        rebuild a saved agent and watch it play (no training)
  runs_table  the table of past runs (no TensorFlow)
  plots       learning curves and final-metrics tables from logged files (no TensorFlow)
  compare     `compare`: train missing runs, reuse finished ones, plot and tabulate
  sweep       `sweep`: every (experiment, seed) run in parallel, local processes or Ray tasks
  bench_sweep benchmark: 4 runs with 2 workers against 1
  cli         `python -m harness ...`
"""
