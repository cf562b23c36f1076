"""Search spaces for `tune`: plain data beside an experiment's EXPERIMENT, parsed and checked here.

An experiment module may declare, beside `EXPERIMENT = Experiment(...)`,

    SEARCH_SPACE = {
        "learning_rate": {"log_uniform": [1e-5, 1e-2]},
        "gamma": {"categorical": [0.9, 0.95, 0.99]},
        "train_interval": {"int_uniform": [1, 4]},
    }

one schema field per entry, each with one distribution:

  uniform [low, high]           a float drawn uniformly                      (float fields)
  log_uniform [low, high]       a float drawn uniformly in log space, low > 0 (float fields)
  int_uniform [low, high]       an integer, both ends included                (int or float fields)
  int_log_uniform [low, high]   an integer drawn in log space, low >= 1       (int or float fields)
  categorical [choice, ...]     one of the choices: numbers, booleans, strings, None, or JSON
                                dicts and lists (e.g. network_kwargs)          (any settable field)

A module without SEARCH_SPACE is tuned over DEFAULT_SEARCH_SPACE (the DQN settings). Every entry
is checked against the experiment before anything runs: an unknown field, a field that sets the
budget or the measurement, a range that is empty or out of the field's allowed values, a
distribution that does not match the field's type, or a choice that `SET` could not carry is a
UserError naming the entry. Each end of a range and each choice is applied to the experiment as
the `SET key=value` text a trial run will get, so that what is checked is what runs. No Optuna
here: harness.launch.tune turns the parsed space into Optuna's suggestions.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from harness.core.errors import UserError, did_you_mean
from harness.core.schema import Experiment, apply_overrides, field_types

DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "int_log_uniform", "categorical")
_FLOAT_KINDS = ("uniform", "log_uniform")
_INT_KINDS = ("int_uniform", "int_log_uniform")

# Fields that set a trial's budget or how it is measured (the objective), or that hold functions.
NOT_TUNABLE = (
    "name",
    "callbacks",
    "seed",
    "nb_steps",
    "validation_interval",
    "validation_episodes",
    "eval_episodes",
    "checkpoint_interval",
    "keep_checkpoints",
    "log_interval",
)

# The DQN settings that matter most on small games, with ranges every project experiment accepts;
# an experiment module's own SEARCH_SPACE replaces it as a whole.
DEFAULT_SEARCH_SPACE: dict[str, dict[str, list[Any]]] = {
    "learning_rate": {"log_uniform": [1e-5, 1e-2]},
    "gamma": {"categorical": [0.9, 0.95, 0.98, 0.99]},
    "batch_size": {"categorical": [16, 32, 64, 128]},
    "train_interval": {"categorical": [1, 2, 4]},
    "target_model_update": {"categorical": [250, 1000, 4000]},
    "eps_min": {"uniform": [0.01, 0.2]},
    "enable_double_dqn": {"categorical": [True, False]},
}


@dataclass(frozen=True)
class Param:
    """One tuned field: its distribution and range (`low`, `high`) or its `choices`."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    @property
    def log(self) -> bool:
        return self.kind in ("log_uniform", "int_log_uniform")

    def encoded_choices(self) -> list[None | bool | int | float | str]:
        """The choices as values Optuna stores (None, bool, int, float, str): dicts and lists
        become their compact JSON text."""
        return [encode_choice(choice) for choice in self.choices]

    def decode(self, stored: Any) -> Any:
        """The setting for a value Optuna stored for this parameter."""
        if self.kind != "categorical":
            return int(stored) if self.kind in _INT_KINDS else float(stored)
        for choice in self.choices:
            if encode_choice(choice) == stored:
                return choice
        raise UserError(f"search space {self.name}: the study holds {stored!r}, which is not one of its choices")

    def to_data(self) -> dict[str, list[Any]]:
        """The entry as plain data, as a SEARCH_SPACE would write it."""
        if self.kind == "categorical":
            return {self.kind: list(self.choices)}
        return {self.kind: [self.low, self.high]}


def encode_choice(value: Any) -> None | bool | int | float | str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return typing.cast(None | bool | int | float | str, value)


def value_text(value: Any) -> str:
    """A setting as the text `SET key=<text>` parses back to the same value (no spaces)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def assignment(name: str, value: Any) -> str:
    """`name=<text>`, one `SET` override."""
    return f"{name}={value_text(value)}"


def space_to_data(params: tuple[Param, ...]) -> dict[str, dict[str, list[Any]]]:
    return {p.name: p.to_data() for p in params}


# ---------------------------------------------------------------------------------------------
# Parsing


def _base_types(field_name: str) -> set[Any]:
    tp = field_types()[field_name]
    if typing.get_origin(tp) in (Union, types.UnionType):
        return {a for a in typing.get_args(tp) if a is not type(None)}
    return {tp}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_settable(exp: Experiment, name: str, value: Any, what: str) -> None:
    """`value` must reach a trial as a SET text that reads back as itself and fits the experiment."""
    text = value_text(value)
    if any(ch.isspace() for ch in text) or "'" in text:
        raise UserError(f"{what} {value!r} has a space or a single quote, which a SET override cannot carry")
    try:
        applied = getattr(apply_overrides(exp, [f"{name}={text}"]), name)
    except UserError as err:
        raise UserError(f"{what} {value!r}: {err}") from None
    widened = type(value) is int and type(applied) is float  # an integer for a float field
    if applied != value or (type(applied) is not type(value) and not widened):
        expected = " or ".join(sorted(getattr(t, "__name__", str(t)) for t in _base_types(name)))
        raise UserError(f"{what} {value!r} does not have the field's type; expected {expected}")


def _parse_range(exp: Experiment, name: str, kind: str, args: Any, where: str) -> Param:
    bases = _base_types(name)
    if kind in _FLOAT_KINDS and float not in bases:
        raise UserError(
            f"{where}: {kind} draws floats, but {name} is {_type_words(bases)}; "
            f"use {'int_uniform, int_log_uniform or ' if int in bases else ''}categorical"
        )
    if kind in _INT_KINDS and not bases & {int, float}:
        raise UserError(f"{where}: {kind} draws integers, but {name} is {_type_words(bases)}; use categorical")
    shape = "[low, high] of integers" if kind in _INT_KINDS else "[low, high] of numbers"
    if not isinstance(args, (list, tuple)) or len(args) != 2 or not all(_is_number(a) for a in args):
        raise UserError(f"{where}: {kind} {args!r} is not allowed; expected {shape}")
    low, high = args
    if kind in _INT_KINDS and not all(isinstance(a, int) for a in args):
        raise UserError(f"{where}: {kind} {list(args)!r} is not allowed; expected {shape}")
    if not low < high:
        raise UserError(f"{where}: {kind} {list(args)!r} is an empty range; expected low < high")
    if kind in ("log_uniform", "int_log_uniform") and low <= 0:
        raise UserError(f"{where}: {kind} {list(args)!r} is not allowed; a log scale needs low > 0")
    if kind in _FLOAT_KINDS:
        low, high = float(low), float(high)
    for end, value in (("low", low), ("high", high)):
        _check_settable(exp, name, value, f"{where}: {end}")
    return Param(name, kind, low=low, high=high)


def _type_words(bases: set[Any]) -> str:
    names = " or ".join(sorted(getattr(t, "__name__", "str") if t is not Any else "str" for t in bases))
    return f"{'an' if names[0] in 'aeiou' else 'a'} {names} field"


def _parse_categorical(exp: Experiment, name: str, args: Any, where: str) -> Param:
    if not isinstance(args, (list, tuple)) or not args:
        raise UserError(f"{where}: categorical {args!r} is not allowed; expected a non-empty list of choices")
    seen: set[Any] = set()
    for choice in args:
        if isinstance(choice, float) and not math.isfinite(choice):
            raise UserError(f"{where}: choice {choice!r} is not allowed; expected a finite number")
        key = (type(choice).__name__, encode_choice(choice))
        if key in seen:
            raise UserError(f"{where}: choice {choice!r} is listed twice; expected each choice once")
        seen.add(key)
        _check_settable(exp, name, choice, f"{where}: choice")
    return Param(name, "categorical", choices=tuple(args))


def parse_space(data: Any, exp: Experiment, source: str) -> tuple[Param, ...]:
    """The checked parameters of `data` (a SEARCH_SPACE) for `exp`; `source` names where it came
    from in error messages ("SEARCH_SPACE in experiments/catch_dense.py")."""
    if not isinstance(data, Mapping) or not data:
        raise UserError(
            f"{source} must be a non-empty dict of field -> {{distribution: arguments}}, e.g. "
            '{"learning_rate": {"log_uniform": [1e-5, 1e-2]}}'
        )
    hints = field_types()
    tunable = sorted(k for k in hints if k not in NOT_TUNABLE)
    params = []
    for name, entry in data.items():
        where = f"{source}: {name}"
        if not isinstance(name, str) or name not in hints:
            raise UserError(
                f"{source}: unknown field {name!r}{did_you_mean(str(name), tunable)}; tunable: {', '.join(tunable)}"
            )
        if name in NOT_TUNABLE:
            raise UserError(
                f"{where} is not tunable: it sets a trial's budget or how trials are measured "
                "(use SET or STEPS to fix it for the whole study)"
            )
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise UserError(
                f"{where}: {entry!r} is not allowed; expected one distribution, e.g. "
                f'{{"categorical": [...]}} or {{"uniform": [low, high]}} ({", ".join(DISTRIBUTIONS)})'
            )
        ((kind, args),) = entry.items()
        if kind not in DISTRIBUTIONS:
            raise UserError(
                f"{where}: unknown distribution {kind!r}{did_you_mean(str(kind), DISTRIBUTIONS)}; "
                f"expected one of {', '.join(DISTRIBUTIONS)}"
            )
        if kind == "categorical":
            params.append(_parse_categorical(exp, name, args, where))
        else:
            params.append(_parse_range(exp, name, kind, args, where))
    return tuple(params)
