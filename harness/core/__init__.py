"""The TensorFlow-free core: what an experiment is and where its run lives.

  errors    UserError (one-line user mistakes), its message helpers
  files     atomic writes (every file the harness writes)
  schema    the Experiment dataclass, validated on every construction, and SET overrides
  registry  finding experiment modules (the project's and the user's) and resolving name + overrides
  space     tune's search spaces (SEARCH_SPACE, plain data): parsed and checked against the schema
  rundir    the run directory: layout, new folders, readers, checkpoints, resume point, reuse check
  scoring   how episodes are scored, evaluation and validation seeds
  signals   SIGINT/SIGTERM handling for every long-running command

May import: the standard library, NumPy, `experiments`. Never TensorFlow, Keras or keras-rl, and no
other harness layer.
"""
