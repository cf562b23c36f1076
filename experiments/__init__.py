"""One module per experiment: `EXPERIMENT = Experiment(...)`, a table of settings (see harness/core/schema.py)."""
