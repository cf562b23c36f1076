"""Running one experiment: train, evaluate, resume and replay a single run.

  runner      one run as a sequence of named steps (owns what goes into its directory)
  evaluation  greedy evaluation with keras-rl's `test`
  resume      which run a resumed run continues, and from where
  play        rebuild a saved agent and watch it play
  media       frames and demo GIFs
  scripted    scripted players (random, perfect, heuristic) and the `baseline` command
  commands    the `run` and `list` commands

May import: harness.core, harness.kerasrl, harness.report.
"""
