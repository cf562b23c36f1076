"""Launching many runs: each run is its own `python -m harness run ...` process.

  sweep        every (experiment, seed) in parallel, local processes or Ray tasks; the executor
  compare      train the runs a comparison is missing (through the sweep executor), reuse the rest
  benchmark    the classic-control suite over several seeds (as compare does), then its table and figure
  tune         an Optuna study over a search space: trials as run processes (through the sweep executor)
  study        the study's storage (SQLite or PostgreSQL), sampler, pruner, and a trial's reporter
  tune_report  a study's trials table, best SET line and figures

May import: harness.core, harness.report, Optuna. Never TensorFlow (the runs import it, in their
processes; a trial's run gets its study's reporter from harness/cli.py).
"""
