"""Checks for the architecture keyword arguments, which usually come from a YAML config."""

from collections.abc import Sequence
from typing import Any

from fer_kaggle.errors import ConfigError

__all__ = ["check_depths", "check_positive_int", "check_rate"]


def check_positive_int(value: Any, name: str, model: str) -> int:
    """Return ``value`` if it is an int >= 1 (bool rejected), else raise ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model '{model}': invalid {name} {value!r}; expected an integer >= 1")
    return value


def check_depths(value: Any, model: str) -> tuple[int, ...]:
    """Return ``value`` as a tuple of blocks per stage, or raise ConfigError.

    A YAML list arrives as a list, so any non-string sequence of integers >= 1 is accepted.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ConfigError(
            f"model '{model}': invalid depths {value!r}; "
            "expected a non-empty list of blocks per stage, e.g. [2, 2, 2, 2]"
        )
    return tuple(check_positive_int(depth, "depths entry", model) for depth in value)


def check_rate(value: Any, name: str, model: str) -> float:
    """Return ``value`` as a float if it is a probability in [0, 1), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"model '{model}': invalid {name} {value!r}; expected a number in [0, 1)")
    return float(value)
