"""Reporting, from a run directory's files only: figures and tables can be redrawn any time.

  plots       learning curves (one run's curves.png, comparisons, `plot`)
  tables      the final-metrics table (Markdown, CSV), aligned text, mean ± std
  runs_table  the `runs` command: past runs, newest first

May import: harness.core, NumPy, matplotlib. Never TensorFlow.
"""
