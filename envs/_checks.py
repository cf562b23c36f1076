"""Argument and action checks shared by the project's envs: clear ValueErrors naming what was wrong."""

from __future__ import annotations

import operator
from numbers import Integral, Real
from typing import Any


def check_int(name: str, value: Any, minimum: int, allowed: str) -> int:
    """`value` as an int >= `minimum`, else a ValueError naming `name` and what is `allowed`."""
    # bool is an Integral, but `size=True` is a mistake, not a board of side 1.
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} ({allowed}); got {value!r}")
    return int(value)


def check_real(name: str, value: float, low: float, high: float, allowed: str) -> float:
    """`value` as a float in [`low`, `high`], else a ValueError naming `name` and what is `allowed`."""
    # A separate function, not inline in an env's __init__: mypy's isinstance narrowing of a float to
    # numbers.Real there leaves the class's attributes untyped ("Cannot determine type", mypy #6846).
    if isinstance(value, bool) or not isinstance(value, Real) or not low <= value <= high:
        raise ValueError(f"{name} must be a real number in [{low}, {high}] ({allowed}); got {value!r}")
    return float(value)


def check_action(action: Any, names: tuple[str, ...]) -> int:
    """The action's index in `names`, else a ValueError listing the valid actions.

    operator.index accepts Python and NumPy integers (what agents pass) and rejects floats; the
    range check stops -1 from silently meaning the last action.
    """
    try:
        index = operator.index(action)
    except TypeError:
        index = -1
    if not 0 <= index < len(names):
        listed = ", ".join(f"{i} ({n})" for i, n in enumerate(names))
        raise ValueError(f"action must be one of {listed}; got {action!r}")
    return index
