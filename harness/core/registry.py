"""Finding experiment modules and turning a name plus overrides into a validated Experiment.

An experiment module defines `EXPERIMENT = Experiment(...)` and, for `tune`, optionally a
`SEARCH_SPACE` (plain data, harness.core.space). The project's own
live in the `experiments` package; a user adds folders of their own with `--experiments DIR`
(`make ... EXPERIMENTS=DIR`), which sets `DQN_HARNESS_EXPERIMENTS` (folders separated by
`os.pathsep`) so that the runs a sweep or compare starts see the same experiments.

Listing reads file names only; a module is imported when it is loaded by name. A name is a plain
module name that exists as a file in one of the folders: no dots, slashes or other path tricks,
and a name found in two folders is an error rather than a silent choice.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import UserError, did_you_mean
from harness.core.schema import Experiment, apply_overrides

ENV_VAR = "DQN_HARNESS_EXPERIMENTS"
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def builtin_dir() -> Path:
    """The folder of the project's own experiments (the `experiments` package)."""
    import experiments

    return Path(experiments.__file__).resolve().parent


def user_dirs() -> list[Path]:
    """The folders named by DQN_HARNESS_EXPERIMENTS, each checked to exist."""
    dirs = []
    for text in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if not text.strip():
            continue
        path = Path(text).expanduser()
        if not path.is_dir():
            raise UserError(
                f"EXPERIMENTS={text!r} is not a directory; expected a folder of experiment "
                "modules (<name>.py defining EXPERIMENT = Experiment(...))"
            )
        dirs.append(path.resolve())
    return dirs


def add_user_dirs(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Add folders of experiment modules for this process and every run it starts."""
    current = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    for path in paths:
        resolved = str(Path(path).expanduser().resolve())
        if resolved not in current:
            current.append(resolved)
    os.environ[ENV_VAR] = os.pathsep.join(current)
    user_dirs()  # a folder that does not exist: the error now, before anything runs


def experiment_files() -> dict[str, Path]:
    """Every experiment name and its file, the project's first, then each user folder's."""
    found: dict[str, Path] = {}
    for folder in [builtin_dir(), *user_dirs()]:
        for path in sorted(folder.glob("*.py")):
            if path.stem.startswith("_"):
                continue
            if path.stem in found:
                raise UserError(
                    f"experiment {path.stem!r} is defined twice: {found[path.stem]} and {path}; "
                    "expected one module per name"
                )
            found[path.stem] = path
    return found


def available_experiments() -> list[str]:
    return sorted(experiment_files())


def _import(name: str, path: Path) -> object:
    if path.parent == builtin_dir():
        return importlib.import_module(f"experiments.{name}")
    module_name = f"dqn_harness_user_experiments.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"{path} can't be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _load_module(name: str) -> tuple[object, Path]:
    """The experiment module `name` (imported) and its file; every problem a UserError."""
    found = experiment_files()
    listing = ", ".join(sorted(found)) or "(none)"
    if not name:
        raise UserError(f"no experiment given (NAME=...); available: {listing}")
    if not _MODULE_NAME.match(name):
        raise UserError(f"experiment name {name!r} is not a plain module name; available: {listing}")
    if name not in found:
        raise UserError(f"unknown experiment {name!r}{did_you_mean(name, found)}; available: {listing}")
    path = found[name]
    try:
        module = _import(name, path)
    except UserError as err:  # a setting out of range in the module's Experiment(...)
        raise UserError(f"{path.name}: {err}") from None
    except Exception as err:  # a mistake in the user's module: report it on one line
        raise UserError(f"{path} failed to load: {type(err).__name__}: {err}") from None
    return module, path


def load_experiment(name: str) -> Experiment:
    """Import the module `name` and return its EXPERIMENT, named after the module."""
    module, path = _load_module(name)
    exp = getattr(module, "EXPERIMENT", None)
    if not isinstance(exp, Experiment):
        raise UserError(f"{path} must define EXPERIMENT = Experiment(...)")
    return dataclasses.replace(exp, name=name)


def load_search_space(name: str) -> tuple[Any, Path]:
    """The module's SEARCH_SPACE (plain data, checked by harness.core.space), or None when it
    declares none, and the module's file."""
    module, path = _load_module(name)
    return getattr(module, "SEARCH_SPACE", None), path


def resolve_experiment(
    name: str, seed: int | None = None, steps: int | None = None, overrides: Sequence[str] = ()
) -> Experiment:
    """What `python -m harness run name --seed seed --steps steps --set ...` runs: the module's
    experiment with the overrides, then the step budget and the seed, validated."""
    return with_overrides(load_experiment(name), seed, steps, overrides)


def with_overrides(
    exp: Experiment, seed: int | None = None, steps: int | None = None, overrides: Sequence[str] = ()
) -> Experiment:
    changes = list(overrides)
    if steps is not None:
        changes.append(f"nb_steps={steps}")
    if seed is not None:
        changes.append(f"seed={seed}")
    return apply_overrides(exp, changes)
