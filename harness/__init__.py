"""dqn-harness: DQN experiments on gymnasium games with keras-rl2, one command per experiment.

Modules, one concern each:
  compat      keras-rl2 1.0.5 on TensorFlow 2.21 / tf-keras (the only module that patches libraries)
  adapters    gymnasium env -> keras-rl's old-gym fit/test loop
  experiment  the Experiment schema, SET overrides, loading experiments/<name>.py (no TensorFlow)
  models      network builders named by experiments
  optimizers  RMSPropGraves and optimizers/losses by name
  runner      builds, trains, evaluates and saves one run (owns the run directory and logging)
  cli         `python -m harness ...`
"""
