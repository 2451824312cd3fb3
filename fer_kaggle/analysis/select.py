"""Pick the model and fold to analyse from an experiment's finished runs, and load its weights."""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from fer_kaggle.errors import ConfigError, DataError
from fer_kaggle.experiment import ExperimentConfig, RunConfig, load_experiment
from fer_kaggle.folds import read_folds
from fer_kaggle.runs import RunPaths, load_predictions
from fer_kaggle.train import build_model

__all__ = ["ModelScore", "Selection", "finished_folds", "load_selected_model", "score_models", "select_model"]

logger = logging.getLogger(__name__)


@dataclass
class ModelScore:
    """OOF accuracy of one run over the folds it finished."""

    name: str
    arch: str
    folds: list[int]
    oof_accuracy: float
    n_oof: int


@dataclass
class Selection:
    """The run and fold chosen for analysis, with the experiment they belong to."""

    experiment_path: Path
    experiment: ExperimentConfig
    runs: list[RunConfig]
    run: RunConfig
    fold: int
    fold_metrics: dict
    score: ModelScore

    @property
    def paths(self) -> RunPaths:
        """Files of the chosen fold's run folder."""
        return RunPaths(self.experiment.runs_dir, self.run.name, self.fold)


def finished_folds(runs_dir: Path, name: str) -> list[int]:
    """Return the folds of run ``name`` that wrote ``metrics.json``, in ascending order."""
    root = Path(runs_dir) / name
    if not root.is_dir():
        return []
    folds = []
    for folder in root.glob("fold*"):
        suffix = folder.name.removeprefix("fold")
        if suffix.isdigit() and RunPaths(runs_dir, name, int(suffix)).finished():
            folds.append(int(suffix))
    return sorted(folds)


def score_models(experiment: ExperimentConfig, runs: list[RunConfig]) -> list[ModelScore]:
    """Return the OOF accuracy of each run with finished folds, best first.

    The accuracy pools the OOF predictions of the finished folds, so a run with fewer
    folds is scored on fewer faces (``n_oof``). Ties keep the experiment's order.

    Raises:
        DataError: the folds file is missing, or an OOF file lists ids it does not have.
    """
    folds, _ = read_folds(experiment.folds)
    label_of = dict(zip(folds["id"].astype(np.int64).tolist(), folds["emotion"].astype(np.int64).tolist()))

    scores = []
    for run in runs:
        done = finished_folds(experiment.runs_dir, run.name)
        if not done:
            continue
        ids, probs = oof_predictions(experiment.runs_dir, run.name, done)
        labels = labels_for(ids, label_of, source=f"{experiment.runs_dir / run.name} OOF")
        accuracy = float((probs.argmax(axis=1) == labels).mean())
        scores.append(ModelScore(run.name, run.model.arch, done, accuracy, len(ids)))
    return sorted(scores, key=lambda score: -score.oof_accuracy)


def oof_predictions(runs_dir: Path, name: str, folds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the OOF ids and probabilities of the given folds of run ``name``."""
    parts = [load_predictions(RunPaths(runs_dir, name, fold).oof) for fold in folds]
    return np.concatenate([ids for ids, _ in parts]), np.concatenate([probs for _, probs in parts])


def labels_for(ids: np.ndarray, label_of: dict[int, int], source: str) -> np.ndarray:
    """Look up the label of each training-face id.

    Raises:
        DataError: an id is not in ``label_of`` (predictions made with other folds).
    """
    missing = [int(face_id) for face_id in ids if int(face_id) not in label_of]
    if missing:
        raise DataError(
            f"{source}: face id {missing[0]} is not in the folds file ({len(missing)} ids missing); "
            "the runs were trained on other folds: train them again or point the experiment at their folds"
        )
    return np.array([label_of[int(face_id)] for face_id in ids], dtype=np.int64)


def select_model(experiment_path: str | Path, model: str | None = None, fold: int | None = None) -> Selection:
    """Choose the run (best OOF accuracy, or ``model``) and its fold (best ``valid_acc``, or ``fold``).

    Raises:
        ConfigError: ``model`` is not a run of the experiment, or ``fold`` is not one of
            its finished folds; the message lists the valid values.
        DataError: no run of the experiment has a finished fold, or the folds file is missing.
    """
    experiment_path = Path(experiment_path)
    experiment, runs = load_experiment(experiment_path)
    names = [run.name for run in runs]
    if model is not None and model not in names:
        raise ConfigError(f"--model: {model!r} is not a run of {experiment_path}; valid names: {', '.join(names)}")

    scores = score_models(experiment, runs)
    if not scores:
        raise DataError(
            f"{experiment_path}: no run has a finished fold under {experiment.runs_dir}; "
            f"run 'fer-kaggle train-all --experiment {experiment_path}' first"
        )
    if model is None:
        score = scores[0]
    else:
        matching = [score for score in scores if score.name == model]
        if not matching:
            raise DataError(
                f"--model: {model!r} has no finished fold under {experiment.runs_dir}; train it first or choose one of: "
                f"{', '.join(score.name for score in scores)}"
            )
        score = matching[0]
    run = runs[names.index(score.name)]

    fold_metrics = {
        done: json.loads(RunPaths(experiment.runs_dir, run.name, done).metrics.read_text(encoding="utf-8"))
        for done in score.folds
    }
    if fold is None:
        fold = max(score.folds, key=lambda done: fold_metrics[done]["valid_acc"])
    elif fold not in score.folds:
        raise ConfigError(
            f"--fold: {run.name!r} has no finished fold {fold}; finished folds: {', '.join(map(str, score.folds))}"
        )
    logger.info("analysing %s fold %d (OOF accuracy %.4f over folds %s)", run.name, fold, score.oof_accuracy, score.folds)
    return Selection(experiment_path, experiment, runs, run, fold, fold_metrics[fold], score)


def load_selected_model(selection: Selection, device: str | torch.device = "cpu") -> nn.Module:
    """Build the chosen run's model and load its fold's ``best.pt``, in eval mode.

    The model is built from the fold's config snapshot when there is one, because the
    run config may have been edited after training. Without a snapshot the experiment's
    run config is used.

    Raises:
        DataError: ``best.pt`` is missing or does not fit the model.
    """
    paths = selection.paths
    run = selection.run
    if paths.config.is_file():
        snapshot = yaml.safe_load(paths.config.read_text(encoding="utf-8"))
        run = RunConfig.model_validate(snapshot["run"])
    if not paths.best.is_file():
        raise DataError(f"{paths.best}: checkpoint not found; train {run.name} fold {selection.fold} again")

    model = build_model(run)
    state = torch.load(paths.best, map_location=device, weights_only=True)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise DataError(f"{paths.best}: weights do not fit model {run.model.arch} ({first_line}); train the fold again") from None
    return model.to(device).eval()


def oof_frame(selection: Selection) -> pd.DataFrame:
    """Return the chosen fold's OOF predictions as a frame with columns id, label, pred."""
    folds, _ = read_folds(selection.experiment.folds)
    label_of = dict(zip(folds["id"].astype(np.int64).tolist(), folds["emotion"].astype(np.int64).tolist()))
    ids, probs = load_predictions(selection.paths.oof)
    labels = labels_for(ids, label_of, source=str(selection.paths.oof))
    return pd.DataFrame({"id": ids, "label": labels, "pred": probs.argmax(axis=1)})
