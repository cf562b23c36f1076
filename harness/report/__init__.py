"""Reporting, from a run directory's files only: figures and tables can be redrawn any time.

  plots       learning curves (one run's curves.png, comparisons, `plot`)
  tables      the final-metrics table (Markdown, CSV), aligned text
  stats       mean ± std, and the IQM with its 95% stratified-bootstrap interval (rliable)
  references  published DQN results on the classic-control games, with their sources
  benchmark   the `benchmark` command's table and figure
  runs_table  the `runs` command: past runs, newest first

May import: harness.core, NumPy, matplotlib, rliable. Never TensorFlow.
"""
