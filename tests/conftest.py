"""Shared pytest setup. The project is installed (editable) into .venv, so nothing here touches
sys.path: tests import `harness`, `envs` and `experiments` as a user's code would."""
