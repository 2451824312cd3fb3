"""Collect the fold predictions of an experiment, fit every blend, and write the submissions.

``fer-kaggle ensemble`` saves, under ``RUNS_DIR/ensemble/``, each single model's and each
blend's OOF and test probabilities (``<source>.oof.npy``, ``<source>.test.npy``) and a
``summary.json`` with weights and OOF scores. ``fer-kaggle submission`` turns that folder
into Kaggle CSVs: ``<model>.csv``, ``ensemble-<method>.csv`` and ``ensemble.csv`` (the
selected method).
"""

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_kaggle.atomic import atomic_write_text, staged_directory
from fer_kaggle.blend import BLEND_METHODS, Blend, fit_blend, score_probs
from fer_kaggle.errors import ConfigError, DataError
from fer_kaggle.experiment import ExperimentConfig, load_experiment
from fer_kaggle.folds import read_folds
from fer_kaggle.runs import RunPaths, load_predictions, save_predictions
from fer_kaggle.submission import DEFAULT_LABEL_COLUMN, git_commit, write_submission
from fer_kaggle.train_all import experiment_folds

__all__ = [
    "ENSEMBLE_FOLDER",
    "ENSEMBLE_SUBMISSION",
    "ModelPredictions",
    "ExperimentPredictions",
    "blend_source",
    "collect_model",
    "collect_experiment",
    "fit_blends",
    "run_ensemble",
    "load_summary",
    "write_submissions",
]

logger = logging.getLogger(__name__)

#: Folder under the runs directory that contains the blended predictions and summary.json.
ENSEMBLE_FOLDER = "ensemble"
SUMMARY_FILE = "summary.json"
#: Name of the submission written from the selected blend method.
ENSEMBLE_SUBMISSION = "ensemble"


def blend_source(method: str) -> str:
    """Return the file stem of a blend's outputs, e.g. ``ensemble-weighted``."""
    return f"{ENSEMBLE_SUBMISSION}-{method}"


@dataclass
class ModelPredictions:
    """One model's predictions over the folds of an experiment.

    Attributes:
        name: run name.
        arch: registered architecture.
        params: trainable parameter count.
        folds: the training folds read.
        tta_by_fold: the TTA setting each fold predicted with.
        fold_valid_acc: validation accuracy of each fold.
        oof_ids: int64 (N,) training ids, sorted.
        oof_folds: int64 (N,) the fold that predicted each OOF row.
        oof_probs: (N, classes) OOF probabilities.
        test_ids: int64 (M,) test ids, sorted.
        test_probs: (M, classes) test probabilities averaged over the folds.
    """

    name: str
    arch: str
    params: int
    folds: list[int]
    tta_by_fold: list[bool]
    fold_valid_acc: list[float]
    oof_ids: np.ndarray
    oof_folds: np.ndarray
    oof_probs: np.ndarray
    test_ids: np.ndarray
    test_probs: np.ndarray


@dataclass
class ExperimentPredictions:
    """Every model of an experiment, aligned on the same OOF and test ids."""

    experiment_path: Path
    experiment: ExperimentConfig
    models: list[ModelPredictions]
    labels: np.ndarray

    @property
    def oof_ids(self) -> np.ndarray:
        return self.models[0].oof_ids

    @property
    def oof_folds(self) -> np.ndarray:
        return self.models[0].oof_folds

    @property
    def test_ids(self) -> np.ndarray:
        return self.models[0].test_ids


def collect_model(name: str, runs_dir: Path, folds: list[int], *, train_command: str = "make train-all") -> ModelPredictions:
    """Read the OOF and test predictions of every fold of one run and average test over folds.

    Raises:
        DataError: a fold is not finished (no ``metrics.json``), folds disagree on the
            test ids, or two folds predicted the same training id.
    """
    unfinished = [fold for fold in folds if not RunPaths(runs_dir, name, fold).finished()]
    if unfinished:
        first = RunPaths(runs_dir, name, unfinished[0]).root
        raise DataError(
            f"{first}: fold {unfinished[0]} of model {name!r} is not finished (no metrics.json; "
            f"{len(unfinished)} of {len(folds)} folds missing); run '{train_command}' to train them"
        )

    oof_ids, oof_folds, oof_probs, test_sum = [], [], [], None
    test_ids: np.ndarray | None = None
    metrics = []
    for fold in folds:
        paths = RunPaths(runs_dir, name, fold)
        metrics.append(json.loads(paths.metrics.read_text(encoding="utf-8")))
        ids, probs = load_predictions(paths.oof)
        oof_ids.append(ids)
        oof_folds.append(np.full(len(ids), fold, dtype=np.int64))
        oof_probs.append(probs)

        fold_test_ids, fold_test_probs = load_predictions(paths.test)
        order = np.argsort(fold_test_ids, kind="stable")
        if test_ids is None:
            test_ids, test_sum = fold_test_ids[order], fold_test_probs[order]
        elif not np.array_equal(fold_test_ids[order], test_ids):
            raise DataError(f"{paths.test}: its test ids differ from those of fold {folds[0]}; the folds were trained on other data, retrain them")
        else:
            test_sum = test_sum + fold_test_probs[order]

    ids = np.concatenate(oof_ids)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if len(repeated):
        raise DataError(
            f"{Path(runs_dir) / name}: training id {repeated[0]} is in the OOF predictions of two folds; "
            "the folds file changed between folds, so retrain this model (delete its folder, then 'make train-all')"
        )

    tta_by_fold = [bool(record.get("tta", False)) for record in metrics]
    if len(set(tta_by_fold)) > 1:
        warnings.warn(f"model {name!r}: folds predicted with different TTA settings {tta_by_fold}", UserWarning, stacklevel=2)
    return ModelPredictions(
        name=name,
        arch=str(metrics[0].get("arch", "")),
        params=int(metrics[0].get("params", 0)),
        folds=list(folds),
        tta_by_fold=tta_by_fold,
        fold_valid_acc=[float(record["valid_acc"]) for record in metrics],
        oof_ids=ids,
        oof_folds=np.concatenate(oof_folds)[order],
        oof_probs=np.concatenate(oof_probs)[order],
        test_ids=test_ids,
        test_probs=test_sum / len(folds),
    )


def collect_experiment(experiment_path: Path) -> ExperimentPredictions:
    """Collect every model of an experiment and check they cover the same ids.

    Raises:
        ConfigError: a run name that collides with the ensemble outputs.
        DataError: as :func:`collect_model`; models with different OOF or test ids; OOF
            ids missing from the folds file.
    """
    experiment_path = Path(experiment_path)
    experiment, runs = load_experiment(experiment_path)
    for run in runs:
        if run.name == ENSEMBLE_FOLDER or run.name.startswith(f"{ENSEMBLE_SUBMISSION}-"):
            raise ConfigError(f"{experiment_path}: run name {run.name!r} collides with the ensemble outputs; rename the run")
    folds = experiment_folds(experiment)
    command = f"make train-all EXPERIMENT={experiment_path}"
    models = [collect_model(run.name, experiment.runs_dir, folds, train_command=command) for run in runs]

    first = models[0]
    for model in models[1:]:
        if not np.array_equal(model.oof_ids, first.oof_ids):
            raise DataError(
                f"{Path(experiment.runs_dir) / model.name}: its OOF ids differ from those of {Path(experiment.runs_dir) / first.name} "
                f"({len(model.oof_ids)} vs {len(first.oof_ids)} ids); train every model on the same folds file, "
                "with the same --limit and train.seed"
            )
        if not np.array_equal(model.test_ids, first.test_ids):
            raise DataError(
                f"{Path(experiment.runs_dir) / model.name}: its test ids differ from those of {Path(experiment.runs_dir) / first.name}; "
                f"retrain both on {experiment.data}"
            )

    frame, _ = read_folds(experiment.folds)
    label_of = frame.set_index("id")["emotion"]
    unknown = np.setdiff1d(first.oof_ids, label_of.index.to_numpy())
    if len(unknown):
        raise DataError(f"{experiment.folds}: has no row for training id {unknown[0]} of the OOF predictions; the runs were trained on another folds file, retrain them")
    labels = label_of.reindex(first.oof_ids).to_numpy(dtype=np.int64)
    return ExperimentPredictions(experiment_path, experiment, models, labels)


def fit_blends(
    predictions: ExperimentPredictions,
    methods: tuple[str, ...] = BLEND_METHODS,
    *,
    hillclimb_iterations: int = 100,
    stack_C: float = 1.0,  # noqa: N803 (scikit-learn's name)
) -> dict[str, Blend]:
    """Fit each blend method on the OOF predictions; ``stack`` is skipped, with a warning, below two folds."""
    oof = np.stack([model.oof_probs for model in predictions.models])
    test = np.stack([model.test_probs for model in predictions.models])
    blends = {}
    for method in methods:
        if method == "stack" and len(np.unique(predictions.oof_folds)) < 2:
            warnings.warn("stack blend skipped: it needs OOF predictions from at least 2 folds", UserWarning, stacklevel=2)
            continue
        blends[method] = fit_blend(
            method,
            oof,
            predictions.labels,
            test,
            folds=predictions.oof_folds,
            hillclimb_iterations=hillclimb_iterations,
            stack_C=stack_C,
        )
        logger.info("%s blend: OOF accuracy %.4f", method, blends[method].oof_accuracy)
    return blends


def _model_record(model: ModelPredictions, labels: np.ndarray) -> dict[str, Any]:
    accuracy, loss = score_probs(model.oof_probs, labels)
    tta: bool | list[bool] = model.tta_by_fold[0] if len(set(model.tta_by_fold)) == 1 else model.tta_by_fold
    return {
        "name": model.name,
        "arch": model.arch,
        "params": model.params,
        "folds": model.folds,
        "tta": tta,
        "fold_valid_acc": model.fold_valid_acc,
        "oof_accuracy": accuracy,
        "oof_log_loss": loss,
    }


def _blend_record(blend: Blend, names: list[str]) -> dict[str, Any]:
    weights = None if blend.weights is None else {name: round(float(weight), 6) for name, weight in zip(names, blend.weights)}
    return {
        "method": blend.method,
        "source": blend_source(blend.method),
        "weights": weights,
        "oof_accuracy": blend.oof_accuracy,
        "oof_log_loss": blend.oof_log_loss,
        "details": blend.details,
    }


def run_ensemble(
    experiment_path: Path,
    *,
    method: str = "weighted",
    hillclimb_iterations: int = 100,
    stack_C: float = 1.0,  # noqa: N803 (scikit-learn's name)
) -> dict[str, Any]:
    """Fit every blend method, save predictions and ``summary.json`` under ``RUNS_DIR/ensemble/``.

    Args:
        experiment_path: the experiment YAML file.
        method: the blend that ``ensemble.csv`` is written from.
        hillclimb_iterations: selection steps of the hill-climbing blend.
        stack_C: inverse regularisation strength of the stacking meta-model.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        ConfigError: unknown ``method``, or ``stack`` selected with fewer than two folds.
        DataError: as :func:`collect_experiment`.
    """
    if method not in BLEND_METHODS:
        raise ConfigError(f"--method: unknown blend method {method!r}; choose from {', '.join(BLEND_METHODS)}")
    predictions = collect_experiment(experiment_path)
    blends = fit_blends(predictions, hillclimb_iterations=hillclimb_iterations, stack_C=stack_C)
    if method not in blends:
        raise ConfigError(f"--method {method}: the blend was skipped because it needs OOF predictions from at least 2 folds; choose another method")

    experiment = predictions.experiment
    names = [model.name for model in predictions.models]
    summary = {
        "experiment": experiment.name,
        "experiment_file": str(experiment_path),
        "runs_dir": str(experiment.runs_dir),
        "data": str(experiment.data),
        "folds_file": str(experiment.folds),
        "folds": predictions.models[0].folds,
        "n_oof": int(len(predictions.oof_ids)),
        "n_test": int(len(predictions.test_ids)),
        "selected_method": method,
        "git_commit": git_commit(),
        "models": [_model_record(model, predictions.labels) for model in predictions.models],
        "blends": [_blend_record(blend, names) for blend in blends.values()],
    }

    with staged_directory(Path(experiment.runs_dir) / ENSEMBLE_FOLDER) as staging:
        for model in predictions.models:
            save_predictions(staging / f"{model.name}.oof.npy", model.oof_ids, model.oof_probs.astype(np.float32))
            save_predictions(staging / f"{model.name}.test.npy", model.test_ids, model.test_probs.astype(np.float32))
        for blend in blends.values():
            save_predictions(staging / f"{blend_source(blend.method)}.oof.npy", predictions.oof_ids, blend.oof_probs.astype(np.float32))
            save_predictions(staging / f"{blend_source(blend.method)}.test.npy", predictions.test_ids, blend.test_probs.astype(np.float32))
        atomic_write_text(staging / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def load_summary(experiment_path: Path) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Return the experiment config and the ``summary.json`` that ``run_ensemble`` wrote for it.

    Raises:
        DataError: the ensemble has not been run for this experiment.
    """
    experiment, _ = load_experiment(experiment_path)
    path = Path(experiment.runs_dir) / ENSEMBLE_FOLDER / SUMMARY_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found; run 'make ensemble EXPERIMENT={experiment_path}' first")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable ({error}); run 'make ensemble EXPERIMENT={experiment_path}' again") from None
    return experiment, summary


def write_submissions(
    experiment_path: Path,
    out_dir: Path = Path("submissions"),
    *,
    label_column: str = DEFAULT_LABEL_COLUMN,
) -> list[Path]:
    """Write one Kaggle CSV per single model and per blend, plus ``ensemble.csv``, each with its JSON.

    The label of a face is the class with the highest fold-averaged (or blended) test
    probability.

    Raises:
        DataError: the ensemble has not been run, or its prediction files are missing.
    """
    experiment, summary = load_summary(experiment_path)
    ensemble_dir = Path(experiment.runs_dir) / ENSEMBLE_FOLDER
    common = {"experiment": summary["experiment"], "experiment_file": str(experiment_path), "git_commit": git_commit()}
    folds = {model["name"]: model["folds"] for model in summary["models"]}
    tta = {model["name"]: model["tta"] for model in summary["models"]}

    outputs: list[tuple[str, str, dict[str, Any]]] = []
    for model in summary["models"]:
        name = model["name"]
        record = {"kind": "model", "models": [name], "folds": {name: folds[name]}, "tta": {name: tta[name]},
                  "blend_method": None, "weights": None, "oof_accuracy": model["oof_accuracy"]}
        outputs.append((name, name, record))
    for blend in summary["blends"]:
        record = {"kind": "blend", "models": list(folds), "folds": folds, "tta": tta, "blend_method": blend["method"],
                  "weights": blend["weights"], "oof_accuracy": blend["oof_accuracy"]}
        outputs.append((blend["source"], blend["source"], record))
        if blend["method"] == summary["selected_method"]:
            outputs.append((ENSEMBLE_SUBMISSION, blend["source"], record))

    paths = []
    for stem, source, record in outputs:
        ids, probs = load_predictions(ensemble_dir / f"{source}.test.npy")
        metadata = {**common, "source": source, **record}
        paths.append(write_submission(Path(out_dir) / f"{stem}.csv", ids, probs.argmax(axis=1), metadata=metadata, label_column=label_column))
    return paths
