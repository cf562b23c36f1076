"""Launching many runs: each run is its own `python -m harness run ...` process.

  sweep      every (experiment, seed) in parallel, local processes or Ray tasks; the executor
  compare    train the runs a comparison is missing (through the sweep executor), reuse the rest
  benchmark  the classic-control suite over several seeds (as compare does), then its table and figure

May import: harness.core, harness.report. Never TensorFlow (the runs import it, in their processes).
"""
