"""Benchmarks of the harness and their results (`make bench`, `make bench-memory`, `make bench-sweep`,
`make bench-step`, `make bench-checkpoint`, `python -m bench.conv_layout`).

Run from the project root as `python -m bench.<name>`; they import the installed `harness` and
write their figures beside this file (results.md/.json, memory.json). Not part of the package.
"""
