"""Typed Optuna search spaces: the ``search_space:`` section of a run config.

A search space maps tunable parameter names to distributions::

    search_space:
      lr: {type: float, low: 3.0e-4, high: 1.0e-2, log: true}
      drop_rate: {type: float, low: 0.0, high: 0.5}
      width: {type: int, low: 16, high: 48, step: 8}
      mixup_alpha: {type: categorical, choices: [0.0, 0.2, 0.4]}

Each name in :data:`TUNABLE_PARAMETERS` replaces one field of the run config, so a trial's
parameters turn into a complete :class:`~fer_kaggle.experiment.RunConfig` with
:func:`apply_params`. Write floats in YAML with a dot (``3.0e-4``): PyYAML reads ``3e-4``
as a string.
"""

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

import optuna
import pydantic
from pydantic import AfterValidator, Field

from fer_kaggle.config import StrictModel, format_validation_error
from fer_kaggle.errors import ConfigError

if TYPE_CHECKING:
    from fer_kaggle.experiment import RunConfig

__all__ = [
    "TUNABLE_PARAMETERS",
    "CategoricalSpec",
    "FloatSpec",
    "IntSpec",
    "ParameterSpec",
    "SearchSpace",
    "apply_params",
    "corner_params",
    "suggest_params",
]

#: Tunable parameter name -> the run config field it sets (a path of keys).
TUNABLE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "lr": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "drop_rate": ("model", "kwargs", "drop_rate"),
    "width": ("model", "kwargs", "width"),
    "label_smoothing": ("train", "label_smoothing"),
    "mixup_alpha": ("mixup", "mixup_alpha"),
    "augment_strength": ("augment", "strength"),
    "batch_size": ("train", "batch_size"),
    "epochs": ("train", "epochs"),
}


class FloatSpec(StrictModel):
    """A float drawn from ``[low, high]``, log-uniformly when ``log``, on a grid of ``step`` when set."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @pydantic.model_validator(mode="after")
    def _check_range(self) -> "FloatSpec":
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low={self.low} and high={self.high} must be finite numbers")
        _check_bounds(self.low, self.high, self.log, self.step)
        return self


class IntSpec(StrictModel):
    """An integer drawn from ``[low, high]`` in increments of ``step``, log-uniformly when ``log``."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @pydantic.model_validator(mode="after")
    def _check_range(self) -> "IntSpec":
        _check_bounds(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self


class CategoricalSpec(StrictModel):
    """One of a list of values (numbers, strings or booleans), all tried with equal prior weight."""

    type: Literal["categorical"]
    choices: list[bool | int | float | str] = Field(min_length=1)

    @pydantic.field_validator("choices")
    @classmethod
    def _unique_choices(cls, choices: list[bool | int | float | str]) -> list[bool | int | float | str]:
        if len({(type(choice), choice) for choice in choices}) != len(choices):
            raise ValueError(f"choices {choices} repeat a value; list each value once")
        return choices


ParameterSpec = Annotated[FloatSpec | IntSpec | CategoricalSpec, Field(discriminator="type")]


def _check_bounds(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low={low} is greater than high={high}; swap them")
    if log and low <= 0:
        raise ValueError(f"log=true needs low > 0, got low={low}; raise low or set log: false")
    if log and step is not None:
        raise ValueError("log=true and step cannot be combined; drop one of them")


def _check_name(name: str) -> str:
    if name not in TUNABLE_PARAMETERS:
        raise ValueError(f"unknown tunable parameter {name!r}; choose from {', '.join(TUNABLE_PARAMETERS)}")
    return name


def _check_not_empty(space: dict[str, Any]) -> dict[str, Any]:
    if not space:
        raise ValueError("the search space is empty; add at least one parameter, or remove the search_space key")
    return space


ParameterName = Annotated[str, AfterValidator(_check_name)]

#: The ``search_space`` field of a run config: at least one known parameter name -> its distribution.
SearchSpace = Annotated[dict[ParameterName, ParameterSpec], AfterValidator(_check_not_empty)]


def suggest_params(trial: optuna.Trial, space: dict[str, FloatSpec | IntSpec | CategoricalSpec]) -> dict[str, Any]:
    """Draw one value per parameter of ``space`` from ``trial``, in the space's order."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, FloatSpec):
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)
        elif isinstance(spec, IntSpec):
            params[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log, step=spec.step)
        else:
            params[name] = trial.suggest_categorical(name, spec.choices)
    return params


def corner_params(space: dict[str, FloatSpec | IntSpec | CategoricalSpec]) -> list[dict[str, Any]]:
    """Return the all-lowest and all-highest parameter sets (first and last choice for categoricals).

    Applying both with :func:`apply_params` checks the space's bounds against the run
    config's own limits before any trial trains. An int ``high`` that is not on the
    ``step`` grid is rounded down, as Optuna does.
    """
    lowest: dict[str, Any] = {}
    highest: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, CategoricalSpec):
            lowest[name], highest[name] = spec.choices[0], spec.choices[-1]
        elif isinstance(spec, IntSpec):
            lowest[name] = spec.low
            highest[name] = spec.low + (spec.high - spec.low) // spec.step * spec.step
        else:
            lowest[name], highest[name] = spec.low, spec.high
    return [lowest, highest]


def apply_params(run: "RunConfig", params: dict[str, Any]) -> "RunConfig":
    """Return a copy of ``run`` with each tuned parameter written into its config field.

    Raises:
        ConfigError: an unknown parameter name, or a value that the run config's field
            rejects (for example ``label_smoothing`` of 1.0); the message names both.
    """
    config = run.model_dump(mode="json")
    for name, value in params.items():
        if name not in TUNABLE_PARAMETERS:
            raise ConfigError(f"unknown tunable parameter {name!r}; choose from {', '.join(TUNABLE_PARAMETERS)}")
        *parents, leaf = TUNABLE_PARAMETERS[name]
        section = config
        for key in parents:
            section = section.setdefault(key, {})
        section[leaf] = value

    try:
        return type(run).model_validate(config)
    except pydantic.ValidationError as error:
        source = f"search_space of run {run.name!r} (parameters {params})"
        raise ConfigError(format_validation_error(error, source)) from None
