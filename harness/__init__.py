"""dqn-harness: DQN experiments on gymnasium games with keras-rl2, one command per experiment.

Layers, each a folder; a layer imports only the layers below it (checked by import-linter,
`make lint`):

  cli.py     `python -m harness ...`: one table of subcommands
  launch/    many runs at once: sweep (processes or Ray), compare, benchmark,
             tune (Optuna)                                                    (no TensorFlow)
  run/       one run: runner, evaluation, resume, play, media, scripted players
  report/    curves, tables, statistics, the benchmark's table and figure, the
             runs table, from a run's files only                              (no TensorFlow)
  kerasrl/   everything that touches keras-rl, TensorFlow or Keras
  core/      schema, registry, search spaces, run directory, files, errors, scoring, signals
             (no TensorFlow)

`from harness import Experiment` is all an experiment module needs.
"""

from harness.core.schema import Experiment

__all__ = ["Experiment"]
