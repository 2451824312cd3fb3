"""Typed YAML configs: a strict pydantic base model and a loader with one-line errors."""

from pathlib import Path
from typing import TypeVar

import pydantic
import yaml

from fer_kaggle.errors import ConfigError

__all__ = ["StrictModel", "load_yaml_config", "format_validation_error"]


class StrictModel(pydantic.BaseModel):
    """Base for every config section: unknown keys are errors and values are not coerced silently."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


ConfigT = TypeVar("ConfigT", bound=pydantic.BaseModel)


def format_validation_error(error: pydantic.ValidationError, source: str) -> str:
    """Format the first problem of a pydantic error as one line naming the key and the fix."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}'; remove it or check its spelling"
    if first["type"] == "missing":
        return f"{source}: missing required key '{key}'"
    return f"{source}: invalid value for '{key}': {first['msg']} (got {first.get('input')!r})"


def load_yaml_config(path: str | Path, model: type[ConfigT]) -> ConfigT:
    """Read a YAML file and validate it against ``model``.

    Raises:
        ConfigError: the file is missing, is not valid YAML, is not a mapping, or fails
            validation (unknown key, missing key, wrong type).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; check the path")

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(error, 'problem', error)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")

    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as error:
        raise ConfigError(format_validation_error(error, str(path))) from None
