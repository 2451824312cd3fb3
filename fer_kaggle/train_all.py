"""Train every run of an experiment on every fold, skipping finished folds."""

import logging
from collections.abc import Callable
from pathlib import Path

from fer_kaggle.errors import ConfigError
from fer_kaggle.experiment import ExperimentConfig, RunConfig, load_experiment
from fer_kaggle.folds import read_folds
from fer_kaggle.train import TrainResult, build_model, train_fold

__all__ = ["train_experiment", "experiment_folds"]

logger = logging.getLogger(__name__)


def experiment_folds(experiment: ExperimentConfig) -> list[int]:
    """Return the folds the experiment trains: ``train_folds``, or all folds of its folds file."""
    frame, metadata = read_folds(experiment.folds)
    k = int(metadata.get("k", frame["fold"].max() + 1))
    if experiment.train_folds is None:
        return list(range(k))
    for fold in experiment.train_folds:
        if not 0 <= fold < k:
            raise ConfigError(f"train_folds: fold {fold} is out of range for {experiment.folds} (k={k}); choose folds from 0 to {k - 1}")
    return list(experiment.train_folds)


def train_experiment(
    experiment_path: Path,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    device: str = "auto",
    on_result: Callable[[RunConfig, int, TrainResult], None] | None = None,
) -> list[TrainResult]:
    """Train each run of the experiment on each of its folds, in order.

    Args:
        experiment_path: the experiment YAML file.
        epochs: overrides the experiment's and the runs' epoch budget.
        limit: overrides the experiment's training-subset size.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        on_result: called after each fold, finished or skipped (the CLI prints there).

    Raises:
        ConfigError, DataError: as :func:`fer_kaggle.train.train_fold`; everything is
            validated (configs, folds file, every fold index) before the first fold starts.
    """
    experiment, runs = load_experiment(experiment_path)
    folds = experiment_folds(experiment)
    for run in runs:
        build_model(run)  # rejects an unknown model or model argument before any training starts
    epochs = epochs if epochs is not None else experiment.epochs
    limit = limit if limit is not None else experiment.limit

    results = []
    for run in runs:
        for fold in folds:
            result = train_fold(
                run,
                data_dir=experiment.data,
                folds_path=experiment.folds,
                fold=fold,
                runs_dir=experiment.runs_dir,
                epochs=epochs,
                limit=limit,
                device=device,
            )
            results.append(result)
            if on_result is not None:
                on_result(run, fold, result)
    return results
