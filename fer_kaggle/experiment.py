"""Typed configs of a training run (one model) and of an experiment (several models, all folds)."""

import logging
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import Field, field_validator

from fer_kaggle.augment import AugmentConfig, MixupConfig
from fer_kaggle.config import StrictModel, format_validation_error, load_yaml_config
from fer_kaggle.errors import ConfigError
from fer_kaggle.search_space import SearchSpace

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "RunConfig",
    "ExperimentConfig",
    "load_run_config",
    "load_experiment",
    "tuned_configs",
]

logger = logging.getLogger(__name__)


class ModelConfig(StrictModel):
    """Which registered architecture to build, and its keyword arguments.

    ``arch`` is a name from :func:`fer_kaggle.models.list_models` or any timm model
    name. ``kwargs`` go to the model's constructor (dropout, drop_path_rate, width,
    depth, ...), which rejects keys it does not take.
    """

    arch: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(StrictModel):
    """Optimisation, schedule, regularisation and evaluation settings of one run."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: str = Field("adamw", description="timm optimiser name, e.g. adamw, sgd, lamb")
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="used by SGD-like optimisers only")
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    warmup_epochs: float = Field(1.0, ge=0, description="linear warm-up length for the cosine schedule, in epochs")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    ema: bool = True
    ema_decay: float = Field(0.998, gt=0, lt=1)
    patience: int = Field(10, ge=1, description="epochs without a better validation accuracy before stopping")
    tta: bool = Field(True, description="average predictions over the face and its mirror image")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    channels_last: bool = True
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes; 0 augments in the training process")
    grad_clip: float | None = Field(None, gt=0)
    seed: int = 0


class RunConfig(StrictModel):
    """Everything that defines one model's training run (a ``configs/models/*.yaml`` file)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="run name: the folder under the runs directory")
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    mixup: MixupConfig = Field(default_factory=MixupConfig)
    search_space: SearchSpace | None = Field(
        None, description="Optuna search space (parameter name -> distribution), used by `fer-kaggle tune` only"
    )


class ExperimentConfig(StrictModel):
    """A set of runs trained on every fold of one data set (``configs/experiment*.yaml``)."""

    name: str = "experiment"
    data: Path = Path("data/prepared")
    folds: Path = Path("folds/folds.csv")
    runs_dir: Path = Path("runs")
    models: list[Path] = Field(min_length=1, description="run config files, relative to the experiment file")
    train_folds: list[int] | None = Field(None, description="folds to train; all when omitted")
    epochs: int | None = Field(None, ge=1, description="epoch budget that overrides each run's own")
    limit: int | None = Field(None, ge=2, description="train on a random subset of this many training faces")
    train: dict[str, Any] = Field(default_factory=dict, description="train settings applied to every run, e.g. batch_size")
    tuned_dir: Path | None = Field(
        Path("configs/tuned"),
        description="a run config <tuned_dir>/<run name>.yaml written by `fer-kaggle tune` replaces the listed one; "
        "relative to the working directory; null disables",
    )

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[Path]) -> list[Path]:
        if len(set(models)) != len(models):
            raise ValueError("a run config is listed twice")
        return models


def load_run_config(path: str | Path) -> RunConfig:
    """Load and validate a run config file.

    Raises:
        ConfigError: missing file, invalid YAML, unknown key, invalid value, or a
            ``model.arch`` that is neither this package's model nor timm's.
    """
    run = load_yaml_config(path, RunConfig)
    _check_arch(run.model.arch, path)
    return run


def _check_arch(arch: str, path: str | Path) -> None:
    # Imported here, because the models import torch and timm, which validating a config alone does not need.
    from fer_kaggle.models import check_model_name

    try:
        check_model_name(arch)
    except ConfigError as error:
        raise ConfigError(f"{path}: model.arch: {error}") from None


def load_experiment(path: str | Path) -> tuple[ExperimentConfig, list[RunConfig]]:
    """Load an experiment and each run config it lists (paths relative to the experiment file).

    Raises:
        ConfigError: as :func:`load_run_config`, or two runs with the same name.
    """
    path = Path(path)
    experiment = load_yaml_config(path, ExperimentConfig)
    runs = [load_run_config(_resolve(path, model)) for model in experiment.models]
    tuned = _tuned_paths(experiment, runs)
    for index, run in enumerate(runs):
        if run.name in tuned:
            logger.info("using tuned config %s", tuned[run.name])
            runs[index] = _load_tuned(tuned[run.name], run.name)
    if experiment.train:
        runs = [_override_train(run, experiment.train, path) for run in runs]

    names = [run.name for run in runs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{path}: two run configs share the name {repeated[0]!r}; give each a unique 'name'")
    return experiment, runs


def tuned_configs(path: str | Path) -> dict[str, Path]:
    """Return run name -> tuned config file for the runs of the experiment that :func:`load_experiment` replaces.

    Raises:
        ConfigError: as :func:`load_experiment`.
    """
    path = Path(path)
    experiment = load_yaml_config(path, ExperimentConfig)
    runs = [load_run_config(_resolve(path, model)) for model in experiment.models]
    return _tuned_paths(experiment, runs)


def _tuned_paths(experiment: ExperimentConfig, runs: list[RunConfig]) -> dict[str, Path]:
    if experiment.tuned_dir is None:
        return {}
    candidates = {run.name: experiment.tuned_dir / f"{run.name}.yaml" for run in runs}
    return {name: candidate for name, candidate in candidates.items() if candidate.is_file()}


def _override_train(run: RunConfig, overrides: dict[str, Any], path: Path) -> RunConfig:
    """Return ``run`` with the experiment's ``train`` settings applied, validated like a run's own."""
    try:
        train = TrainConfig.model_validate({**run.train.model_dump(), **overrides})
    except pydantic.ValidationError as error:
        raise ConfigError(format_validation_error(error, f"{path}: train")) from None
    return run.model_copy(update={"train": train})


def _load_tuned(path: Path, name: str) -> RunConfig:
    run = load_run_config(path)
    if run.name != name:
        raise ConfigError(f"{path}: tuned config has name {run.name!r} but replaces run {name!r}; set name: {name}")
    return run


def _resolve(experiment_path: Path, model_path: Path) -> Path:
    """Resolve a run config path: as given when it exists, else relative to the experiment file."""
    if model_path.is_absolute() or model_path.exists():
        return model_path
    return experiment_path.parent / model_path
